"""Per-entry quarantine (issue 14): what a sync says about the entries it left out, and whether it may
store the rest at all.

The catalogue library reads a document into its servable entries, the entries it had to set aside
(each with its JSON path and errors) and the warnings about what it normalised
(`mcpreg.catalog.quarantine.read_catalog`); it raises only for problems of the whole document. The
policy is the operator's, from `spec.validation`:

- `Skip` (the default): the skipped entries are left out and the rest is stored and served. A guard
  refuses the sync when nothing servable is left, or when more than `maxSkippedPercent` of the
  document's entries would be left out, so that a broken file cannot silently shrink the catalogue.
- `Reject`: any skipped entry fails the sync, as every invalid entry did before.

`summarise` shrinks a reading to an `EntryReport`: counts, plus the first few skipped entries and
warnings, small enough to come back from the parsing child process (`parsing`) and to go into status
and Events. The rest are pure functions of a report, unit-tested on their own.

Everything rendered here is built from the catalogue library's issue messages, which quote at most a
short prefix of an offending value: never exception text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from mcpreg.catalog import CatalogIssue, hash_value
from mcpreg.catalog.quarantine import CatalogReading, SkippedEntry
from mcpreg_operator.spec.validation import OnInvalidEntry, Validation

#: Skipped entries named in status, Events and failure messages ("and N more" after them).
REPORTED_ENTRIES = 5
#: Problems listed in a message before "and N more"; also how many errors of each reported entry
#: the report keeps, so that a Reject message lists exactly the document's first ones.
REPORTED_ISSUES = 5
#: Warnings named in the DataValid condition.
REPORTED_WARNINGS = 5
#: Longest line kept for one problem: a path holds the entry's key, which nothing bounds when the key
#: itself is what is wrong, and a condition message over 32 KiB would make the status write fail.
MAX_LINE = 400

# Condition reasons (DataValid; the refusals also on Synced).
VALID = "Valid"
VALID_WITH_WARNINGS = "ValidWithWarnings"
ENTRIES_SKIPPED = "EntriesSkipped"
INVALID_DATA = "InvalidData"  # Reject: an entry has an error; also every whole-document problem
TOO_MANY_ENTRIES_SKIPPED = "TooManyEntriesSkipped"
NO_VALID_ENTRIES = "NoValidEntries"


@dataclass(frozen=True, slots=True)
class EntryReport:
    """What reading a document set aside, compactly: plain data, so it crosses a process boundary."""

    total_entries: int  # entries in the document: served + skipped (before spec.filter)
    skipped_count: int = 0
    error_count: int = 0  # errors over all skipped entries
    skipped: tuple[SkippedEntry, ...] = ()  # the first REPORTED_ENTRIES, each with its first errors
    warning_count: int = 0
    warnings: tuple[CatalogIssue, ...] = ()  # the first REPORTED_WARNINGS
    skipped_hash: str | None = None  # identifies the whole skipped set (None: nothing skipped)

    @property
    def servable_entries(self) -> int:
        return self.total_entries - self.skipped_count


def summarise(reading: CatalogReading) -> EntryReport:
    """The report of `reading`, with at most a few entries, issues and warnings kept."""
    skipped = reading.skipped
    return EntryReport(
        total_entries=reading.total_entries,
        skipped_count=len(skipped),
        error_count=sum(len(entry.issues) for entry in skipped),
        skipped=tuple(
            dataclasses.replace(entry, issues=entry.issues[:REPORTED_ISSUES])
            for entry in skipped[:REPORTED_ENTRIES]
        ),
        warning_count=len(reading.warnings),
        warnings=tuple(reading.warnings[:REPORTED_WARNINGS]),
        skipped_hash=skipped_set_hash(skipped),
    )


def skipped_set_hash(skipped: Sequence[SkippedEntry]) -> str | None:
    """A hash of which entries are skipped (their paths and names, not why): the Warning Event is
    posted again only when this changes."""
    if not skipped:
        return None
    return hash_value(sorted([entry.path, entry.name or ""] for entry in skipped))


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why `spec.validation` refuses to store what was read: a condition reason and a message."""

    reason: str
    message: str


