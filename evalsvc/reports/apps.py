from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "evalsvc.reports"
    label = "reports"
