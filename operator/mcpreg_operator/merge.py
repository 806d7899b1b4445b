"""Merging the catalogues of several sources into one (`spec.sources`, issue 15): pure functions.

Sources are merged by server name in priority order: the first source that has a name serves every
version of it, and a later source's entries of that name are left out and reported as a `Conflict`.
Each served entry records the source it came from in its `_meta` (`SOURCE_META_KEY`), which the
registry API serves as it is and which lets an operator that restarted find a failing source's last
good entries in the stored catalogue (`entries_of_source`).

This module runs in the parsing child process too (`parsing`): it imports only the catalogue library
and `quarantine`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass

from mcpreg.catalog import DEFAULT_NAMESPACE, Catalog, CatalogEntry, CatalogGroup, CatalogIssue, hash_value
from mcpreg.catalog.quarantine import SkippedEntry
from mcpreg.catalog.served import ServedDocument, upstream_list
from mcpreg_operator.quarantine import REPORTED_ENTRIES, REPORTED_WARNINGS, EntryReport

#: Where each served entry of a merged catalogue names its source.
SOURCE_META_KEY = "dev.mcpregistry/source"


@dataclass(frozen=True, slots=True)
class Conflict:
    """Server `name` is served from source `winner`; source `loser` has it too and is left out."""

    name: str
    winner: str
    loser: str


@dataclass(frozen=True, slots=True)
class Merged:
    catalog: Catalog
    conflicts: tuple[Conflict, ...]


def _tagged(entry: CatalogEntry, source: str) -> CatalogEntry:
    meta = dict(entry.response_meta or {})
    meta[SOURCE_META_KEY] = source
    return dataclasses.replace(entry, response_meta=meta)


def merge_catalogs(parts: Sequence[tuple[str, Catalog]]) -> Merged:
    """One catalogue of `parts` ((source name, catalogue), in priority order): first one wins a name."""
    owner: dict[str, str] = {}
    conflicts: list[Conflict] = []
    for source, catalog in parts:
        for name in catalog.names():
            winner = owner.setdefault(name, source)
            if winner != source:
                conflicts.append(Conflict(name, winner, source))
    entries = [
        _tagged(entry, source)
        for source, catalog in parts
        for entry in catalog.entries
        if owner[entry.name] == source
    ]
    # Groups are kept by name, first source first, each holding the members that source serves.
    groups: dict[str, CatalogGroup] = {}
    for source, catalog in parts:
        for group in catalog.groups:
            if group.name not in groups:
                members = tuple(_tagged(e, source) for e in group.entries if owner.get(e.name) == source)
                groups[group.name] = CatalogGroup(group.name, group.description, members)
    # What the merged catalogue says of itself (its format, the namespace of derived names): the first
    # source's; the registry facts (version, last update) are the merged entries' own.
    first = parts[0][1] if parts else None
    catalog = Catalog(
        entries,
        source_format=first.source_format if first is not None else "upstream",
        groups=list(groups.values()),
        namespace=first.namespace if first is not None else DEFAULT_NAMESPACE,
    )
    return Merged(catalog, tuple(conflicts))


def served_by(catalog: Catalog) -> dict[str, int]:
    """Entries (server versions) of a merged catalogue per source."""
    counts: dict[str, int] = {}
    for entry in catalog.entries:
        source = (entry.response_meta or {}).get(SOURCE_META_KEY)
        if isinstance(source, str):
            counts[source] = counts.get(source, 0) + 1
    return counts


def conflicts_hash(conflicts: Sequence[Conflict]) -> str | None:
    """Identifies a set of conflicts: the Warning Event is posted again only when it changes."""
    if not conflicts:
        return None
    return hash_value(sorted([c.name, c.winner, c.loser] for c in conflicts))


# --- reports of several sources, as one -----------------------------------------------------------


def _prefixed_issue(issue: CatalogIssue, source: str) -> CatalogIssue:
    return dataclasses.replace(
        issue, path=f"sources[{source}].{issue.path}" if issue.path else f"sources[{source}]"
    )


def combine_reports(reports: Sequence[tuple[str, EntryReport]]) -> EntryReport:
    """The entry reports of several sources as one, every path prefixed with `sources[<name>]`."""
    skipped: list[SkippedEntry] = []
    warnings: list[CatalogIssue] = []
    for source, report in reports:
        skipped.extend(
            SkippedEntry(
                entry.name,
                f"sources[{source}].{entry.path}",
                tuple(_prefixed_issue(issue, source) for issue in entry.issues),
            )
            for entry in report.skipped
        )
        warnings.extend(_prefixed_issue(issue, source) for issue in report.warnings)
    hashes = [[source, report.skipped_hash] for source, report in reports if report.skipped_hash]
    return EntryReport(
        total_entries=sum(report.total_entries for _, report in reports),
        skipped_count=sum(report.skipped_count for _, report in reports),
        error_count=sum(report.error_count for _, report in reports),
        skipped=tuple(skipped[:REPORTED_ENTRIES]),
        warning_count=sum(report.warning_count for _, report in reports),
        warnings=tuple(warnings[:REPORTED_WARNINGS]),
        skipped_hash=hash_value(hashes) if hashes else None,
    )


# --- a source's entries in a stored catalogue -------------------------------------------------------


def entries_of_source(document: ServedDocument, source: str) -> bytes | None:
    """The entries a stored (served) document serves from `source`, as a v0.1 list response that the
    upstream parser reads back; None when it serves none from that source."""
    bodies = []
    for entry in document.entries:
        meta = json.loads(entry.body).get("_meta")
        if isinstance(meta, dict) and meta.get(SOURCE_META_KEY) == source:
            bodies.append(entry.body)
    return upstream_list(bodies) if bodies else None
