# syntax=docker/dockerfile:1
#
# Image of the FastAPI example receiver (examples/receiver-fastapi) for the
# compose demo. Build context: the repository root.
#
#   docker build -f deploy/compose/receiver.Dockerfile -t hookbridge-receiver-fastapi .
#
# Environment (set by compose.yaml; see examples/receiver-fastapi/README.md):
# WEBHOOK_SECRETS (the Standard Webhooks secret(s) hookbridge signs with),
# FAIL_EVERY_NTH, OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_ENDPOINT (OTLP/gRPC).

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first: only requirements.txt invalidates this layer.
COPY examples/receiver-fastapi/requirements.txt ./
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -r requirements.txt

COPY examples/receiver-fastapi/app.py ./

# "nobody" of the Debian base; the app writes nothing.
USER 65534:65534
EXPOSE 8000
CMD ["uvicorn", "app:app", "--host", "0.0.0.0", "--port", "8000"]
