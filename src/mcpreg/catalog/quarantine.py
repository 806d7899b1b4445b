"""Per-entry quarantine: serve the entries that are fine, name the ones that are not.

`parse_catalog` is all or nothing; `read_catalog` reads the same document with the same rules but
leaves out each entry that has an error, naming it with its JSON path, and serves the rest. Only a
problem with the document as a whole (not UTF-8, not JSON, an unknown shape, over a limit, a wrong
registry-level field) raises CatalogError. What to do with the outcome (accept the shrunken catalogue,
refuse it, refuse it when too much was left out) is the caller's policy, not this module's.

    reading = read_catalog(raw_bytes)
    reading.catalog                # the servable entries only (may be empty)
    for skipped in reading.skipped:
        print(skipped.path, [issue.message for issue in skipped.issues])
    reading.warnings               # what normalisation did to entries that are served
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mcpreg.catalog.errors import CatalogError, CatalogIssue, Severity, document_issue, format_path
from mcpreg.catalog.model import Catalog
from mcpreg.catalog.parse import DocumentOutcome, ReadOptions, read_document

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.12

__all__ = ["CatalogReading", "Severity", "SkippedEntry", "read_catalog", "reading_of"]


@dataclass(frozen=True, slots=True)
class SkippedEntry:
    """An entry left out because it cannot be served.

    `name` is the entry's name when it has one, `path` its JSON path in the document (format_path
    style: `servers.fetch`, `data.servers[3]`), `issues` the errors that make it unservable.
    """

    name: str | None
    path: str
    issues: tuple[CatalogIssue, ...]


@dataclass(frozen=True, slots=True)
class CatalogReading:
    """A catalogue read with per-entry quarantine."""

    catalog: Catalog  # the servable entries only (may be empty)
    skipped: tuple[SkippedEntry, ...]  # in document order
    warnings: tuple[CatalogIssue, ...]  # severity "warning": what normalisation did, with paths
    total_entries: int  # entries in the document: served + skipped


def read_catalog(data: bytes | str, **options: Unpack[ReadOptions]) -> CatalogReading:
    """Read a catalogue, leaving out (and naming) the entries that have errors.

    Never raises for a bad entry; raises CatalogError only for whole-document problems: not UTF-8,
    not JSON, unknown shape, over the size/depth/entry-count limits, registry-level fields wrong.
    """
    return reading_of(read_document(data, **options))


def reading_of(outcome: DocumentOutcome) -> CatalogReading:
    """The quarantine view of a document's outcome; raise CatalogError for document-level errors."""
    if outcome.catalog is None:
        raise CatalogError(outcome.findings.document_errors() or [document_issue("is not a valid catalogue")])
    skipped = tuple(
        SkippedEntry(name=name, path=format_path(key), issues=outcome.findings.errors_of(key))
        for key, name in outcome.skipped
    )
    return CatalogReading(
        catalog=outcome.catalog,
        skipped=skipped,
        warnings=tuple(outcome.findings.warnings),
        total_entries=outcome.total_entries,
    )
