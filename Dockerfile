# Blanco: a slim, non-root image that runs the app under gunicorn.
#   docker build -t blanco .
#   docker run -p 8000:8000 -e BLANCO_SIGNING_KEYS=... -e REDIS_URL=redis://redis:6379/0 blanco
# The build stage builds the wheel (packages, templates and fonts) and installs it into a venv;
# the final image has that venv and the two entry files, not the source folders.
FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md ./
COPY server ./server
COPY models ./models
COPY renderers ./renderers
COPY templates ./templates
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install /wheels/blanco-*.whl

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin blanco
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY wsgi.py gunicorn.conf.py ./
RUN mkdir -p /app/data && chown blanco /app/data
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BLANCO_BIND=0.0.0.0:8000 \
    BLANCO_DATA_DIR=/app/data
USER blanco
EXPOSE 8000
VOLUME ["/app/data"]
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
