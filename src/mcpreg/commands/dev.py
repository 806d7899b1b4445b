"""`mcpreg dev up | down | env`: the local environment of the README's first command.

`mcpreg.devenv` lives only in a development checkout (the wheel and the image leave it out), so it is
imported when a `dev` command runs, never when the CLI starts; without it the command fails with one line.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

NO_DEVENV = (
    "`mcpreg dev` needs a development checkout of mcp-registry-operator (`make venv` there); "
    "this installation has no mcpreg.devenv"
)


def _needs_devenv(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        if importlib.util.find_spec("mcpreg.devenv") is None:
            print(f"error: {NO_DEVENV}", file=sys.stderr)
            return 2
        return func(args)

    return run


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dev", help="run everything locally (control plane, operator, sample, API)"
    )
    dev = parser.add_subparsers(dest="dev_command", metavar="ACTION", required=True)
    up_parser = dev.add_parser("up", help="start (or reuse) the local environment")
    up_parser.add_argument(
        "--with-s3", action="store_true", help="also run MinIO and a sample MCPRegistry stored in it"
    )
    up_parser.set_defaults(func=_needs_devenv(_up))
    dev.add_parser("down", help="stop it and remove its state").set_defaults(func=_needs_devenv(_down))
    dev.add_parser("env", help="print the shell lines that point kubectl and curl at it").set_defaults(
        func=_needs_devenv(_env)
    )


def _progress(message: str) -> None:
    print(f"mcpreg dev: {message}", file=sys.stderr, flush=True)


def _up(args: argparse.Namespace) -> int:
    from mcpreg.devenv.binaries import BuildError
    from mcpreg.devenv.devstack import SAMPLE_NAME, SAMPLE_NAMESPACE, dev_dir, env_lines, up

    try:
        stack = up(_progress, with_s3=args.with_s3)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:
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

Stop everything with: make down   (or: .venv/bin/mcpreg dev down)
Logs: {dev_dir() / "logs"}/
"""
    )
    return 0


def _down(args: argparse.Namespace) -> int:
    from mcpreg.devenv.devstack import down

    down(_progress)
    return 0


def _env(args: argparse.Namespace) -> int:
    from mcpreg.devenv.devstack import env_lines

    try:
        print("\n".join(env_lines()))
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
