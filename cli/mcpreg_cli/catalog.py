"""`mcpreg validate` and `mcpreg convert`: the catalogue library on the command line.

Exit codes: 0 success; 1 a catalogue is invalid (every problem is printed, one per line, as
`FILE: path: message`); 2 a file could not be read or the command was used wrongly. Bad input never
produces a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from mcpreg.catalog import (
    DEFAULT_NAMESPACE,
    Catalog,
    CatalogError,
    CatalogLimits,
    parse_catalog,
    read_catalog_file,
)
from mcpreg.catalog.limits import DEFAULT_MAX_BYTES, DEFAULT_MAX_DEPTH, DEFAULT_MAX_ENTRIES

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_UNREADABLE = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `validate` and `convert` to the `mcpreg` command line."""
    validate = subparsers.add_parser(
        "validate",
        help="check catalogue files (ToolHive or upstream format)",
        description=(
            "Validate MCP server catalogues. Prints every problem with its entry and JSON path; exits 0 "
            "when all files are valid, 1 when any is invalid, 2 when any cannot be read."
        ),
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="catalogue file ('-' for stdin)")
    _add_common_options(validate)
    validate.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    validate.set_defaults(func=run_validate)

    convert = subparsers.add_parser(
        "convert",
        help="convert a catalogue between ToolHive and upstream formats",
        description="Convert a catalogue and write it to stdout as JSON.",
    )
    convert.add_argument("file", metavar="FILE", help="catalogue file ('-' for stdin)")
    convert.add_argument("--to", required=True, choices=("upstream", "toolhive"), help="output format")
    convert.add_argument(
        "--shape",
        choices=("wrapped", "response", "list"),
        default="wrapped",
        help=(
            "upstream output shape: 'wrapped' registry file {version, meta, data: {servers}} (default), "
            "'response' v0.1 list response {servers: [{server, _meta}]}, or a bare 'list'"
        ),
    )
    convert.add_argument(
        "--namespace",
        default=DEFAULT_NAMESPACE,
        help=f"reverse-DNS namespace for ToolHive servers in upstream output (default {DEFAULT_NAMESPACE})",
    )
    _add_common_options(convert)
    convert.set_defaults(func=run_convert)


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("auto", "toolhive", "upstream"),
        default="auto",
        help="input format (default: detect from content)",
    )
    parser.add_argument(
        "--max-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_BYTES,
        metavar="N",
        help=f"refuse documents larger than N bytes (default {DEFAULT_MAX_BYTES})",
    )
    parser.add_argument(
        "--max-entries",
        type=_positive_int,
        default=DEFAULT_MAX_ENTRIES,
        metavar="N",
        help=f"refuse catalogues with more than N server entries (default {DEFAULT_MAX_ENTRIES})",
    )
    parser.add_argument(
        "--max-depth",
        type=_positive_int,
        default=DEFAULT_MAX_DEPTH,
        metavar="N",
        help=f"refuse JSON nested deeper than N levels (default {DEFAULT_MAX_DEPTH})",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _limits(args: argparse.Namespace) -> CatalogLimits:
    return CatalogLimits(max_bytes=args.max_bytes, max_entries=args.max_entries, max_depth=args.max_depth)


def _read(path: str, limits: CatalogLimits) -> bytes:
    if path == "-":
        # One byte over the limit is enough for the parser to report the document as too large.
        return sys.stdin.buffer.read(limits.max_bytes + 1)
    return read_catalog_file(path, limits)


def _describe_os_error(path: str, exc: OSError) -> str:
    reason = exc.strerror or exc.__class__.__name__
    return f"{path}: cannot read file: {reason}"


def run_validate(args: argparse.Namespace) -> int:
    limits = _limits(args)
    exit_code = EXIT_OK
    for path in args.files:
        try:
            catalog = parse_catalog(_read(path, limits), format=args.format, limits=limits)
        except OSError as exc:
            print(_describe_os_error(path, exc), file=sys.stderr)
            exit_code = EXIT_UNREADABLE
            continue
        except CatalogError as exc:
            for issue in exc.issues:
                print(f"{path}: {issue.render()}")
            count = len(exc.issues)
            print(f"{path}: invalid ({count} problem{'s' * (count != 1)})", file=sys.stderr)
            exit_code = max(exit_code, EXIT_INVALID)
            continue
        if not args.quiet:
            print(f"{path}: valid {_summary(catalog)}")
    return exit_code


def _summary(catalog: Catalog) -> str:
    versions = "" if catalog.entry_count == catalog.server_count else f", {catalog.entry_count} versions"
    return (
        f"({catalog.source_format} format, {catalog.server_count} server"
        f"{'s' * (catalog.server_count != 1)}{versions}, {catalog.content_hash})"
    )


def run_convert(args: argparse.Namespace) -> int:
    limits = _limits(args)
    try:
        catalog = parse_catalog(
            _read(args.file, limits), format=args.format, limits=limits, namespace=args.namespace
        )
    except OSError as exc:
        print(_describe_os_error(args.file, exc), file=sys.stderr)
        return EXIT_UNREADABLE
    except CatalogError as exc:
        for issue in exc.issues:
            print(f"{args.file}: {issue.render()}", file=sys.stderr)
        return EXIT_INVALID
    output: Any
    if args.to == "toolhive":
        output = catalog.toolhive_view()
        for skipped in catalog.toolhive_skipped:
            print(
                f"{args.file}: note: {skipped.name} {skipped.version} left out of the ToolHive output: "
                f"{skipped.reason}",
                file=sys.stderr,
            )
    else:
        output = catalog.upstream_document(args.shape)
    return _write_json(output, sys.stdout)


def _write_json(value: Any, stream: TextIO) -> int:
    try:
        json.dump(value, stream, indent=2, ensure_ascii=False)
        stream.write("\n")
        stream.flush()
    except BrokenPipeError:
        # `mcpreg convert … | head` closing the pipe early is not an error worth a traceback.
        return EXIT_OK
    return EXIT_OK
