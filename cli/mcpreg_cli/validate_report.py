"""What `mcpreg validate` found in each file, and how it is written: text, JSON or GitHub annotations.

Each issue is placed at the line and column of its JSON path in the file (`mcpreg.catalog.positions`),
so an editor, a terminal or a pull-request view can jump to it:

    text    registry.json:14:7: error: servers.fetch.transport: must be one of … (got 'http')
    github  ::error file=registry.json,line=14,col=7,title=mcpreg validate::servers.fetch.transport: …
    json    {"files": [{"file", "status", "errors": [{"severity", "path", "line", "column", …}], …}]}
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from mcpreg.catalog import Catalog, CatalogError, CatalogIssue, CatalogLimits, FormatChoice
from mcpreg.catalog.parse import read_document
from mcpreg.catalog.positions import PositionIndex

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_UNREADABLE = 2
OUTPUT_FORMATS = ("text", "json", "github")

# The decoder says where a document stops being JSON; that is the place to show.
_DECODER_POSITION = re.compile(r"at line (\d+), column (\d+)")


@dataclass(frozen=True, slots=True)
class LocatedIssue:
    issue: CatalogIssue
    line: int
    column: int

    def as_dict(self) -> dict[str, Any]:
        return {**self.issue.as_dict(), "line": self.line, "column": self.column}


@dataclass(slots=True)
class FileReport:
    """One file's outcome: unreadable (with why), or its errors and warnings, and the catalogue if valid."""

    file: str
    errors: list[LocatedIssue] = field(default_factory=list)
    warnings: list[LocatedIssue] = field(default_factory=list)
    catalog: Catalog | None = None
    unreadable: str | None = None

    @property
    def status(self) -> str:
        if self.unreadable is not None:
            return "unreadable"
        return "invalid" if self.errors else "valid"


def validate_document(file: str, data: bytes, format: FormatChoice, limits: CatalogLimits) -> FileReport:
    """Every error and warning in one document, each placed at its line and column."""
    try:
        outcome = read_document(data, format=format, limits=limits)
    except CatalogError as exc:
        return FileReport(file, errors=located_issues(exc.issues, _text_of(data)))
    text = _text_of(data)
    errors = outcome.findings.all_errors()
    index = _index(text)
    return FileReport(
        file,
        errors=located_issues(errors, text, index),
        warnings=located_issues(outcome.findings.warnings, text, index),
        catalog=None if errors else outcome.catalog,
    )


def located_issues(
    issues: Sequence[CatalogIssue], text: str | None, index: PositionIndex | None = None
) -> list[LocatedIssue]:
    """Issues with their positions; document-level ones at the decoder's position, else 1:1."""
    if index is None and text is not None and any(issue.path for issue in issues):
        index = _index(text)
    positions: dict[str, tuple[int, int]] = {}
    if index is not None:
        try:
            positions = index.locate_all(issue.path for issue in issues)
        except (ValueError, IndexError, StopIteration, RecursionError):  # not walkable: no positions
            positions = {}
    located = []
    for issue in issues:
        line, column = positions.get(issue.path, (1, 1))
        if not issue.path:
            match = _DECODER_POSITION.search(issue.message)
            if match is not None:
                line, column = int(match.group(1)), int(match.group(2))
        located.append(LocatedIssue(issue, line, column))
    return located


def _text_of(data: bytes) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def _index(text: str | None) -> PositionIndex | None:
    return None if text is None else PositionIndex(text)


def exit_code(reports: Sequence[FileReport], *, strict: bool) -> int:
    code = EXIT_OK
    for report in reports:
        if report.unreadable is not None:
            code = max(code, EXIT_UNREADABLE)
        elif report.errors or (strict and report.warnings):
            code = max(code, EXIT_INVALID)
    return code


def write_reports(
    reports: Sequence[FileReport], output: str, out: TextIO, err: TextIO, *, quiet: bool
) -> None:
    if output == "json":
        json.dump(_json_document(reports), out, indent=2, ensure_ascii=False)
        out.write("\n")
        return
    for report in reports:
        if output == "github":
            _write_github(report, out)
        else:
            _write_text(report, out, err, quiet=quiet)


def _write_text(report: FileReport, out: TextIO, err: TextIO, *, quiet: bool) -> None:
    if report.unreadable is not None:
        print(report.unreadable, file=err)
        return
    for located in report.errors + report.warnings:
        where = f"{report.file}:{located.line}:{located.column}"
        print(f"{where}: {located.issue.severity}: {located.issue.render()}", file=out)
    counts = _counts(report)
    if report.errors:
        print(f"{report.file}: invalid ({counts})", file=err)
    elif not quiet and report.catalog is not None:
        print(f"{report.file}: valid {_summary(report.catalog, len(report.warnings))}", file=out)


def _write_github(report: FileReport, out: TextIO) -> None:
    # Workflow commands: https://docs.github.com/actions/reference/workflow-commands-for-github-actions
    if report.unreadable is not None:
        print(
            f"::error file={_property(report.file)},title=mcpreg validate::{_data(report.unreadable)}",
            file=out,
        )
        return
    for located in report.errors + report.warnings:
        properties = ",".join(
            [
                f"file={_property(report.file)}",
                f"line={located.line}",
                f"col={located.column}",
                "title=mcpreg validate",
            ]
        )
        print(f"::{located.issue.severity} {properties}::{_data(located.issue.render())}", file=out)


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def _counts(report: FileReport) -> str:
    errors, warnings = len(report.errors), len(report.warnings)
    return f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"


def _summary(catalog: Catalog, warnings: int) -> str:
    versions = "" if catalog.entry_count == catalog.server_count else f", {catalog.entry_count} versions"
    noted = f", {warnings} warning{'s' * (warnings != 1)}" if warnings else ""
    return (
        f"({catalog.source_format} format, {catalog.server_count} server"
        f"{'s' * (catalog.server_count != 1)}{versions}{noted}, {catalog.content_hash})"
    )


def _json_document(reports: Sequence[FileReport]) -> dict[str, Any]:
    files = []
    for report in reports:
        entry: dict[str, Any] = {
            "file": report.file,
            "status": report.status,
            "errors": [located.as_dict() for located in report.errors],
            "warnings": [located.as_dict() for located in report.warnings],
        }
        if report.unreadable is not None:
            entry["message"] = report.unreadable
        if report.catalog is not None:
            entry["format"] = report.catalog.source_format
            entry["servers"] = report.catalog.server_count
            entry["entries"] = report.catalog.entry_count
            entry["contentHash"] = report.catalog.content_hash
        files.append(entry)
    return {
        "files": files,
        "errors": sum(len(r.errors) for r in reports),
        "warnings": sum(len(r.warnings) for r in reports),
    }
