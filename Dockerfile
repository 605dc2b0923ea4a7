# One image for web, workers and beat; the command differs per service.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=evalsvc.settings.production
ARG EXTRAS=""
WORKDIR /app
# Pango and fonts for WeasyPrint's PDF reports; Noto CJK so Chinese/Japanese/Korean text is not boxes.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
        libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY requirements/ requirements/
COPY evalsvc/ evalsvc/
COPY workers/ workers/
# torch first, from its own wheel index: the CPU build (about 200 MB) for the CPU
# image, not PyPI's CUDA build of several GB. The GPU image passes PyPI as the
# index and TORCH_VARIANT=cuda, which drops the lock's "+cpu" local version.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_VARIANT=cpu
RUN if [ "$TORCH_VARIANT" = cpu ]; then cp requirements/lock.txt /tmp/constraints.txt; \
    else sed 's/^torch==\([^+]*\)+cpu$/torch==\1/' requirements/lock.txt > /tmp/constraints.txt; fi \
    && pip install --no-cache-dir --index-url "$TORCH_INDEX" -c /tmp/constraints.txt torch "torchvision==0.28.*" \
    && pip install --no-cache-dir -c /tmp/constraints.txt ".${EXTRAS}"
COPY . .
RUN DJANGO_SECRET_KEY=build-only-not-secret-build-only-not-secret-build-only python manage.py collectstatic --noinput
RUN useradd --create-home evalsvc && mkdir -p /app/var && chown -R evalsvc /app/var
USER evalsvc
EXPOSE 8000
CMD ["gunicorn", "evalsvc.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "120"]
