"""The `mcpreg` command line: one entry point, one module per group of subcommands.

Each command module of `mcpreg_cli` exposes `register(subparsers)`, which adds its subcommands and sets
`func` on each parser to a callable taking the parsed arguments and returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from mcpreg import __version__

# Modules under mcpreg_cli, in the order their commands appear in `mcpreg --help`.
COMMAND_MODULES = ("catalog", "serve", "verify", "operator")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcpreg",
        description="Validate, convert and serve MCP server catalogues; run the MCPRegistry operator.",
    )
    parser.add_argument("--version", action="version", version=f"mcpreg {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"mcpreg_cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        code = func(args)
    except KeyboardInterrupt:
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
