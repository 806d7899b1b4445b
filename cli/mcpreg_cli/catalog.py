"""`mcpreg validate` and `mcpreg convert`: the catalogue library on the command line.

`validate` prints every error and warning with the file's line and column (`validate_report.py`
formats them as text, JSON or GitHub annotations). Exit codes: 0 valid (warnings allowed unless
`--strict`); 1 a catalogue has errors (or warnings, with `--strict`); 2 a file could not be read or
the command was used wrongly. Bad input never produces a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from mcpreg.catalog import (
    DEFAULT_NAMESPACE,
    CatalogError,
    CatalogLimits,
    parse_catalog,
    read_catalog_file,
)
from mcpreg.catalog.limits import DEFAULT_MAX_BYTES, DEFAULT_MAX_DEPTH, DEFAULT_MAX_ENTRIES
from mcpreg_cli.validate_report import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_UNREADABLE,
    OUTPUT_FORMATS,
    FileReport,
    exit_code,
    located_issues,
    validate_document,
    write_reports,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `validate` and `convert` to the `mcpreg` command line."""
    validate = subparsers.add_parser(
        "validate",
        help="check catalogue files (ToolHive or upstream format)",
        description=(
            "Validate MCP server catalogues. Prints every error (the entry cannot be served) and warning "
            "(the entry is served after normalisation) with its line, column and JSON path; exits 0 when "
            "no file has errors, 1 when any has (or has warnings, with --strict), 2 when any cannot be read."
        ),
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="catalogue file ('-' for stdin)")
    _add_common_options(validate)
    validate.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    validate.add_argument(
        "--strict", action="store_true", help="fail on warnings too (for CI in catalogue repositories)"
    )
    validate.add_argument(
        "--output",
        choices=OUTPUT_FORMATS,
        default="text",
        help="'text' (default), 'json' (one document on stdout) or 'github' (workflow-command annotations)",
    )
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
    reports: list[FileReport] = []
    for path in args.files:
        try:
            data = _read(path, limits)
        except OSError as exc:
            reports.append(FileReport(path, unreadable=_describe_os_error(path, exc)))
            continue
        except CatalogError as exc:
            reports.append(FileReport(path, errors=located_issues(exc.issues, None)))
            continue
        reports.append(validate_document(path, data, args.format, limits))
    write_reports(reports, args.output, sys.stdout, sys.stderr, quiet=args.quiet)
    return exit_code(reports, strict=args.strict)


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
