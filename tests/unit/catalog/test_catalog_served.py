"""The served document: its layout, reading it back, and refusing what is not one this code reads.

(That it serves exactly what the API served before, body for body, is tests/unit/api/
test_api_served_equivalence.py.)
"""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from catalog_testdata import container, encode, minimal_toolhive, remote

from mcpreg.catalog import OFFICIAL_META_KEY, parse_catalog
from mcpreg.catalog.served import (
    GZIP_LEVEL,
    SERVED_FORMAT,
    ServedFormatError,
    format_time,
    is_served,
    parse_time,
    read_served,
    render_served,
    toolhive_document,
)

REAL = "toolhive/registry-2026-02-18.json"


def upstream_entry(name: str, version: str, **official: object) -> dict[str, object]:
    server = {"name": name, "version": version, "description": f"{name} {version}", "title": "The Title"}
    return {"server": server, "_meta": {OFFICIAL_META_KEY: {"status": "active", **official}}}


@pytest.fixture
def served() -> bytes:
    document = {
        "servers": [
            upstream_entry("com.example/b", "1.0.0", publishedAt="2025-01-01T02:00:00+02:00"),
            upstream_entry("com.example/a", "2.0.0", publishedAt="2025-03-01T00:00:00.250Z"),
            upstream_entry("com.example/a", "1.0.0", publishedAt="2025-02-01T00:00:00Z", status="deleted"),
        ]
    }
    return render_served(parse_catalog(encode(document)))


def lines_of(data: bytes) -> list[bytes]:
    return data[:-1].split(b"\n")


def join(lines: list[bytes]) -> bytes:
    return b"\n".join(lines) + b"\n"


def test_layout(served: bytes) -> None:
    assert is_served(served) and served.isascii() and served.endswith(b"\n")
    lines = lines_of(served)
    assert json.loads(lines[0]) == {"format": SERVED_FORMAT, "servers": 2, "entries": 3}
    assert len(lines) == 2 + 2 * 3
    toolhive = json.loads(gzip.decompress(base64.b64decode(json.loads(lines[1]))))
    assert set(toolhive["remote_servers"]) | set(toolhive["servers"]) == set()  # no remotes, no images
    facts = [json.loads(line) for line in lines[2::2]]
    assert [f[:2] for f in facts] == [
        ["com.example/a", "1.0.0"],
        ["com.example/a", "2.0.0"],
        ["com.example/b", "1.0.0"],
    ]
    assert facts[0] == [
        "com.example/a",
        "1.0.0",
        "deleted",
        False,
        "2025-02-01T00:00:00Z",
        "2025-02-01T00:00:00Z",
        "com.example/a\x1fthe title\x1fcom.example/a 1.0.0",
    ]
    body = json.loads(lines[7])
    assert body["server"]["name"] == "com.example/b"
    assert body["_meta"][OFFICIAL_META_KEY]["publishedAt"] == "2025-01-01T00:00:00Z"  # normalised to UTC


def test_read_back(served: bytes) -> None:
    document = read_served(served)
    assert document.server_count == 2
    assert [e.key for e in document.entries] == [
        ("com.example/a", "1.0.0"),
        ("com.example/a", "2.0.0"),
        ("com.example/b", "1.0.0"),
    ]
    deleted, latest, other = document.entries
    assert deleted.deleted and not deleted.is_latest and latest.is_latest and other.is_latest
    assert latest.published_at == datetime(2025, 3, 1, 0, 0, 0, 250000, tzinfo=UTC)
    assert latest.body == lines_of(served)[5]
    packed = base64.b64decode(json.loads(lines_of(served)[1]))
    assert document.toolhive_gzip == packed and gzip.decompress(packed) == document.toolhive
    assert packed == gzip.compress(document.toolhive, compresslevel=GZIP_LEVEL, mtime=0)


def test_a_real_catalogue_reads_back(shared_data: Path) -> None:
    catalog = parse_catalog((shared_data / REAL).read_bytes())
    document = read_served(render_served(catalog))
    assert document.server_count == catalog.server_count == len(document.entries) == 102
    assert json.loads(document.toolhive) == json.loads(json.dumps(catalog.toolhive_view()))


def test_same_content_same_bytes_whatever_the_key_order() -> None:
    one = {**minimal_toolhive(fetch=container()), "remote_servers": {"api": remote()}}
    other = {key: one[key] for key in reversed(list(one))}
    other["servers"] = {"fetch": dict(reversed(list(one["servers"]["fetch"].items())))}
    assert render_served(parse_catalog(encode(one))) == render_served(parse_catalog(encode(other)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-01T00:00:00Z", datetime(2025, 1, 1, tzinfo=UTC)),
        ("2025-01-01 00:00:00z", datetime(2025, 1, 1, tzinfo=UTC)),
        ("2025-01-01t02:00:00+02:00", datetime(2025, 1, 1, tzinfo=UTC)),
        ("2025-01-01T00:00:00", None),  # no zone: not a moment
        ("soon", None),
        (None, None),
        ("", None),
    ],
)
def test_parse_time(text: str | None, expected: datetime | None) -> None:
    assert parse_time(text) == expected


def test_format_time() -> None:
    assert format_time(datetime(2025, 1, 1, 12, 0, 0, 500000, tzinfo=UTC)) == "2025-01-01T12:00:00.5Z"
    assert format_time(datetime(2025, 1, 1, tzinfo=UTC)) == "2025-01-01T00:00:00Z"


# --- what is refused, and how it is said ----------------------------------------------------------------


