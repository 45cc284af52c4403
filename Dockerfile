# The forwarder service: `docker run IMAGE` runs it, `docker run IMAGE demo` runs the demo.
FROM python:3.12-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    FORWARDER_DATA_DIR=/data

# A fixed uid, so a host directory mounted on /data can be given to it.
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin forwarder \
    && mkdir /data \
    && chown forwarder:forwarder /data

# Only what the package needs; no dev extras. The sources are dropped once installed.
WORKDIR /build
COPY pyproject.toml ./
COPY forwarder ./forwarder
RUN pip install --no-cache-dir . \
    && rm -rf /build

# The working directory is the volume, so a .env placed there is read as well.
WORKDIR /data
# Numeric, so Kubernetes can verify runAsNonRoot.
USER 10001:10001
VOLUME /data

ENTRYPOINT ["python", "-m", "forwarder"]
