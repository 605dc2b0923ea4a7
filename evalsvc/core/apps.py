from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "evalsvc.core"
    label = "core"
