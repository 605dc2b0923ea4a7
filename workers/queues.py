"""Queue names, importable without Celery or any ML library."""

CPU = "cpu"
GPU = "gpu"

ALL = (CPU, GPU)
