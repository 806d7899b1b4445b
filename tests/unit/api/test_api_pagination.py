"""Cursors and pages: every walk visits each matching entry exactly once, in order, and ends."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcpreg_api.errors import ApiError
from mcpreg_api.pagination import SortKey, decode_cursor, encode_cursor, paginate


@dataclass(frozen=True)
class Item:
    key: SortKey


def walk(keys: list[SortKey], limit: int, keep: set[SortKey] | None = None) -> list[list[SortKey]]:
    items = [Item(k) for k in keys]
    pages: list[list[SortKey]] = []
    after = None
    while True:
        page = paginate(
            items, keys, after=after, limit=limit, keep=None if keep is None else (lambda i: i.key in keep)
        )
        pages.append([i.key for i in page.items])
        if page.next_cursor is None:
            return pages
        after = decode_cursor(page.next_cursor)
        assert len(pages) <= len(keys) + 1, "the walk does not end"


names = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12)
key_lists = st.lists(st.tuples(names, names), unique=True, max_size=60).map(sorted)


@given(keys=key_lists, limit=st.integers(1, 100))
def test_walk_visits_everything_once(keys: list[SortKey], limit: int) -> None:
    pages = walk(keys, limit)
    assert [k for page in pages for k in page] == keys
    assert all(len(page) == limit for page in pages[:-1])
    assert pages[-1] or not keys  # no empty last page unless there is nothing at all


@given(keys=key_lists, limit=st.integers(1, 10), data=st.data())
def test_filtered_walk(keys: list[SortKey], limit: int, data: st.DataObject) -> None:
    keep = set(data.draw(st.lists(st.sampled_from(keys), unique=True)) if keys else [])
    pages = walk(keys, limit, keep)
    assert [k for page in pages for k in page] == [k for k in keys if k in keep]


@given(st.tuples(names, names))
def test_cursor_round_trip(key: SortKey) -> None:
    cursor = encode_cursor(key)
    assert cursor.isascii() and "=" not in cursor
    assert decode_cursor(cursor) == key


def test_cursor_survives_removal_of_its_entry() -> None:
    keys = [("a", "1"), ("b", "1"), ("c", "1")]
    items = [Item(k) for k in keys]
    page = paginate(items, keys, after=("b", "0"), limit=5)  # ("b", "0") never existed
    assert [i.key for i in page.items] == [("b", "1"), ("c", "1")]


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64!",
        "%%%",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        base64.urlsafe_b64encode(b"[1,2,3]").decode(),
        base64.urlsafe_b64encode(b'["a","b"]').decode(),
        base64.urlsafe_b64encode(b'[2,"a","b"]').decode(),
        base64.urlsafe_b64encode(b'{"a":1}').decode(),
        "é",
        "a",
    ],
)
def test_bad_cursor(cursor: str) -> None:
    with pytest.raises(ApiError) as caught:
        decode_cursor(cursor)
    assert caught.value.status == 400
    assert caught.value.errors[0].location == "query.cursor"