def refusal(report: EntryReport, validation: Validation) -> Refusal | None:
    """None when the servable entries may be stored, else why not."""
    if report.skipped_count == 0:
        return None
    if validation.on_invalid_entry is OnInvalidEntry.REJECT:
        listed = [issue for entry in report.skipped for issue in entry.issues][:REPORTED_ISSUES]
        return Refusal(INVALID_DATA, render_issue_list(listed, report.error_count))
    if report.servable_entries <= 0:
        return Refusal(
            NO_VALID_ENTRIES, f"no entry could be served, nothing was stored: {describe_skipped(report)}"
        )
    limit = validation.max_skipped_percent
    if report.skipped_count * 100 > limit * report.total_entries:
        return Refusal(
            TOO_MANY_ENTRIES_SKIPPED,
            f"{describe_skipped(report)}; that is more than spec.validation.maxSkippedPercent "
            f"({limit}%), so nothing was stored",
        )
    return None


# --- what people read ------------------------------------------------------------------------------


def render_issue_list(issues: Sequence[CatalogIssue], total: int) -> str:
    """The first REPORTED_ISSUES of `issues`, one line each, then "(and N more)" up to `total`."""
    shown = [shorten(issue.render()) for issue in issues[:REPORTED_ISSUES]]
    more = total - len(shown)
    text = "; ".join(shown)
    return f"{text} (and {more} more)" if more > 0 else text


def _entry_line(entry: SkippedEntry) -> str:
    """`servers.fetch.transport: must be one of … (got 'carrier-pigeon')`: the entry's first error,
    whose JSON path starts with the entry's own."""
    if not entry.issues:
        return shorten(f"{entry.path}: invalid")
    first = entry.issues[0]
    line = first.render() if first.path else f"{entry.path}: {first.message}"
    extra = len(entry.issues) - 1
    return shorten(line) + (f" (+{extra} more)" if extra > 0 else "")


def shorten(line: str) -> str:
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


def describe_skipped(report: EntryReport) -> str:
    """`1 of 100 entries skipped as invalid: servers.x.transport: …`; the first few entries named."""
    head = f"{report.skipped_count} of {report.total_entries} entries skipped as invalid"
    lines = "; ".join(_entry_line(entry) for entry in report.skipped)
    more = report.skipped_count - len(report.skipped)
    return f"{head}: {lines}" + (f" (and {more} more entries)" if more > 0 else "")


def counted(count: int, singular: str, plural: str) -> str:
    """`1 entry`, `3 entries`."""
    return f"{count} {singular if count == 1 else plural}"


def describe_warnings(report: EntryReport) -> str:
    """`2 warnings: servers.x.tier: …; …`, or "" when there are none."""
    if report.warning_count == 0:
        return ""
    listed = render_issue_list(report.warnings, report.warning_count)
    return f"{counted(report.warning_count, 'warning', 'warnings')}: {listed}"


#: DataValid reasons that describe the stored catalogue (the others, a failed sync's data).
STORED_DATA_REASONS = frozenset({VALID, VALID_WITH_WARNINGS, ENTRIES_SKIPPED})


def data_valid(report: EntryReport, servers: int) -> tuple[bool, str, str]:
    """The DataValid condition after a sync that stored `servers` servers: (is True, reason, message)."""
    skipped = describe_skipped(report) if report.skipped_count else ""
    return _data_valid(skipped, describe_warnings(report), servers)


def data_valid_from_counts(skipped: int, warnings: int, servers: int) -> tuple[bool, str, str]:
    """DataValid for stored data known only by the counts status kept (nothing read in this sync)."""
    return _data_valid(
        f"{counted(skipped, 'entry', 'entries')} skipped as invalid" if skipped else "",
        counted(warnings, "warning", "warnings") if warnings else "",
        servers,
    )


def _data_valid(skipped: str, warnings: str, servers: int) -> tuple[bool, str, str]:
    if skipped:
        message = f"{skipped}; serving {servers} servers"
        return False, ENTRIES_SKIPPED, message + (f"; {warnings}" if warnings else "")
    if warnings:
        return True, VALID_WITH_WARNINGS, f"{servers} valid servers; {warnings}"
    return True, VALID, f"{servers} valid servers"


def skipped_event(report: EntryReport | None, previous_hash: str | None) -> str | None:
    """The message of the Warning Event EntriesSkipped this sync calls for, if any: one per change of
    the skipped set, none while the same entries stay skipped."""
    if report is None or report.skipped_count == 0 or report.skipped_hash == previous_hash:
        return None
    return describe_skipped(report)
