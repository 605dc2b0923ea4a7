from django.apps import AppConfig


class DashboardsConfig(AppConfig):
    name = "evalsvc.dashboards"
    label = "dashboards"
