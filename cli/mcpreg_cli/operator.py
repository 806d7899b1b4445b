"""`mcpreg operator`: run the MCPRegistry operator against the current kubeconfig (or in-cluster)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "operator",
        help="run the MCPRegistry operator",
        description="Run the operator against the current kubeconfig (or the in-cluster ServiceAccount).",
    )
    parser.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        help="watch only this namespace (repeatable; glob patterns allowed); default: all namespaces",
    )
    parser.add_argument(
        "--liveness",
        default=None,
        metavar="URL",
        help="serve Kopf's liveness probe, e.g. http://0.0.0.0:8081/healthz",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics on this port at /metrics (default: not served)",
    )
    parser.add_argument("--metrics-address", default="0.0.0.0", help="address for --metrics-port")
    parser.add_argument(
        "--peering",
        default=None,
        metavar="NAME",
        help="coordinate with other instances through this KopfPeering (default: standalone)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--log-format", default="plain", choices=["plain", "json"])
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Kopf imports every Kubernetes client library it finds, to recognise their objects. The operator
    # uses only kubernetes_asyncio; the synchronous client (installed with the test tools) would cost
    # about 60 MiB of resident memory for nothing, so Kopf is told it is absent.
    if "kubernetes" not in sys.modules:
        sys.modules["kubernetes"] = None  # type: ignore[assignment]
    import kopf

    import mcpreg_operator.handlers  # registers the handlers
    from mcpreg_operator.ambient_s3 import AmbientCredentialsPolicy
    from mcpreg_operator.sources.url_http import UrlPolicy

    try:
        # A malformed setting stops the operator at start-up, not each sync of each registry using it.
        AmbientCredentialsPolicy.from_environment()
        UrlPolicy.from_environment()
    except ValueError as exc:
        print(f"mcpreg operator: {exc}", file=sys.stderr)
        return 2

    kopf.configure(
        debug=args.log_level == "DEBUG",
        quiet=args.log_level in ("WARNING", "ERROR"),
        log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.PLAIN,
    )
    logging.getLogger("mcpreg_operator").setLevel(args.log_level)
    if args.metrics_port is not None:
        import prometheus_client

        # Served from a thread of its own: a scrape still answers while the event loop is stalled,
        # which is exactly when the lag figures matter.
        prometheus_client.start_http_server(args.metrics_port, addr=args.metrics_address)
    namespaces = list(args.namespace)
    mcpreg_operator.handlers.WATCH_NAMESPACES[:] = namespaces
    asyncio.run(
        kopf.operator(
            standalone=args.peering is None,
            peering_name=args.peering,
            namespaces=namespaces,
            clusterwide=not namespaces,
            liveness_endpoint=args.liveness,
        )
    )
    return 0
