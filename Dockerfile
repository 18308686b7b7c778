# Andon service image: `docker build -t andon .` then
#   docker run -p 8000:8000 -v andon-data:/data andon
# SQLite lives in the /data volume by default; set ANDON_DATABASE_URL for PostgreSQL.
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

USER andon
WORKDIR /data
ENV ANDON_DATABASE_URL=sqlite:////data/andon.db \
    ANDON_MODEL_DIR=/data/models \
    ANDON_HOST=0.0.0.0 \
    ANDON_PORT=8000
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"
CMD ["andon", "serve"]
