from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "evalsvc.registry"
    label = "registry"
