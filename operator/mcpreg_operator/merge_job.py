"""The parsing work of a registry with several sources (`spec.sources`): read each source's document,
fall back to its last good one when the new one cannot be used, filter each, merge them
(`merge`), filter the whole, render the served document. Runs where `parsing` runs a one-source
parse (a child process for large inputs, else a thread), so it imports only the catalogue library and
the small operator modules the child needs.

The documents travel as one byte string (`data`, each source's current document then its fallback,
back to back) with their lengths in `MergeOptions`, so the child protocol stays one pickle and one
stream of bytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mcpreg.catalog import Catalog, CatalogError, CatalogLimits, compile_filter
from mcpreg.catalog.detect import FormatChoice
from mcpreg.catalog.hashing import content_hash
from mcpreg.catalog.quarantine import read_catalog
from mcpreg.catalog.served import render_served
from mcpreg_operator.merge import Conflict, combine_reports, conflicts_hash, merge_catalogs, served_by
from mcpreg_operator.quarantine import (
    INVALID_DATA,
    EntryReport,
    Refusal,
    refusal,
    render_issue_list,
    summarise,
)
from mcpreg_operator.spec.validation import Validation

#: Conflicts returned in full (the count and the hash cover all of them).
REPORTED_CONFLICTS = 20

Used = Literal["current", "fallback", "none"]


@dataclass(frozen=True, slots=True)
class SourceInput:
    name: str
    format: FormatChoice
    filter_spec: Mapping[str, Any] | None
    filter_path: str  # for messages: spec.sources[0].filter
    current: int | None  # length of the source's current document in the data; None: there is none
    fallback: int | None  # length of its last good document, after the current one; None: none
    fallback_format: FormatChoice


@dataclass(frozen=True, slots=True)
class MergeOptions:
    sources: tuple[SourceInput, ...]
    registry_filter: Mapping[str, Any] | None
    registry_filter_path: str
    limits: CatalogLimits
    validation: Validation


@dataclass(frozen=True, slots=True)
class SourceResult:
    name: str
    used: Used  # which document the merged catalogue holds entries of
    report: EntryReport | None  # of that document (None: none used)
    refused: tuple[str, str] | None  # (reason, message): why the current document was not used
    entries: int  # entries (versions) served from this source, after the merge and the registry's filter
    conflicts: int  # its server names left out because an earlier source has them


@dataclass(frozen=True, slots=True)
class PreparedMerge:
    data: bytes  # the served document
    content_hash: str
    server_count: int
    entries: EntryReport  # of every document used, paths prefixed with sources[<name>]
    sources: tuple[SourceResult, ...]
    conflicts: tuple[Conflict, ...]  # the first REPORTED_CONFLICTS
    conflict_count: int
    conflicts_hash: str | None


@dataclass(frozen=True, slots=True)
class _Read:
    catalog: Catalog
    report: EntryReport


def _read(
    document: bytes, format: FormatChoice, source: SourceInput, options: MergeOptions
) -> _Read | Refusal:
    """The filtered catalogue of one document and its report, or why it cannot be used."""
    try:
        reading = read_catalog(document, format=format, limits=options.limits)
        catalog = reading.catalog.filtered(compile_filter(source.filter_spec, path=source.filter_path))
    except CatalogError as exc:
        return Refusal(INVALID_DATA, render_issue_list(exc.issues, len(exc.issues)))
    report = summarise(reading)
    refused = refusal(report, options.validation)
    return refused if refused is not None else _Read(catalog, report)


def _slices(data: bytes, options: MergeOptions) -> list[tuple[bytes | None, bytes | None]]:
    """Each source's (current, fallback) document, cut out of `data`."""
    out: list[tuple[bytes | None, bytes | None]] = []
    offset = 0
    for source in options.sources:
        documents: list[bytes | None] = []
        for length in (source.current, source.fallback):
            documents.append(None if length is None else data[offset : offset + length])
            offset += length or 0
        out.append((documents[0], documents[1]))
    return out


def prepare_merged(data: bytes, options: MergeOptions) -> PreparedMerge:
    """Read, fall back, filter, merge, filter, render. Raises CatalogError only for an invalid
    registry-wide filter; a source's bad document is that source's `refused`."""
    registry_filter = compile_filter(options.registry_filter, path=options.registry_filter_path)
    parts: list[tuple[str, Catalog]] = []
    reports: list[tuple[str, EntryReport]] = []
    results: list[tuple[str, Used, EntryReport | None, tuple[str, str] | None]] = []
    for source, (current, fallback) in zip(options.sources, _slices(data, options), strict=True):
        used: Used = "none"
        refused: Refusal | None = None
        read: _Read | None = None
        if current is not None:
            outcome = _read(current, source.format, source, options)
            read, refused = (outcome, None) if isinstance(outcome, _Read) else (None, outcome)
            used = "current" if read is not None else "none"
        if read is None and fallback is not None:
            outcome = _read(fallback, source.fallback_format, source, options)
            read = outcome if isinstance(outcome, _Read) else None
            used = "fallback" if read is not None else "none"
        if read is not None:
            parts.append((source.name, read.catalog))
            reports.append((source.name, read.report))
        why = (refused.reason, refused.message) if refused is not None else None
        results.append((source.name, used, read.report if read is not None else None, why))
    merged = merge_catalogs(parts)
    catalog = merged.catalog.filtered(registry_filter)
    counts = served_by(catalog)
    shadowed = Counter(conflict.loser for conflict in merged.conflicts)
    served = render_served(catalog)
    return PreparedMerge(
        data=served,
        content_hash=content_hash(served),
        server_count=catalog.server_count,
        entries=combine_reports(reports),
        sources=tuple(
            SourceResult(name, used, report, why, counts.get(name, 0), shadowed[name])
            for name, used, report, why in results
        ),
        conflicts=merged.conflicts[:REPORTED_CONFLICTS],
        conflict_count=len(merged.conflicts),
        conflicts_hash=conflicts_hash(merged.conflicts),
    )
