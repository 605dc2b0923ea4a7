"""Queue names, importable without Celery or any ML library."""

CPU = "cpu"
GPU = "gpu"
#: Latency profiles: workers consume it one job at a time, so no other job shares their cores.
PROFILE = "profile"

ALL = (CPU, GPU, PROFILE)
