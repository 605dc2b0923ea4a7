from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "evalsvc.demo"
    label = "demo"
