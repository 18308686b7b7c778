# Andon service image: `docker build -t andon .` then
#   docker run -p 8000:8000 -v andon-data:/data andon
# SQLite lives in the /data volume by default; set ANDON_DATABASE_URL for PostgreSQL.
# The same image runs every role (docs/deploy.md): `andon serve` (API, embedded scheduler),
# `andon serve --no-scheduler --no-migrate` (API replica), `andon worker`, `andon migrate`.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY connectors ./connectors
COPY classifiers ./classifiers
COPY migrations ./migrations
RUN pip install . \
    && useradd --create-home --uid 10001 andon \
    && mkdir -p /data \
    && chown andon:andon /data

# Never root: the process owns only /data.
USER 10001:10001
WORKDIR /data
ENV ANDON_DATABASE_URL=sqlite:////data/andon.db \
    ANDON_MODEL_DIR=/data/models \
    ANDON_HOST=0.0.0.0 \
    ANDON_PORT=8000 \
    ANDON_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8000
# Liveness: /healthz answers while the process runs (readiness, /readyz, is for the load
# balancer). A worker has no HTTP port: its compose service overrides this check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os,urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ANDON_PORT','8000'), timeout=4).status == 200 else 1)"
CMD ["andon", "serve"]
