"""`mcpreg serve`: the registry API, run from one configuration document (`mcpreg.apiconfig`).

    mcpreg serve --config /etc/mcpreg/api/config.json            # what the API pods run
    mcpreg serve --file registry.json [--host 127.0.0.1] [--port 8080]
    mcpreg serve --registry NAME --namespace NS [--host 0.0.0.0] [--port 8080]
    mcpreg serve --registry NAME --namespace NS --s3-bucket BUCKET [--s3-endpoint URL] [--s3-presign]

`--config FILE` reads an `ApiServerConfig` document (JSON or YAML): the one the operator renders into the
ConfigMap `<registry>-api-config` and mounts into its API pods, or a hand-written one. The other flags
are conveniences for local use: they fill in the same document (a flag given with `--config` overrides
the document's field, e.g. `--host 127.0.0.1 --port 0` to run a pod's document on loopback), and the
document alone decides what runs.

With `--file`, the file is re-read when it changes (polled). With `--registry`, the catalogue the
operator stored for MCPRegistry NAME (ConfigMap `NAME-data` and its parts) is read through the
Kubernetes API and watched; credentials come from the pod's ServiceAccount when running in a cluster,
else from the kubeconfig (`--kubeconfig` or $KUBECONFIG). With `--s3-bucket`, the catalogue the
operator stored for NAME in S3 (`storage.type: s3`) is read from `<s3-prefix>/<namespace>/NAME/` instead;
credentials come from the standard AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, a
pod identity), never from the command line or the document.

Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT); 2 when used wrongly or the document is invalid.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from mcpreg.apiconfig import API_VERSION, KIND, ApiConfigError, ApiServerConfig, load_config, parse_config

IN_CLUSTER_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

# Each convenience flag (by its argparse dest) and the field of the document it sets. Flags default to
# None ("not given"): the defaults are the document's own.
FLAG_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "registry": ("--registry", ("registry",)),
    "namespace": ("--namespace", ("namespace",)),
    "file": ("--file", ("storage", "path")),
    "poll_interval": ("--poll-interval", ("storage", "pollIntervalSeconds")),
    "s3_bucket": ("--s3-bucket", ("storage", "bucket")),
    "s3_prefix": ("--s3-prefix", ("storage", "prefix")),
    "s3_endpoint": ("--s3-endpoint", ("storage", "endpoint")),
    "s3_region": ("--s3-region", ("storage", "region")),
    "s3_force_path_style": ("--s3-force-path-style", ("storage", "forcePathStyle")),
    "s3_poll_interval": ("--s3-poll-interval", ("storage", "pollIntervalSeconds")),
    "s3_presign": ("--s3-presign", ("storage", "presign", "enabled")),
    "s3_presign_ttl": ("--s3-presign-ttl", ("storage", "presign", "ttlSeconds")),
    "host": ("--host", ("http", "host")),
    "port": ("--port", ("http", "port")),
    "cache_max_age": ("--cache-max-age", ("http", "cacheMaxAgeSeconds")),
    "drain_seconds": ("--drain-seconds", ("http", "limits", "drainSeconds")),
    "access_log": ("--access-log", ("http", "accessLog", "enabled")),
    "access_log_flush": ("--access-log-flush", ("http", "accessLog", "flushIntervalSeconds")),
    "log_level": ("--log-level", ("logLevel",)),
}


_DESCRIPTION = (
    "Serve a catalogue over HTTP: the MCP Registry API v0.1 (also under /v0), ToolHive's /api/v1/registry, "
    "/openapi.yaml, /health, /readiness, /version and /metrics. The data reloads when its source changes, "
    "without dropping requests."
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `serve` to the `mcpreg` command line."""
    help_ = "run the registry API (MCP Registry API v0.1 and ToolHive) on a catalogue"
    parser = subparsers.add_parser("serve", help=help_, description=_DESCRIPTION)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--config", metavar="FILE", help="an ApiServerConfig document (JSON or YAML): what the API pods run"
    )
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
    parser.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig for ConfigMaps outside a cluster")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8080; 0 = any)")
    parser.add_argument(
        "--poll-interval", type=float, metavar="SECONDS", help="how often --file is checked (default 1)"
    )
    parser.add_argument(
        "--cache-max-age",
        type=int,
        metavar="SECONDS",
        help="Cache-Control max-age of catalogue responses (default 30)",
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        metavar="SECONDS",
        help="after SIGTERM keep serving this long, not ready, before closing (default 0; pods: 5)",
    )
    parser.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        help="write the JSON-lines access log to stdout (default: on)",
    )
    parser.add_argument(
        "--access-log-flush",
        type=float,
        metavar="SECONDS",
        help="write buffered access-log lines at least this often (default 1; 0: every line at once)",
    )
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default INFO")
    _add_s3_arguments(parser)
    parser.set_defaults(func=run)


