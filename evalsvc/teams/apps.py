from django.apps import AppConfig


class TeamsConfig(AppConfig):
    name = "evalsvc.teams"
    label = "teams"
