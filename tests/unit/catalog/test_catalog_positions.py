"""Line and column of JSON paths, computed from the text (nested keys, list indices, escapes)."""

from __future__ import annotations

import json

import pytest

from mcpreg.catalog import format_path
from mcpreg.catalog.positions import PositionIndex, parse_path

TEXT = """{
  "version": "1.0.0",
  "servers": {
    "a": {"tier": 1, "tools": ["x",
       "y"]},
    "b": {"image": "\u00e9t\u00e9 \\"quoted\\"", "tier": 2}
  },
  "list": [ {"k": 1}, [2, {"z": null}] ],
  "_meta": {"io.github.stacklok": {"ghcr.io/x:1": {"tools": []}}}
}"""


def _expected(needle: str, occurrence: int = 0) -> tuple[int, int]:
    offset = -1
    for _ in range(occurrence + 1):
        offset = TEXT.index(needle, offset + 1)
    line = TEXT.count("\n", 0, offset) + 1
    return line, offset - (TEXT.rfind("\n", 0, offset) + 1) + 1


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("version", '"version"'),
        ("servers", '"servers"'),
        ("servers.a.tier", '"tier"'),
        ("servers.a.tools[0]", '"x"'),
        ("servers.a.tools[1]", '"y"'),
        ("servers.b.tier", '"tier": 2'),
        ("list[0].k", '"k"'),
        ("list[1][0]", "2,"),
        ("list[1][1].z", '"z"'),
        ('_meta["io.github.stacklok"]["ghcr.io/x:1"].tools', '"tools": []'),
    ],
)
def test_a_path_is_placed_at_its_key_or_item(path: str, needle: str) -> None:
    assert json.loads(TEXT)  # the fixture is valid JSON
    assert PositionIndex(TEXT).locate(path) == _expected(needle)


def test_a_missing_path_is_placed_at_its_nearest_ancestor() -> None:
    index = PositionIndex(TEXT)
    assert index.locate("servers.b.status") == _expected('"b"')
    assert index.locate("servers.a.tools[7]") == _expected('"tools"')
    assert index.locate("nowhere.at.all") == (1, 1)
    assert index.locate("") == (1, 1)


def test_many_paths_at_once_match_one_at_a_time() -> None:
    paths = ["servers.a.tier", "servers.b.tier", "list[1][1].z", "version", "servers.a.tools[1]"]
    together = PositionIndex(TEXT).locate_all(paths)
    assert together == {path: PositionIndex(TEXT).locate(path) for path in paths}


def test_columns_count_characters_not_bytes() -> None:
    text = '{"\u00e9\u00e9\u00e9": 1, "k": 2}'
    assert PositionIndex(text).locate("k") == (1, text.index('"k"') + 1)


@pytest.mark.parametrize(
    "parts",
    [
        ["servers", "fetch", "env_vars", 0, "name"],
        ["_meta", "io.github.stacklok", "ghcr.io/x:1", "tools"],
        [3, "server", 'quote"and\\backslash'],
        ["groups", 0, "servers", "a-b"],
        [],
    ],
)
def test_parse_path_reverses_format_path(parts: list[str | int]) -> None:
    assert parse_path(format_path(parts)) == parts


def test_parse_path_refuses_what_format_path_never_writes() -> None:
    with pytest.raises(ValueError, match="not a JSON path"):
        parse_path("servers..x")
