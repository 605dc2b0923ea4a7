from django.apps import AppConfig


class EvaluationsConfig(AppConfig):
    name = "evalsvc.evaluations"
    label = "evaluations"
