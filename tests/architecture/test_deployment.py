"""Deployment descriptions stay valid: compose file, production settings, import contracts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_parses_and_names_every_service():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {
        "postgres", "redis", "proxy", "web", "worker-cpu", "worker-registry", "worker-profile", "worker-gpu", "beat"
    } <= set(services)  # fmt: skip
    assert services["worker-gpu"]["profiles"] == ["gpu"]
    for name in APP_SERVICES:
        assert services[name]["build"]["context"] == "."  # one Dockerfile for every role
        env = services[name]["environment"]
        assert env["DJANGO_SETTINGS_MODULE"] == "evalsvc.settings.production"
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["CELERY_BROKER_URL"].startswith("redis://")
    assert "-Q gpu" in services["worker-gpu"]["command"]
    assert "-Q cpu" in services["worker-cpu"]["command"]
    assert "-Q profile -c 1" in services["worker-profile"]["command"]
    assert "-Q registry " in services["worker-registry"]["command"]


def test_upload_validation_has_its_own_queue():
    """An upload's validation never waits behind an evaluation job: its own queue, consumed by its own worker."""
    from evalsvc.registry import deferred
    from workers.queues import REGISTRY
    from workers.tasks.registry import validate_artifact

    assert REGISTRY == "registry" and validate_artifact.queue == REGISTRY
    assert "queue=REGISTRY" in Path(deferred.__file__).read_text()
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    consumers = [name for name, svc in services.items() if "-Q" in str(svc.get("command", ""))]
    assert [n for n in consumers if "registry" in svc_queues(services[n])] == ["worker-registry"]
    local = (ROOT / "scripts" / "run_local.sh").read_text()
    assert "worker -Q registry" in local


def svc_queues(service: dict) -> list[str]:
    command = str(service["command"]).split()
    return command[command.index("-Q") + 1].split(",")


def test_uploads_reach_the_web_server_only_once_buffered_whole():
    """The published port is nginx's; it buffers request bodies to disk up to the upload limit."""
    import re

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    published = [name for name, svc in services.items() if svc.get("ports") and name != "minio"]
    assert published == ["proxy"]
    assert "ports" not in services["web"] and services["web"]["expose"] == ["8000"]
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in services["proxy"]["volumes"]
    assert "proxybodies:/var/cache/nginx" in services["proxy"]["volumes"] and "proxybodies" in compose["volumes"]
    assert services["web"]["environment"]["EVALSVC_TRUSTED_PROXY_COUNT"] == "1"
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    directives = dict(
        re.findall(r"^\s*(client_max_body_size|proxy_request_buffering|proxy_pass)\s+([^;]+);", conf, re.M)
    )
    assert directives["proxy_request_buffering"] == "on"
    assert directives["proxy_pass"] == "http://evalsvc_web" and "server web:8000;" in conf
    from django.conf import settings

    limit_mib = settings.EVALSVC_MAX_UPLOAD_BYTES // (1024 * 1024)
    assert directives["client_max_body_size"] == f"{limit_mib + 1}m"  # the limit plus room for multipart framing
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf  # never a client-written address


def test_client_address_behind_the_proxy_is_the_forwarded_one(settings):
    from django.test import RequestFactory

    from evalsvc.core.middleware import ForwardedClientAddressMiddleware

    seen = []

    def view(request):
        seen.append(request.META["REMOTE_ADDR"])
        return None

    request = RequestFactory().get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7", REMOTE_ADDR="172.18.0.5")
    settings.EVALSVC_TRUSTED_PROXY_COUNT = 1
    ForwardedClientAddressMiddleware(view)(request)
    settings.EVALSVC_TRUSTED_PROXY_COUNT = 0
    request = RequestFactory().get("/", HTTP_X_FORWARDED_FOR="6.6.6.6", REMOTE_ADDR="172.18.0.5")
    ForwardedClientAddressMiddleware(view)(request)
    assert seen == ["203.0.113.7", "172.18.0.5"]  # the proxy's entry with one trusted proxy; untouched without


