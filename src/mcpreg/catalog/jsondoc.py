"""Raw bytes to a JSON value, refusing what a catalogue must never be.

This is the only place that touches untrusted bytes. It turns every way a document can be broken -
too large, not UTF-8, not JSON, NaN, duplicate keys, absurd nesting, gigantic strings - into one
`CatalogError` with a message that says what was found, and it never lets a RecursionError or a
decoder traceback escape.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from mcpreg.catalog.errors import CatalogError, CatalogIssue, PathPart, document_issue, format_path
from mcpreg.catalog.limits import DEFAULT_LIMITS, CatalogLimits, describe_bytes

_UTF8_BOM = b"\xef\xbb\xbf"
_OTHER_BOMS = {
    b"\xff\xfe\x00\x00": "UTF-32 (little-endian)",
    b"\x00\x00\xfe\xff": "UTF-32 (big-endian)",
    b"\xff\xfe": "UTF-16 (little-endian)",
    b"\xfe\xff": "UTF-16 (big-endian)",
}


class _DuplicateKeyError(Exception):
    """Raised from inside the JSON decoder; caught and turned into issues with paths below."""


def _strict_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads silently keeps the last of two equal keys; in a catalogue that would silently drop a
    # server, so a duplicate key is an error. This hook runs once per object and stays cheap.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateKeyError
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a catalogue (JSON has no such number)")


def decode_json_document(data: bytes | str, limits: CatalogLimits = DEFAULT_LIMITS) -> Any:
    """Decode `data` as one JSON document within `limits`; raise CatalogError otherwise."""
    value, repeated = decode_catalog_document(data, limits)
    if repeated:
        raise CatalogError([issue for _, issue in repeated])
    return value


# Where a repeated key names a server: a ToolHive map of servers, at the top or in a group.
def _is_server_map(path: Sequence[PathPart]) -> bool:
    if len(path) == 1:
        return path[0] in ("servers", "remote_servers")
    return len(path) == 3 and path[0] == "groups" and path[2] in ("servers", "remote_servers")


def decode_catalog_document(
    data: bytes | str, limits: CatalogLimits = DEFAULT_LIMITS
) -> tuple[Any, list[tuple[tuple[PathPart, ...], CatalogIssue]]]:
    """Like `decode_json_document`, but a server name written twice in a ToolHive map of servers is
    returned as a problem of that entry (its key path and the issue) instead of refusing the document.

    Which of the two definitions was meant cannot be known, so the caller leaves the entry out. Any
    other repeated key is still a problem of the whole document.
    """
    if isinstance(data, str):
        data = data.encode("utf-8", errors="surrogatepass")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"a catalogue document must be bytes, not {type(data).__name__}")
    size = len(data)
    if size > limits.max_bytes:
        raise CatalogError(
            [
                document_issue(
                    f"the document is {describe_bytes(size)}, larger than the limit of "
                    f"{describe_bytes(limits.max_bytes)}"
                )
            ]
        )
    text = _decode_utf8(bytes(data))
    if not text.strip():
        raise CatalogError([document_issue("the document is empty; expected a JSON catalogue")])
    repeated: list[tuple[tuple[PathPart, ...], CatalogIssue]] = []
    try:
        value = json.loads(text, object_pairs_hook=_strict_object, parse_constant=_reject_constant)
    except _DuplicateKeyError:
        value, repeated = _locate_duplicate_keys(text)
        if value is None or any(not _is_server_map(path[:-1]) for path, _ in repeated):
            raise CatalogError(
                [issue for _, issue in repeated] or [document_issue("contains duplicate keys")]
            ) from None
    except json.JSONDecodeError as exc:
        raise CatalogError(
            [document_issue(f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")]
        ) from None
    except RecursionError:
        raise CatalogError(
            [document_issue(f"is nested too deeply (the limit is {limits.max_depth} levels)")]
        ) from None
    except ValueError as exc:
        # NaN/Infinity, or an integer with thousands of digits (Python refuses to convert those).
        raise CatalogError([document_issue(f"is not an acceptable JSON document: {exc}")]) from None
    problem = _find_bound_violation(value, limits)
    if problem is not None:
        raise CatalogError([problem])
    return value, repeated


def _decode_utf8(data: bytes) -> str:
    for bom, name in _OTHER_BOMS.items():
        if data.startswith(bom):
            raise CatalogError([document_issue(f"is encoded as {name}; catalogues must be UTF-8 text")])
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        raise CatalogError(
            [document_issue(f"is not UTF-8 text: invalid byte 0x{bad} at offset {exc.start}")]
        ) from None


def _locate_duplicate_keys(text: str) -> tuple[Any, list[tuple[tuple[PathPart, ...], CatalogIssue]]]:
    """Slow path, only for broken documents: re-decode, noting the objects with duplicate keys.

    Returns the document (the last of two equal keys kept, as json.loads does) and each repeated key
    with its path; the document is None when it cannot be decoded this way.
    """
    # Objects with repeated keys, by identity: they stay alive inside `value` while it is walked.
    repeats: dict[int, list[str]] = {}

    def marking_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            duplicates: list[str] = []
            for key, _ in pairs:
                if key in seen and key not in duplicates:
                    duplicates.append(key)
                seen.add(key)
            repeats[id(obj)] = duplicates
        return obj

    try:
        value = json.loads(text, object_pairs_hook=marking_object, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # pragma: no cover - the first pass would have said so
        return None, []
    found: list[tuple[tuple[PathPart, ...], CatalogIssue]] = []
    stack: list[tuple[Any, tuple[PathPart, ...]]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            is_server_map = _is_server_map(path)
            what = "server name" if is_server_map else "key"
            for key in repeats.get(id(node), ()):
                issue = CatalogIssue(
                    entry=key if is_server_map else None,
                    path=format_path([*path, key]),
                    message=f"duplicate {what} {key!r}: each may appear only once",
                )
                found.append(((*path, key), issue))
            stack.extend((child, (*path, key)) for key, child in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((child, (*path, index)) for index, child in reversed(list(enumerate(node))))
    return value, found


def _find_bound_violation(root: Any, limits: CatalogLimits) -> CatalogIssue | None:
    """Check nesting depth and string lengths in one iterative pass (no recursion to exhaust).

    The fast pass keeps no paths; only when it finds a violation does the slow pass work out where.
    """
    max_depth = limits.max_depth
    max_len = limits.max_string_length
    if type(root) is str and len(root) > max_len:
        return document_issue(_long_message(max_len, "string"))
    if type(root) is not dict and type(root) is not list:
        return None
    stack: list[tuple[Any, int]] = [(root, 1)]
    pop = stack.pop
    push = stack.append
    while stack:
        node, depth = pop()
        if depth > max_depth:
            return _locate(root, limits, _too_deep(max_depth), _depth_message(max_depth))
        if type(node) is dict:
            values: Any = node.values()
            for key in node:
                if len(key) > max_len:
                    return _locate(root, limits, _long_key(max_len), _long_message(max_len, "key"))
        else:
            values = node
        for child in values:
            kind = type(child)
            if kind is dict or kind is list:
                push((child, depth + 1))
            elif kind is str and len(child) > max_len:
                return _locate(root, limits, _long_string(max_len), _long_message(max_len, "string"))
    return None


def _depth_message(max_depth: int) -> str:
    return f"is nested more than {max_depth} levels deep"


def _long_message(max_len: int, what: str) -> str:
    return f"contains a {what} longer than {max_len} characters"


def _too_deep(max_depth: int) -> Callable[[Any, int], bool]:
    return lambda v, d: d > max_depth and type(v) in (dict, list)


def _long_string(max_len: int) -> Callable[[Any, int], bool]:
    return lambda v, _d: type(v) is str and len(v) > max_len


def _long_key(max_len: int) -> Callable[[Any, int], bool]:
    return lambda v, _d: type(v) is dict and any(len(k) > max_len for k in v)


def _locate(
    root: Any, limits: CatalogLimits, is_bad: Callable[[Any, int], bool], message: str
) -> CatalogIssue:
    stack: list[tuple[Any, int, tuple[PathPart, ...]]] = [(root, 1, ())]
    while stack:
        node, depth, path = stack.pop()
        if is_bad(node, depth):
            return CatalogIssue(entry=_entry_from_path(path), path=format_path(path), message=message)
        if depth > limits.max_depth:
            continue
        if type(node) is dict:
            stack.extend((child, depth + 1, (*path, key)) for key, child in node.items())
        elif type(node) is list:
            stack.extend((child, depth + 1, (*path, index)) for index, child in enumerate(node))
    return document_issue(message)  # pragma: no cover - the fast pass found it, so this does too


def _entry_from_path(path: tuple[PathPart, ...]) -> str | None:
    if len(path) >= 2 and path[0] in ("servers", "remote_servers") and isinstance(path[1], str):
        return path[1]
    return None
