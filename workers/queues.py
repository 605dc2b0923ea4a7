"""Queue names, importable without Celery or any ML library."""

CPU = "cpu"
GPU = "gpu"
#: Latency profiles: workers consume it one job at a time, so no other job shares their cores.
PROFILE = "profile"
#: Validation of large uploads: its own workers, so an upload never waits behind a long evaluation job.
REGISTRY = "registry"

ALL = (CPU, GPU, PROFILE, REGISTRY)
