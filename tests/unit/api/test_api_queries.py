"""Query parameters: strict parsing, every mistake a 400 that names the parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from multidict import MultiDict

from mcpreg_api.errors import ApiError
from mcpreg_api.queries import DetailQuery, ListServersQuery, parse_query, parse_rfc3339


def parse(**params: str) -> ListServersQuery:
    return parse_query(ListServersQuery, MultiDict(params))


def refused(params: list[tuple[str, str]]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse_query(ListServersQuery, MultiDict(params))
    assert caught.value.status == 400
    return caught.value


def test_defaults() -> None:
    query = parse()
    assert query.limit == 30
    assert query.cursor is None and query.search is None and query.version is None
    assert not query.latest_only and query.exact_version is None
    assert query.with_deleted is False


@pytest.mark.parametrize("limit", ["1", "30", "100", "007"])
def test_limit_in_range(limit: str) -> None:
    assert parse(limit=limit).limit == int(limit)


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("0", "at least 1"),
        ("101", "at most 100"),
        ("abc", "whole number"),
        ("-1", "whole number"),
        ("1.0", "whole number"),
        ("1e2", "whole number"),
        (" 5", "whole number"),
        ("٣", "whole number"),  # Python's int() would take this Arabic-Indic digit
        ("", "whole number"),
        ("99999999999999999999", "whole number"),
    ],
)
def test_bad_limit(limit: str, message: str) -> None:
    error = refused([("limit", limit)])
    assert error.errors[0].location == "query.limit"
    assert message in error.errors[0].message


def test_repeated_parameter_is_refused() -> None:
    error = refused([("limit", "1"), ("limit", "2")])
    assert error.errors[0].location == "query.limit"
    assert "at most once" in error.errors[0].message


def test_every_problem_is_reported() -> None:
    error = refused([("limit", "0"), ("updated_since", "yesterday")])
    assert {e.location for e in error.errors} == {"query.limit", "query.updated_since"}


def test_unknown_parameters_are_ignored() -> None:
    assert parse(colour="blue").limit == 30


@pytest.mark.parametrize("name", ["cursor", "search", "version"])
def test_empty_text_means_not_given(name: str) -> None:
    assert getattr(parse(**{name: ""}), name) is None


def test_version_latest_and_exact() -> None:
    assert parse(version="latest").latest_only
    exact = parse(version="1.0.0+build")
    assert not exact.latest_only and exact.exact_version == "1.0.0+build"


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("1", True), ("T", True), ("False", False), ("0", False)]
)
def test_include_deleted_spellings(text: str, value: bool) -> None:
    assert parse(include_deleted=text).include_deleted is value


@pytest.mark.parametrize("text", ["yes", "on", "", "TRUE ", "2"])
def test_bad_boolean(text: str) -> None:
    assert refused([("include_deleted", text)]).errors[0].location == "query.include_deleted"


def test_updated_since_implies_deleted_entries() -> None:
    query = parse(updated_since="2025-08-07T13:15:04.280Z")
    assert query.with_deleted
    assert query.updated_since_utc == datetime(2025, 8, 7, 13, 15, 4, 280000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-08-07T13:15:04Z", datetime(2025, 8, 7, 13, 15, 4, tzinfo=UTC)),
        ("2025-08-07t13:15:04z", datetime(2025, 8, 7, 13, 15, 4, tzinfo=UTC)),
        ("2025-08-07T13:15:04.123456789Z", datetime(2025, 8, 7, 13, 15, 4, 123456, tzinfo=UTC)),
        ("2025-08-07T15:15:04+02:00", datetime(2025, 8, 7, 15, 15, 4, tzinfo=timezone(timedelta(hours=2)))),
    ],
)
def test_rfc3339(text: str, expected: datetime) -> None:
    assert parse_rfc3339(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2025-08-07",
        "2025-08-07T13:15:04",  # no zone
        "2025-08-07 13:15:04Z",
        "2025-13-07T13:15:04Z",
        "2025-02-30T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "1754572504",
        "2025-08-07T13:15:04+0200",
    ],
)
def test_bad_updated_since(text: str) -> None:
    error = refused([("updated_since", text)])
    assert error.errors[0].location == "query.updated_since"
    assert error.errors[0].value == text


def test_unescaped_plus_gets_a_hint() -> None:
    # "+02:00" sent raw in a query string arrives as " 02:00".
    error = refused([("updated_since", "2025-08-07T15:15:04 02:00")])
    assert "%2B" in error.errors[0].message


@pytest.mark.parametrize("field", ["search", "version"])
def test_control_characters_refused(field: str) -> None:
    assert refused([(field, "a\x00b")]).errors[0].location == f"query.{field}"


def test_lengths_are_bounded() -> None:
    assert refused([("search", "x" * 257)]).errors[0].location == "query.search"
    error = refused([("cursor", "x" * 5000)])
    assert error.errors[0].value is not None and len(error.errors[0].value) < 300  # echo is clipped


def test_detail_query() -> None:
    assert parse_query(DetailQuery, MultiDict()).include_deleted is False
    assert parse_query(DetailQuery, MultiDict(include_deleted="true")).include_deleted is True
    with pytest.raises(ApiError):
        parse_query(DetailQuery, MultiDict(include_deleted="maybe"))
