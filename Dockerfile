# syntax=docker/dockerfile:1
# One image for the operator (`mcpreg operator`, the default command) and for each MCPRegistry's
# registry API (`mcpreg serve --registry NAME --namespace NS`, which the operator's Deployments run).
#
#   docker build -t ghcr.io/mcp-registry-operator/mcp-registry-operator:0.1.0 .
#
# Without Docker, `make image` builds the same image from Debian packages (dev/mcpreg_dev/image.py):
# Debian 12 (bookworm) with its python3 (3.11), git and ca-certificates; the pinned dependencies and the
# project's wheel in /usr/local/lib/python3.11/dist-packages; the same user, entrypoint, command, ports
# and environment. tests/unit/deploy/test_image_agreement.py keeps the two in step.
#
# The base is Debian bookworm-slim pinned by its point-release tag; release builds pin it by digest too:
#   --build-arg DEBIAN_IMAGE=debian:12.15-slim@sha256:<digest>
ARG DEBIAN_IMAGE=debian:12.15-slim

# --- build: the project's wheel and its pinned (binary-wheel) dependencies, installed into /staging -----
FROM ${DEBIAN_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN apt-get update \
    && apt-get install --yes --no-install-recommends python3 python3-pip \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src/ src/
COPY operator/ operator/
COPY api-server/ api-server/
COPY cli/ cli/
# The wheel holds the four product packages (the development package dev/ is not copied); its dependencies are the
# exact pins of pyproject.toml, installed as binary wheels for Debian 12's Python; no console scripts.
RUN python3 -m pip wheel --no-deps --wheel-dir /wheels . \
    && python3 -m pip install --no-compile --target /staging/usr/local/lib/python3.11/dist-packages \
        --platform manylinux2014_x86_64 --python-version 3.11 --implementation cp --only-binary=:all: \
        /wheels/*.whl \
    && rm -rf /staging/usr/local/lib/python3.11/dist-packages/bin \
    && mkdir -p /staging/usr/local/bin \
    && printf '#!/usr/bin/python3\nimport sys\n\nfrom mcpreg_cli.main import main\n\nsys.exit(main())\n' \
        > /staging/usr/local/bin/mcpreg \
    && chmod 0755 /staging/usr/local/bin/mcpreg \
    && python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash -s /staging -p / \
        /staging/usr/local/lib/python3.11/dist-packages

# --- runtime: Debian's python3, git (the git source runs it) and the staged code; no pip, no compilers ---
FROM ${DEBIAN_IMAGE} AS runtime
RUN apt-get update \
    && apt-get install --yes --no-install-recommends python3 git ca-certificates gpgv openssh-client \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65532 nonroot \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin nonroot
COPY --from=build /staging/ /
# HOME=/tmp: the root filesystem is read-only in the chart's pods; /tmp is an emptyDir.
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
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
