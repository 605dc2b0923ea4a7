from django.apps import AppConfig


class FleetConfig(AppConfig):
    name = "evalsvc.fleet"
    label = "fleet"
    verbose_name = "Workers and their backends"
