# syntax=docker/dockerfile:1
# One image for the operator (`mcpreg operator`, the default command) and for each MCPRegistry's
# registry API (`mcpreg serve --registry NAME --namespace NS`, which the operator's Deployments run).
#
#   docker build -t ghcr.io/mcp-registry-operator/mcp-registry-operator:0.1.0 .
#
# The base is pinned by tag here; release builds pin it by digest as well:
#   --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest>
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- build: install the project and its (binary-wheel) dependencies into a virtual environment ------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src/ src/
COPY operator/ operator/
COPY api-server/ api-server/
# The venv keeps no installer: pip and setuptools are removed once the project is in.
RUN python -m venv /opt/mcpreg \
    && /opt/mcpreg/bin/pip install --only-binary=:all: --no-binary=mcp-registry-operator . \
    && /opt/mcpreg/bin/pip uninstall --yes pip setuptools \
    && /opt/mcpreg/bin/mcpreg --version

# --- runtime: Python, git (the git source runs it) and the venv; no compilers, no pip ---------------
FROM ${PYTHON_IMAGE} AS runtime
ARG UID=65532
RUN apt-get update \
    && apt-get install --yes --no-install-recommends git ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python -m pip uninstall --yes pip setuptools wheel \
    && groupadd --gid "${UID}" nonroot \
    && useradd --uid "${UID}" --gid "${UID}" --no-create-home --home-dir /tmp --shell /usr/sbin/nologin nonroot
COPY --from=build /opt/mcpreg /opt/mcpreg
# HOME=/tmp: the root filesystem is read-only in the chart's pods; /tmp is an emptyDir.
ENV PATH=/opt/mcpreg/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
LABEL org.opencontainers.image.title="mcp-registry-operator" \
      org.opencontainers.image.description="MCPRegistry operator and registry API" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/mcp-registry-operator/mcp-registry-operator"
USER 65532:65532
WORKDIR /tmp
# 8080: registry API (mcpreg serve); 8081: the operator's health endpoint (Kopf liveness).
EXPOSE 8080 8081
ENTRYPOINT ["mcpreg"]
CMD ["operator"]
