"""`mcpreg serve`: the registry API on a local catalogue file or on an MCPRegistry's ConfigMaps.

    mcpreg serve --file registry.json [--host 127.0.0.1] [--port 8080]
    mcpreg serve --registry NAME --namespace NS [--host 0.0.0.0] [--port 8080]
    mcpreg serve --registry NAME --namespace NS --s3-bucket BUCKET [--s3-endpoint URL] [--s3-presign]

With `--file`, the file is re-read when it changes (polled). With `--registry`, the catalogue the
operator stored for MCPRegistry NAME (ConfigMap `NAME-data` and its parts) is read through the
Kubernetes API and watched; credentials come from the pod's ServiceAccount when running in a cluster,
else from the kubeconfig (`--kubeconfig` or $KUBECONFIG). This is what the operator's API Deployment runs.
With `--s3-bucket`, the catalogue the operator stored for NAME in S3 (`storage.type: s3`) is read from
`<s3-prefix>/<namespace>/NAME/` instead, its pointer polled every `--s3-poll-interval` seconds;
credentials come from the standard AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, a
pod identity), never from the command line. `--s3-presign` answers `GET /api/v1/registry` with a 302
to a presigned download (valid `--s3-presign-ttl` seconds) of the same document.

Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT); 2 when used wrongly.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

IN_CLUSTER_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the registry API (MCP Registry API v0.1 and ToolHive) on a catalogue",
        description=(
            "Serve a catalogue over HTTP: the MCP Registry API v0.1 (also under /v0), ToolHive's "
            "/api/v1/registry, /openapi.yaml, /health, /readiness, /version and /metrics. The data "
            "reloads when its source changes, without dropping requests."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", metavar="FILE", help="a catalogue file (ToolHive or upstream format)")
    source.add_argument(
        "--registry",
        metavar="NAME",
        help="the MCPRegistry whose stored catalogue to serve (reads ConfigMap NAME-data and its parts)",
    )
    parser.add_argument(
        "--namespace",
        "-n",
        metavar="NS",
        help="namespace of --registry (default: $POD_NAMESPACE, the in-cluster namespace, or 'default')",
    )
    parser.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig for --registry outside a cluster")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080; 0 = any)")
    parser.add_argument(
        "--poll-interval", type=float, default=1.0, metavar="SECONDS", help="how often --file is checked"
    )
    parser.add_argument(
        "--cache-max-age",
        type=int,
        default=30,
        metavar="SECONDS",
        help="Cache-Control max-age of catalogue responses (default 30)",
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="after SIGTERM keep serving this long, not ready, before closing (default 0; pods: 5)",
    )
    parser.add_argument(
        "--no-access-log", action="store_true", help="do not write the JSON-lines access log to stdout"
    )
    parser.add_argument(
        "--access-log-flush",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="write buffered access-log lines at least this often (default 1; 0: every line at once)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    _add_s3_arguments(parser)
    parser.set_defaults(func=run)


def _add_s3_arguments(parser: argparse.ArgumentParser) -> None:
    s3 = parser.add_argument_group(
        "S3 storage", "with --registry: read the catalogue the operator stored in S3 (storage.type: s3)"
    )
    s3.add_argument("--s3-bucket", metavar="BUCKET", help="the bucket (spec.storage.s3.bucket)")
    s3.add_argument("--s3-prefix", default="", metavar="PREFIX", help="spec.storage.s3.prefix (default none)")
    s3.add_argument("--s3-endpoint", default="", metavar="URL", help="S3-compatible endpoint (default AWS)")
    s3.add_argument("--s3-region", default="", metavar="REGION", help="region of the bucket")
    s3.add_argument(
        "--s3-force-path-style", action="store_true", help="address the bucket as ENDPOINT/BUCKET (MinIO)"
    )
    s3.add_argument(
        "--s3-poll-interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how often the catalogue pointer is checked for a new generation (default 10)",
    )
    s3.add_argument(
        "--s3-presign",
        action="store_true",
        help="answer GET /api/v1/registry with a 302 to a presigned S3 download instead of the bytes",
    )
    s3.add_argument(
        "--s3-presign-ttl",
        type=int,
        default=300,
        metavar="SECONDS",
        help="lifetime of presigned download URLs (default 300)",
    )


def run(args: argparse.Namespace) -> int:
    from mcpreg_api.config import HttpLimits, ServerConfig
    from mcpreg_api.server import configure_logging
    from mcpreg_api.server import run as run_server

    if not 0 <= args.port <= 65535:
        print(f"error: --port {args.port} is not a TCP port", file=sys.stderr)
        return 2
    if args.cache_max_age < 0 or args.drain_seconds < 0:
        print("error: --cache-max-age and --drain-seconds must not be negative", file=sys.stderr)
        return 2
    if args.file is not None and not Path(args.file).is_file():
        print(f"error: {args.file}: no such file", file=sys.stderr)
        return 2
    configure_logging(args.log_level)
    config = ServerConfig(
        cache_max_age=args.cache_max_age,
        access_log=not args.no_access_log,
        access_log_flush_interval=max(args.access_log_flush, 0.0),
        limits=HttpLimits(drain_seconds=args.drain_seconds),
    )
    if args.s3_bucket is not None and args.file is not None:
        print("error: --s3-bucket goes with --registry, not --file", file=sys.stderr)
        return 2
    if args.s3_poll_interval <= 0 or args.s3_presign_ttl < 1:
        print("error: --s3-poll-interval and --s3-presign-ttl must be positive", file=sys.stderr)
        return 2
    if args.file is not None:
        make_app = _file_app(args, config)
    elif args.s3_bucket is not None:
        make_app = _s3_app(args, config)
    else:
        make_app = _configmap_app(args, config)
    run_server(make_app, host=args.host, port=args.port)
    return 0


def _file_app(args: argparse.Namespace, config: Any) -> Any:
    @contextlib.asynccontextmanager
    async def make_app() -> AsyncIterator[Any]:
        from mcpreg.storage import FileCatalogReader
        from mcpreg_api.app import create_app

        # The API server parses and validates each version itself (keeping the last good one when a
        # version is bad), so the reader need not parse it a second time just to count servers.
        reader = FileCatalogReader(args.file, poll_interval=args.poll_interval, count_servers=_not_counted)
        yield create_app(reader, config=config)

    return make_app


def _not_counted(data: bytes) -> int:
    return 0


def _configmap_app(args: argparse.Namespace, config: Any) -> Any:
    @contextlib.asynccontextmanager
    async def make_app() -> AsyncIterator[Any]:
        from kubernetes_asyncio import client
        from kubernetes_asyncio import config as kube_config

        from mcpreg.storage import ConfigMapCatalogReader
        from mcpreg_api.app import create_app

        if (
            args.kubeconfig is None
            and os.environ.get("KUBERNETES_SERVICE_HOST")
            and not os.environ.get("KUBECONFIG")
        ):
            kube_config.load_incluster_config()  # type: ignore[no-untyped-call]
        else:
            await kube_config.load_kube_config(config_file=args.kubeconfig)
        api = client.ApiClient()
        try:
            reader = ConfigMapCatalogReader(api, _namespace(args), args.registry)
            yield create_app(reader, config=config)
        finally:
            await api.close()

    return make_app


def _s3_app(args: argparse.Namespace, config: Any) -> Any:
    @contextlib.asynccontextmanager
    async def make_app() -> AsyncIterator[Any]:
        from mcpreg.storage.s3_config import S3Settings
        from mcpreg.storage.s3_reader import S3CatalogReader
        from mcpreg_api.app import create_app

        settings = S3Settings(
            bucket=args.s3_bucket,
            prefix=args.s3_prefix.strip("/"),
            endpoint=args.s3_endpoint,
            region=args.s3_region,
            force_path_style=args.s3_force_path_style,
        )
        reader = S3CatalogReader(
            settings,
            _namespace(args),
            args.registry,
            poll_interval=args.s3_poll_interval,
            presign_ttl=args.s3_presign_ttl,
        )
        redirect = reader.presigned_toolhive_url if args.s3_presign else None
        yield create_app(reader, config=config, toolhive_redirect=redirect)

    return make_app


def _namespace(args: argparse.Namespace) -> str:
    if args.namespace:
        return str(args.namespace)
    from_env = os.environ.get("POD_NAMESPACE")
    if from_env:
        return from_env
    try:
        return IN_CLUSTER_NAMESPACE_FILE.read_text().strip() or "default"
    except OSError:
        return "default"
