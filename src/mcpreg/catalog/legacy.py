"""ToolHive entries as they exist in the wild: legacy shapes normalised, with a warning for each.

Catalogues published through 2025 carry shapes the current schema refuses but ToolHive's client read
without complaint (it decodes with Go's `encoding/json`: unknown fields are ignored, a missing string
is empty, nothing is checked against the schema). Refusing such an entry would refuse what ToolHive
itself serves, so each shape below is normalised and reported as a warning; the rules and the reasons
are tabled in docs/catalogue-validation.md.

The repairs run only for entries that failed validation, driven by pydantic's error details: a valid
catalogue pays nothing for them. A repaired entry is validated again (alone); whatever cannot be
repaired stays an error and the entry is left out.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from mcpreg.catalog.errors import CatalogIssue, PathPart, format_path, issues_from_error_details, show_value
from mcpreg.catalog.fieldtypes import DATE_TIME_PATTERN

# Rounds of repair and re-validation: removing a null can reveal an error the null hid, which may be
# repairable in turn. Three rounds cover every combination the rules below can produce.
_MAX_ROUNDS = 3

DEFAULT_TIER = "Community"
DEFAULT_STATUS = "Active"
_ENUMS: dict[str, tuple[str, ...]] = {"tier": ("Official", "Community"), "status": ("Active", "Deprecated")}
_DEFAULTS = {"tier": DEFAULT_TIER, "status": DEFAULT_STATUS}

# Fields that older ToolHive releases wrote and later dropped (named so the warning can say so).
LEGACY_FIELDS = frozenset({"allow_transport"})
_DUPLICATE_FREE_LISTS = frozenset({"tools", "tags"})

_DATE_TIME = re.compile(DATE_TIME_PATTERN)
# `2025-03-25 16:58:54`, `2025-03-25T16:58:54.5`, `2025-03-25`: a date and time without a zone.
_ZONELESS = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[Tt ](\d{2}:\d{2}:\d{2}(?:\.\d+)?))?$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# `*.databases.example.io`: ToolHive hands allow_host entries to its egress proxy as written.
_WILDCARD_HOST = re.compile(rf"^\*\.{_LABEL}(\.{_LABEL})*\.?$")
# Characters ToolHive's mount parser refuses (command injection) besides NUL; a colon means a
# host:container or resource-URI form, which is not a plain relative path.
_UNSAFE_MOUNT = re.compile(r"[\x00:$&;|`]")


def normalise_timestamp(value: str) -> str | None:
    """A zoneless timestamp (`2025-03-25 16:58:54`) as RFC 3339 in UTC; None when it is not one.

    ToolHive wrote these in UTC (its catalogue builder used Go's time.Now().UTC()); no zone means UTC.
    """
    match = _ZONELESS.match(value)
    if match is None:
        return None
    date, time = match.group(1), match.group(2) or "00:00:00"
    candidate = f"{date}T{time}Z"
    try:
        datetime.fromisoformat(candidate.replace("Z", "+00:00"))
    except ValueError:
        return None  # 2025-13-45: not a date at all
    return candidate if _DATE_TIME.match(candidate) else None


@dataclass(frozen=True, slots=True)
class EntryRepair:
    """The outcome for one entry that failed validation.

    `data` is the normalised entry when every error was repairable (None otherwise), `warnings` say
    what was done, `errors` are what stays wrong (empty when `data` is set).
    """

    data: dict[str, Any] | None
    warnings: tuple[CatalogIssue, ...] = ()
    errors: tuple[CatalogIssue, ...] = ()


_Action = Literal["set", "delete", "dedupe", "drop_nulls", "keep"]


@dataclass(frozen=True, slots=True)
class _Fix:
    action: _Action
    loc: tuple[PathPart, ...]
    message: str
    value: Any = None


@dataclass(slots=True)
class _Repairer:
    key: tuple[PathPart, ...]
    name: str
    model: type[BaseModel]
    kept: set[tuple[PathPart, ...]] = field(default_factory=set)
    warnings: list[CatalogIssue] = field(default_factory=list)
    nulled: set[tuple[PathPart, ...]] = field(default_factory=set)

    def run(self, data: Any, details: Sequence[ErrorDetails]) -> EntryRepair:
        current = data
        copied = False
        for _ in range(_MAX_ROUNDS):
            fixes: list[_Fix] = []
            unrepaired: list[ErrorDetails] = []
            for detail in details:
                fix = _fix_for(detail, self.name)
                if fix is None:
                    unrepaired.append(detail)
                else:
                    fixes.append(fix)
            if unrepaired or not isinstance(current, dict):
                return self._failed(unrepaired or list(details))
            if not copied:
                # Only entries that failed validation get here (a handful in a broken catalogue):
                # the deep copy keeps the caller's document untouched.
                current = copy.deepcopy(current)
                copied = True
            for fix in fixes:
                self._apply(current, fix)
            try:
                self.model.model_validate(current)
            except ValidationError as exc:
                details = [d for d in exc.errors(include_url=False) if tuple(d["loc"]) not in self.kept]
                if details:
                    continue
            return EntryRepair(current, tuple(self.warnings))
        return self._failed(list(details))

    def _failed(self, details: Sequence[ErrorDetails]) -> EntryRepair:
        errors = []
        for detail in details:
            (issue,) = issues_from_error_details([detail], self.key, self.name)
            if detail["type"] == "missing" and tuple(detail["loc"]) in self.nulled:
                # Removing the null revealed that the field is required: say what the author wrote.
                issue = CatalogIssue(issue.entry, issue.path, "is required and must not be null")
            errors.append(issue)
        return EntryRepair(None, errors=tuple(errors))

    def _apply(self, entry: dict[str, Any], fix: _Fix) -> None:
        self.warnings.append(
            CatalogIssue(self.name, format_path([*self.key, *fix.loc]), fix.message, severity="warning")
        )
        if fix.action == "keep":
            self.kept.add(fix.loc)
            return
        container: Any = entry
        for part in fix.loc[:-1]:
            container = container[part]
        last = fix.loc[-1] if fix.loc else None
        if fix.action == "set":
            container[last] = fix.value
        elif fix.action == "delete":
            del container[last]
        elif fix.action == "dedupe":
            target = container[last] if last is not None else container
            container[last] = list(dict.fromkeys(target))
        else:  # drop_nulls
            target = container[last] if last is not None else container
            for null_key in [k for k, v in target.items() if v is None]:
                del target[null_key]
                self.nulled.add((*fix.loc, null_key))


def repair_toolhive_entry(
    data: Any,
    model: type[BaseModel],
    details: Sequence[ErrorDetails],
    *,
    key: tuple[PathPart, ...],
    name: str,
) -> EntryRepair:
    """Repair one entry (`data`, at `key` in the document) from its validation errors (`details`,
    with locations relative to the entry); `model` validates the repaired entry."""
    return _Repairer(key, name, model).run(data, details)


def _fix_for(detail: ErrorDetails, name: str) -> _Fix | None:
    loc = tuple(detail["loc"])
    kind = detail["type"]
    value = detail.get("input")
    if kind == "extra_forbidden" and loc:
        field_name = loc[-1]
        if field_name in LEGACY_FIELDS:
            why = "a field older ToolHive catalogues wrote, which its client ignores; ignored"
        else:
            why = "not a field of ToolHive's format; ignored, as ToolHive's client ignores unknown fields"
        return _Fix("delete", loc, why)
    if len(loc) == 1:
        return _top_level_fix(loc[0], kind, value, name) or _null_fix(loc, value)
    if loc == ("metadata", "last_updated") and kind == "string_pattern_mismatch" and isinstance(value, str):
        normalised = normalise_timestamp(value)
        if normalised is not None:
            return _Fix(
                "set",
                loc,
                f"timestamp {value!r} has no time zone; normalised to {normalised!r} (UTC)",
                normalised,
            )
        return None
    if kind == "string_pattern_mismatch" and isinstance(value, str):
        if len(loc) == 5 and loc[:4] == ("permissions", "network", "outbound", "allow_host"):
            if _WILDCARD_HOST.match(value):
                return _Fix(
                    "keep",
                    loc,
                    f"wildcard host {value!r} kept as written: ToolHive hands allow_host entries to its "
                    f"egress proxy unchanged (the documented suffix form is {value[1:]!r})",
                )
            return None
        if len(loc) == 3 and loc[0] == "permissions" and loc[1] in ("read", "write"):
            if value and not value.startswith("/") and _UNSAFE_MOUNT.search(value) is None:
                return _Fix(
                    "keep",
                    loc,
                    f"relative path {value!r} kept: ToolHive mounts it relative to the directory it runs in",
                )
            return None
    if kind == "value_error":
        return _null_fix(loc, value)
    return None


def _top_level_fix(field_name: PathPart, kind: str, value: Any, name: str) -> _Fix | None:
    loc = (field_name,)
    if field_name in _ENUMS:
        allowed = _ENUMS[str(field_name)]
        default = _DEFAULTS[str(field_name)]
        if kind == "missing" or (kind == "literal_error" and value == ""):
            return _Fix("set", loc, f"is missing; defaulted to {default!r}", default)
        if kind == "literal_error" and isinstance(value, str):
            for option in allowed:
                if value.strip().lower() == option.lower():
                    return _Fix("set", loc, f"{value!r} normalised to {option!r}", option)
        return None
    if field_name == "description":
        if kind == "missing" or (isinstance(value, str) and not value.strip()):
            default_text = f"{name} (no description was given)"
            return _Fix("set", loc, f"is empty; defaulted to {default_text!r}", default_text)
        if kind == "string_too_short" and isinstance(value, str):
            return _Fix(
                "keep",
                loc,
                f"is shorter than the 10 characters the schema asks for ({show_value(value)}); kept",
            )
        return None
    if field_name in _DUPLICATE_FREE_LISTS and kind == "value_error" and isinstance(value, list):
        try:
            unique = list(dict.fromkeys(value))
        except TypeError:
            return None
        if len(unique) == len(value):
            return None
        dropped = sorted({item for item in value if value.count(item) > 1})
        what = "tool" if field_name == "tools" else "tag"
        return _Fix("dedupe", loc, f"duplicate {what} name(s) {', '.join(map(repr, dropped))} dropped")
    return None


def _null_fix(loc: tuple[PathPart, ...], value: Any) -> _Fix | None:
    # `"secret": null`: Go decodes null as the field's zero value, so ToolHive treats it as absent.
    if isinstance(value, dict) and None in value.values():
        nulls = ", ".join(repr(k) for k, v in value.items() if v is None)
        return _Fix(
            "drop_nulls", loc, f"null field(s) {nulls} removed, as ToolHive's client treats null as absent"
        )
    return None
