"""Server versions: semantic-version ordering and which version is `latest`.

The rule is the official MCP registry's: versions are considered in publish order, and each newly
published version becomes the latest unless both it and the current latest are semantic versions and
it is the lower one. So semver decides whenever it can, and publish order decides otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

# semver.org's official regular expression (2.0.0).
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$",
    re.ASCII,
)

# Orders a prerelease identifier: numeric identifiers sort before alphanumeric ones.
PrereleasePart = tuple[int, int, str]
SemverKey = tuple[int, int, int, int, tuple[PrereleasePart, ...]]


def semver_key(version: str) -> SemverKey | None:
    """A sort key for a semantic version, or None when `version` is not one.

    Build metadata (`+build.5`) is ignored, as semver requires; a release sorts after its
    prereleases (`1.0.0-rc.1` < `1.0.0`).
    """
    match = _SEMVER.match(version)
    if match is None:
        return None
    major, minor, patch, prerelease, _build = match.groups()
    if prerelease is None:
        return (int(major), int(minor), int(patch), 1, ())
    parts = tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in prerelease.split("."))
    return (int(major), int(minor), int(patch), 0, parts)


def is_semver(version: str) -> bool:
    return _SEMVER.match(version) is not None


def semver_from_tag(tag: str) -> str | None:
    """The semantic version an image tag spells, accepting the common `v` prefix (`v1.2.3`)."""
    candidate = tag[1:] if tag[:1] in ("v", "V") else tag
    return candidate if is_semver(candidate) else None


@dataclass(frozen=True, slots=True)
class VersionCandidate:
    """What the latest-version rule needs to know about one published version."""

    version: str
    published_at: str | None
    deleted: bool = False


def _published_order(candidates: Sequence[VersionCandidate]) -> list[int]:
    """Indices in publish order: by publishedAt when every version has a readable one, else as listed."""
    stamps: list[datetime] = []
    for candidate in candidates:
        if candidate.published_at is None:
            return list(range(len(candidates)))
        try:
            stamps.append(datetime.fromisoformat(candidate.published_at))
        except ValueError:
            return list(range(len(candidates)))
    try:
        return sorted(range(len(candidates)), key=lambda i: (stamps[i], i))
    except TypeError:  # naive and aware timestamps mixed: fall back to the order given
        return list(range(len(candidates)))


def latest_index(candidates: Sequence[VersionCandidate]) -> int | None:
    """Index of the latest version among `candidates` (listed in the order the source gave them).

    Deleted versions are only chosen when every version is deleted. Returns None for no candidates.
    """
    if not candidates:
        return None
    pool = [i for i in _published_order(candidates) if not candidates[i].deleted]
    if not pool:
        pool = _published_order(candidates)
    latest = pool[0]
    latest_key = semver_key(candidates[latest].version)
    for index in pool[1:]:
        key = semver_key(candidates[index].version)
        if latest_key is not None and key is not None and key < latest_key:
            continue
        latest, latest_key = index, key
    return latest
