# One image for every service: the compose `command` picks which one runs
# (`python -m api_gateway`, `python -m ingestion_service`, `python -m db migrate`, ...).
# Built by the classic builder as well as BuildKit, from the base image and PyPI alone.
ARG PYTHON_IMAGE=python:3.11-slim

# --- deps: the runtime dependencies, pinned by constraints.txt, in a virtualenv -------------
# This layer changes when pyproject.toml or constraints.txt change, not when the code does.
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /build
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && pip install -r requirements.txt -c constraints.txt

# --- runtime: slim base, the virtualenv, the code, a non-root user -------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOG_FORMAT=json
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app \
 && install -d -o app -g app /var/lib/megapack/rabbitmq /var/lib/megapack/simulator \
 && install -d -o app -g app -m 0700 /run/secrets/megapack
COPY --from=deps /opt/venv /opt/venv
WORKDIR /app
# The code belongs to root and is read-only for the service user; byte-code is compiled here.
COPY . /app
RUN python -m compileall -q /app
USER app
EXPOSE 8000 8001 8002 9100
CMD ["python", "-m", "api_gateway"]