def _manage(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "evalsvc.settings.production", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = _manage(["check"])
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_settings_pass_check_deploy(tmp_path):
    result = _manage(
        ["check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_SECRET_KEY="k7#pQ2!vX9@mL4$wR8^tN1&zB6*eJ3(hF5)yC0-uG2+aD7=sK9",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/test",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        DJANGO_ALLOWED_HOSTS="evalsvc.example.com",
        EVALSVC_VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_s3_storage_is_selected_by_environment(tmp_path):
    code = (
        "import django; django.setup(); from django.core.files.storage import storages; s = storages['default']; "
        "print(type(s).__module__, s.bucket_name, s.endpoint_url)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "evalsvc.settings.local",
            "AWS_STORAGE_BUCKET_NAME": "models",
            "AWS_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
            "EVALSVC_VAR_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["storages.backends.s3", "models", "http://127.0.0.1:9000"]


def test_embedded_defaults_need_no_server(tmp_path):
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "evalsvc.settings.local", "EVALSVC_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "filesystem://"]


APP_SERVICES = ("web", "worker-cpu", "worker-registry", "worker-profile", "worker-gpu", "beat")


def _default(value: str) -> str:
    """A compose value with its ``${VAR:-default}`` defaults filled in (nothing set in the shell)."""
    import re

    previous = None
    while previous != value:
        previous = value
        value = re.sub(r"\$\{[A-Z0-9_]+:-([^${}]*)\}", r"\1", value)
        value = re.sub(r"\$\{[A-Z0-9_]+:\?[^}]*\}", "secret", value)
    return value


def test_every_service_touching_artifacts_gets_the_same_storage():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    storage = {
        name: {k: v for k, v in services[name]["environment"].items() if k.startswith(("AWS_", "EVALSVC_STORAGE"))}
        for name in (*APP_SERVICES, "minio-bucket")
    }
    reference = storage["web"]
    assert set(reference) >= {"AWS_STORAGE_BUCKET_NAME", "AWS_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID"}
    for name, env in storage.items():
        assert env == reference, name  # web and every worker read and write one bucket
    # By default that bucket is the compose file's own MinIO, kept on a volume, created before anything starts.
    endpoint = _default(reference["AWS_S3_ENDPOINT_URL"])
    assert endpoint == "http://minio:9000"
    assert "minio" in services and any(v.endswith(":/data") for v in services["minio"]["volumes"])
    assert "miniodata" in compose["volumes"]
    for name in APP_SERVICES:
        assert services[name]["depends_on"]["minio-bucket"] == {"condition": "service_completed_successfully"}
        env_file = services[name]["env_file"]
        assert env_file == [{"path": ".env", "required": False}]  # runs without a .env file
    assert _default(services["minio"]["environment"]["MINIO_ROOT_USER"]) == _default(reference["AWS_ACCESS_KEY_ID"])


def test_compose_storage_settings_select_the_shared_bucket(tmp_path):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = {k: _default(str(v)) for k, v in compose["services"]["worker-cpu"]["environment"].items()}
    code = (
        "import django; django.setup(); from django.core.files.storage import storages; s = storages['default']; "
        "print(type(s).__name__, s.bucket_name, s.endpoint_url)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **{k: v for k, v in env.items() if k.startswith("AWS_")},
             "DJANGO_SETTINGS_MODULE": "evalsvc.settings.local", "EVALSVC_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["S3Storage", "evalsvc", "http://minio:9000"]


def test_cpu_image_takes_torch_cpu_build_and_gpu_image_the_cuda_one():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu" in dockerfile
    install_torch = dockerfile.index('--index-url "$TORCH_INDEX"')
    assert install_torch < dockerfile.index('".${EXTRAS}"')  # torch first, so the project install keeps it
    lock = (ROOT / "requirements" / "lock.txt").read_text().splitlines()
    assert [line for line in lock if line.startswith("torch==")][0].endswith("+cpu")
    gpu = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["worker-gpu"]["build"]["args"]
    assert gpu["TORCH_INDEX"] == "https://pypi.org/simple"  # PyPI's Linux wheel is the CUDA build
    assert gpu["TORCH_VARIANT"] == "cuda" and gpu["EXTRAS"] == "[gpu]"
    # The GPU build's constraints drop "+cpu" from the pin; checked on the lock itself.
    rewritten = subprocess.run(
        ["sed", r"s/^torch==\([^+]*\)+cpu$/torch==\1/", str(ROOT / "requirements" / "lock.txt")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert (
        "torch==2.13.0\n" in rewritten
        and "+cpu" not in [ln for ln in rewritten.splitlines() if ln.startswith("torch==")][0]
    )
