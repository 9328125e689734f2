# reapi gateway image: `reapi-server serve` as a non-root user, state in /var/lib/reapi.
# The fleet shape (two gateways, PostgreSQL, Redis, MinIO, Caddy) is compose.yaml; docs/deploying.md.

# -- build: a virtualenv with reapi, its server extra and the optional backends it can use ----
FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/reapi \
 && /opt/reapi/bin/pip install --no-compile '.[server,s3,postgres,redis,otel]'

# -- run: the virtualenv only, no compiler, no pip cache -------------------------------------
FROM python:3.12-slim
RUN groupadd --system --gid 10001 reapi \
 && useradd --system --uid 10001 --gid reapi --home-dir /var/lib/reapi --shell /usr/sbin/nologin reapi \
 && install -d -o reapi -g reapi -m 0700 /var/lib/reapi
COPY --from=build /opt/reapi /opt/reapi
ENV PATH=/opt/reapi/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    REAPI_HOST=0.0.0.0 \
    REAPI_DATA_DIR=/var/lib/reapi
USER reapi
WORKDIR /var/lib/reapi
VOLUME ["/var/lib/reapi"]
# 8000: the API. 9464: /metrics, for a private network only (REAPI_METRICS_LISTEN).
EXPOSE 8000 9464
# SIGTERM drains: no new connections, requests in flight get REAPI_DRAIN_SECONDS (30).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('REAPI_PORT', '8000'), timeout=2)"]
ENTRYPOINT ["reapi-server"]
CMD ["serve"]
