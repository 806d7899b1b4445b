"""`python -m mcpreg_dev up | down | env`: the local environment of the README's first command.

`make up`, `make down` and `make env` call it. `mcpreg_dev` lives only in a development checkout: the
wheel and the image leave it out, and the product's `mcpreg` command line does not know it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mcpreg_dev",
        description="Run everything locally: control plane, real node, chart, operator, sample, API.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    up_parser = actions.add_parser("up", help="start (or reuse) the local environment")
    up_parser.add_argument(
        "--with-s3", action="store_true", help="also run MinIO and a sample MCPRegistry stored in it"
    )
    up_parser.set_defaults(func=_up)
    actions.add_parser("down", help="stop it and remove its state").set_defaults(func=_down)
    actions.add_parser("env", help="print the shell lines that point kubectl and curl at it").set_defaults(
        func=_env
    )
    return parser


def _progress(message: str) -> None:
    print(f"mcpreg dev: {message}", file=sys.stderr, flush=True)


def _up(args: argparse.Namespace) -> int:
    from mcpreg_dev.binaries import BuildError
    from mcpreg_dev.devstack import SAMPLE_NAME, SAMPLE_NAMESPACE, dev_dir, env_lines, up

    try:
        stack = up(_progress, with_s3=args.with_s3)
    except (BuildError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    url = stack.get("api_url", "")
    print(
        f"""
The local MCP registry is up.

  {chr(10).join("  " + line if i else line for i, line in enumerate(env_lines()))}

Try:
  kubectl get mcpreg -A
  kubectl describe mcpreg {SAMPLE_NAME} -n {SAMPLE_NAMESPACE}
  curl -s {url}/v0.1/servers | python3 -m json.tool | head -40
  curl -s '{url}/v0.1/servers?search=tickets'
  kubectl annotate mcpreg {SAMPLE_NAME} -n {SAMPLE_NAMESPACE} --overwrite \\
      mcpregistry.dev/sync-trigger="$(date +%s)"
  thv config set-registry {url} -p     # ToolHive's client

Stop everything with: make down
Logs: {dev_dir() / "logs"}/
"""
    )
    return 0


def _down(args: argparse.Namespace) -> int:
    from mcpreg_dev.devstack import down

    down(_progress)
    return 0


def _env(args: argparse.Namespace) -> int:
    from mcpreg_dev.devstack import env_lines

    try:
        print("\n".join(env_lines()))
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
