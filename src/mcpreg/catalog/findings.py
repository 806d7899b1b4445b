"""What reading one catalogue document found, sorted by what each problem condemns.

A problem either belongs to one entry (the entry is left out, the rest is served) or to the document
(nothing can be served). The readers in `parse.py` record each problem here with the entry it belongs
to, keyed by the entry's path in the document (`("servers", "fetch")`, `("data", "servers", 3)`), so
that `parse_catalog` can raise every error in the order found and `read_catalog` can leave out
exactly the entries that have errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mcpreg.catalog.errors import CatalogIssue, PathPart

EntryKey = tuple[PathPart, ...]


@dataclass(slots=True)
class Findings:
    """Errors (each with the entry it condemns, or None for the document) and warnings, in order found."""

    errors: list[tuple[EntryKey | None, CatalogIssue]] = field(default_factory=list)
    warnings: list[CatalogIssue] = field(default_factory=list)
    _by_entry: dict[EntryKey, list[CatalogIssue]] = field(default_factory=dict)

    def entry_error(self, key: EntryKey, issue: CatalogIssue) -> None:
        self.errors.append((key, issue))
        self._by_entry.setdefault(key, []).append(issue)

    def document_error(self, issue: CatalogIssue) -> None:
        self.errors.append((None, issue))

    def error(self, key: EntryKey | None, issue: CatalogIssue) -> None:
        if key is None:
            self.document_error(issue)
        else:
            self.entry_error(key, issue)

    def warn(self, issue: CatalogIssue) -> None:
        self.warnings.append(issue)

    def is_bad(self, key: EntryKey) -> bool:
        return key in self._by_entry

    @property
    def has_errors(self) -> bool:
        return bool(self.errors)

    def all_errors(self) -> list[CatalogIssue]:
        return [issue for _, issue in self.errors]

    def document_errors(self) -> list[CatalogIssue]:
        return [issue for key, issue in self.errors if key is None]

    def errors_of(self, key: EntryKey) -> tuple[CatalogIssue, ...]:
        return tuple(self._by_entry.get(key, ()))