def gzipped_line(document: bytes) -> bytes:
    return b'"' + base64.b64encode(gzip.compress(document, mtime=0)) + b'"'


def with_line(served: bytes, index: int, line: bytes) -> bytes:
    lines = lines_of(served)
    lines[index] = line
    return join(lines)


def with_header(served: bytes, **changes: object) -> bytes:
    header = json.loads(lines_of(served)[0])
    header.update(changes)
    return with_line(served, 0, json.dumps(header, separators=(",", ":")).encode())


def test_an_unknown_format_version_is_refused_by_name(served: bytes) -> None:
    newer = served.replace(SERVED_FORMAT.encode(), b"mcpreg.served/v2", 1)
    assert is_served(newer)
    with pytest.raises(ServedFormatError, match=r"format 'mcpreg.served/v2'; this version reads only"):
        read_served(newer)
    with pytest.raises(ServedFormatError, match=r"mcpreg\.served/v2"):
        toolhive_document(newer)


def test_a_catalogue_is_not_a_served_document() -> None:
    catalogue = parse_catalog(encode(minimal_toolhive(fetch=container())))
    assert not is_served(catalogue.canonical_json())
    with pytest.raises(ServedFormatError, match="not a served document"):
        read_served(catalogue.canonical_json())


def swap_entries(served: bytes) -> bytes:
    lines = lines_of(served)
    lines[2:4], lines[4:6] = lines[4:6], lines[2:4]
    return join(lines)


def duplicate_first_entry(served: bytes) -> bytes:
    lines = lines_of(served)
    lines[4:6] = lines[2:4]
    return join(lines)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda s: s[:-1], "does not end with a newline"),
        (lambda s: s[: s.rindex(b"\n", 0, len(s) - 1) + 1], "has 7 lines; its header announces 3 entries"),
        (lambda s: s.replace(b"\n", b"\n\n", 1), "has 9 lines"),
        (lambda s: with_line(s, 0, b'{"format":"mcpreg.served/v1",'), "header is not JSON"),
        (lambda s: with_header(s, entries="3"), "no valid 'entries' count"),
        (lambda s: with_header(s, servers=-1), "no valid 'servers' count"),
        (lambda s: with_header(s, servers=3), "announces 3 servers; its entries name 2"),
        (lambda s: with_line(s, 1, b"[]"), "line 2 of the served document is not a base64 JSON string"),
        (lambda s: with_line(s, 1, b'"not base64!"'), "line 2 of the served document is not a base64"),
        (
            lambda s: with_line(s, 1, b'"' + base64.b64encode(b"{}") + b'"'),
            "line 2 .* not a gzipped ToolHive",
        ),
        (lambda s: with_line(s, 1, b'"' + base64.b64encode(b"\x1f\x8b\x08junk") + b'"'), "is not gzip"),
        (lambda s: with_line(s, 1, gzipped_line(b"[1]")), "ToolHive document is not a JSON object"),
        (lambda s: with_line(s, 1, gzipped_line(b"{}")[:-9] + b'"'), "truncated or too large"),
        (lambda s: with_line(s, 2, b"{not json"), "line 3 of the served document is not an entry's facts"),
        (lambda s: with_line(s, 2, b'["a","1"]'), "line 3 of the served document is not an entry's facts"),
        (lambda s: with_line(s, 2, b'["a","1","gone",true,null,null,"a"]'), "line 3 .* wrong types"),
        (lambda s: with_line(s, 2, b'["a",1,"active",true,null,null,"a"]'), "line 3 .* wrong types"),
        (lambda s: with_line(s, 2, b'["a","1","active",1,null,null,"a"]'), "line 3 .* wrong types"),
        (
            lambda s: with_line(s, 2, b'["com.example/a","1.0.0","active",true,"yesterday",null,"a"]'),
            "line 3 .* not RFC 3339",
        ),
        (
            lambda s: with_line(
                s, 2, b'["com.example/a","1.0.0","active",true,"2025-01-01T00:00:00",null,"a"]'
            ),
            "line 3 .* not RFC 3339",
        ),
        (
            lambda s: with_line(s, 3, b'{"servers":[]}'),
            "line 4 of the served document is not an entry's body",
        ),
        (swap_entries, "line 5 of the served document is out of"),
        (duplicate_first_entry, "line 5 of the served document is out of"),
    ],
)
def test_malformed_documents_are_refused(served: bytes, damage: object, message: str) -> None:
    read_served(served)  # the undamaged one reads
    with pytest.raises(ServedFormatError, match=message):
        read_served(damage(served))  # type: ignore[operator]


# --- the ToolHive document alone (the S3 writer's extra object) -------------------------------------------


def test_toolhive_document_of_a_served_document_is_its_line(shared_data: Path) -> None:
    catalog = parse_catalog((shared_data / REAL).read_bytes())
    served = render_served(catalog)
    assert toolhive_document(served) == read_served(served).toolhive
    assert json.loads(toolhive_document(served)) == json.loads(json.dumps(catalog.toolhive_view()))


def test_toolhive_document_of_an_older_generation_is_rendered(shared_data: Path) -> None:
    catalog = parse_catalog((shared_data / REAL).read_bytes())
    assert toolhive_document(catalog.canonical_json()) == toolhive_document(render_served(catalog))


def test_toolhive_document_of_a_served_document_without_one_is_refused(served: bytes) -> None:
    with pytest.raises(ServedFormatError, match="no ToolHive registry document"):
        toolhive_document(lines_of(served)[0] + b"\n")
