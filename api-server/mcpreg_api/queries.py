"""Query parameters: parsed strictly into pydantic models, every mistake a 400 naming the parameter.

Values arrive as text. Integers are ASCII digits only, booleans are the spellings Go's
`strconv.ParseBool` accepts (what the Go registry server and its clients use), timestamps are RFC 3339.
A known parameter given twice is an error (which one would count is a guess); unknown parameters are
ignored, as the official registry does. Empty `cursor`, `search` and `version` mean "not given".
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from multidict import MultiMapping
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from mcpreg.catalog.errors import validation_message
from mcpreg_api.errors import ApiError, ErrorDetail, bad_request

MAX_SEARCH_LENGTH = 256
MAX_VERSION_LENGTH = 255
MAX_CURSOR_LENGTH = 2048

_DIGITS = re.compile(r"[0-9]{1,9}")
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_RFC3339 = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.(?P<frac>[0-9]{1,9}))?(?P<zone>[Zz]|[+\-][0-9]{2}:[0-9]{2})"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"
CURSOR_PATTERN = r"^[A-Za-z0-9_-]*$"  # what the server issues (base64url); others are refused all the same


def _integer(value: Any) -> Any:
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value):
            raise ValueError("must be a whole number written in digits")
        return int(value)
    return value


def _boolean(value: Any) -> Any:
    if isinstance(value, str):
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ValueError("must be true or false")
    return value


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 date-time (`2025-08-07T13:15:04.280Z`), as an aware datetime; ValueError if not one."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        hint = " (a '+' in a query string must be sent as %2B)" if " " in text else ""
        raise ValueError(f"must be an RFC 3339 date-time such as 2025-08-07T13:15:04Z{hint}")
    frac = (match["frac"] or "")[:6]
    clock = match["time"]
    if clock.endswith(":60"):  # a leap second: RFC 3339 allows it, datetime does not
        clock = clock[:-2] + "59"
    zone = match["zone"].upper()
    normal = f"{match['date']}T{clock}{'.' + frac if frac else ''}{'+00:00' if zone == 'Z' else zone}"
    try:
        return datetime.fromisoformat(normal)
    except ValueError:
        raise ValueError("is not a valid date and time") from None


def _timestamp(value: Any) -> Any:
    if isinstance(value, str):
        return parse_rfc3339(value)
    return value


def _text(value: Any) -> Any:
    if isinstance(value, str) and _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


Boolean = Annotated[bool, BeforeValidator(_boolean)]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_timestamp)]


def _text_field(max_length: int, description: str) -> Any:
    """A free-text parameter: bounded, and without control characters (the pattern is for the OpenAPI
    document; `_text` enforces it)."""
    return Field(
        max_length=max_length, description=description, json_schema_extra={"pattern": NO_CONTROL_CHARACTERS}
    )


class ListServersQuery(BaseModel):
    """`GET /v0.1/servers`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    cursor: Annotated[
        str | None,
        Field(
            max_length=MAX_CURSOR_LENGTH,
            description="Opaque cursor from a previous page's metadata.nextCursor",
            json_schema_extra={"pattern": CURSOR_PATTERN},
        ),
    ] = None
    limit: Annotated[int, Field(ge=1, le=100, description="Entries per page"), BeforeValidator(_integer)] = 30
    search: Annotated[
        str | None,
        BeforeValidator(_text),
        _text_field(
            MAX_SEARCH_LENGTH, "Case-insensitive substring of the name, title or description (no wildcards)"
        ),
    ] = None
    version: Annotated[
        str | None,
        BeforeValidator(_text),
        _text_field(MAX_VERSION_LENGTH, "'latest' for latest versions only, or an exact version"),
    ] = None
    updated_since: Annotated[
        Timestamp | None,
        Field(description="Only entries updated after this RFC 3339 date-time (deleted ones included)"),
    ] = None
    include_deleted: Annotated[
        Boolean | None,
        Field(description="Include deleted entries (default: false, or true when updated_since is given)"),
    ] = None

    @property
    def latest_only(self) -> bool:
        return self.version == "latest"

    @property
    def exact_version(self) -> str | None:
        return None if self.version in (None, "latest") else self.version

    @property
    def with_deleted(self) -> bool:
        if self.include_deleted is not None:
            return self.include_deleted
        return self.updated_since is not None

    @property
    def updated_since_utc(self) -> datetime | None:
        return None if self.updated_since is None else self.updated_since.astimezone(UTC)


class DetailQuery(BaseModel):
    """`GET /v0.1/servers/{name}[/versions[/{version}]]`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    include_deleted: Annotated[Boolean, Field(description="Include deleted versions (default false)")] = False


Q = TypeVar("Q", bound=BaseModel)
_EMPTY_MEANS_ABSENT = frozenset({"cursor", "search", "version"})


def parse_query(model: type[Q], query: MultiMapping[str]) -> Q:
    """The model's fields from `query`; ApiError(400) listing every bad parameter."""
    values: dict[str, str] = {}
    problems: list[ErrorDetail] = []
    for name in model.model_fields:
        given = query.getall(name, [])
        if len(given) > 1:
            problems.append(ErrorDetail(f"query.{name}", "must be given at most once"))
        elif given and not (given[0] == "" and name in _EMPTY_MEANS_ABSENT):
            values[name] = given[0]
    if not problems:
        try:
            return model.model_validate(values)
        except ValidationError as exc:
            problems.extend(_details(exc, values))
    if len(problems) == 1:
        only = problems[0]
        raise bad_request(only.location, only.message, only.value)
    raise ApiError(400, "; ".join(f"{p.location}: {p.message}" for p in problems), tuple(problems))


def _details(exc: ValidationError, values: dict[str, str]) -> list[ErrorDetail]:
    details = []
    for error in exc.errors(include_url=False):
        field = str(error["loc"][0]) if error["loc"] else "query"
        message = validation_message(error)
        details.append(ErrorDetail(f"query.{field}", message, _clipped(values.get(field))))
    return details


def _clipped(value: str | None) -> str | None:
    if value is None or len(value) <= 200:
        return value
    return value[:200] + "…"