def _add_s3_arguments(parser: argparse.ArgumentParser) -> None:
    s3 = parser.add_argument_group(
        "S3 storage", "with --registry: read the catalogue the operator stored in S3 (storage.type: s3)"
    )
    s3.add_argument("--s3-bucket", metavar="BUCKET", help="the bucket (spec.storage.s3.bucket)")
    s3.add_argument("--s3-prefix", metavar="PREFIX", help="spec.storage.s3.prefix (default none)")
    s3.add_argument("--s3-endpoint", metavar="URL", help="S3-compatible endpoint (default AWS)")
    s3.add_argument("--s3-region", metavar="REGION", help="region of the bucket")
    s3.add_argument(
        "--s3-force-path-style",
        action="store_const",
        const=True,
        help="address the bucket as ENDPOINT/BUCKET (MinIO)",
    )
    s3.add_argument(
        "--s3-poll-interval",
        type=float,
        metavar="SECONDS",
        help="how often the catalogue pointer is checked for a new generation (default 10)",
    )
    s3.add_argument(
        "--s3-presign",
        action="store_const",
        const=True,
        help="answer GET /api/v1/registry with a 302 to a presigned S3 download instead of the bytes",
    )
    s3.add_argument(
        "--s3-presign-ttl",
        type=int,
        metavar="SECONDS",
        help="lifetime of presigned download URLs (default 300)",
    )


def _set(document: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        document = document.setdefault(key, {})
    document[path[-1]] = value


def config_from_args(args: argparse.Namespace) -> ApiServerConfig:
    """The document `args` describe: `--config`'s file with the flags given laid over it, or the flags
    alone. Raises `ApiConfigError` naming the flag (or the file's field) that is wrong."""
    document: dict[str, Any] = {"apiVersion": API_VERSION, "kind": KIND}
    if args.config is not None:
        document = load_config(args.config).document()
    elif args.file is not None:
        document["storage"] = {"type": "file"}
    else:
        document["storage"] = {"type": "s3" if args.s3_bucket is not None else "configmap"}
        document["namespace"] = _default_namespace()  # unless --namespace says otherwise
    given = {dest: flag for dest, (flag, _) in FLAG_FIELDS.items() if getattr(args, dest, None) is not None}
    for dest in given:
        _set(document, FLAG_FIELDS[dest][1], getattr(args, dest))
    flags_by_field = {".".join(FLAG_FIELDS[dest][1]): flag for dest, flag in given.items()}
    try:
        return parse_config(document, args.config or "the command line")
    except ApiConfigError as exc:
        flag = flags_by_field.get(exc.field)
        if flag is None:
            raise
        raise ApiConfigError(flag, "", exc.message) from None


def run(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except ApiConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if config.storage.type == "file" and not Path(config.storage.path).is_file():
        print(f"error: {config.storage.path}: no such file", file=sys.stderr)
        return 2
    from mcpreg_api.launch import run_config

    run_config(config, kubeconfig=args.kubeconfig)
    return 0


def _default_namespace() -> str:
    from_env = os.environ.get("POD_NAMESPACE")
    if from_env:
        return from_env
    try:
        return IN_CLUSTER_NAMESPACE_FILE.read_text().strip() or "default"
    except OSError:
        return "default"
