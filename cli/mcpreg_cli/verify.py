"""`mcpreg verify URL --key KEY.pub`: check a registry's signed document before trusting it.

The step an MCP host runs before launching anything from a registry (docs/signing.md): fetch the
document and its signature (`URL.sig`, or `--signature`), verify the signature with a public key
obtained through another channel than the registry, and refuse on any mismatch. A registry's base URL
checks both documents it signs (the ToolHive document and the upstream server list), and the entries
manifest when the registry serves one (generations signed before per-entry provenance have none).

With `--entry NAME[@VERSION]`, only that server entry is checked, against the signed entries manifest
its provenance block names (see verify_entry): what a host runs before launching one server.

Exit codes: 0 verified; 1 a signature is missing or does not match (tampered document or entry,
another key); 2 the registry cannot be reached or the arguments are wrong.
"""

from __future__ import annotations

import argparse
import functools
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mcpreg.signing import PublicKey, SignatureMismatch, SigningError, key_id, load_public_key, verify_blob
from mcpreg_cli.verify_entry import MAX_SIGNATURE_BYTES, parse_entry_arg, verify_entry

EXIT_OK, EXIT_MISMATCH, EXIT_UNREACHABLE = 0, 1, 2
# The documents a registry signs, by path (the API's `SIGNED_PATHS`; the CLI does not import the API).
SIGNED_DOCUMENT_PATHS = ("/api/v1/registry", "/v0.1/x/dev.mcpregistry/servers.json")
SIGNATURE_SUFFIX = ".sig"
ENTRIES_MANIFEST_PATH = "/v0.1/x/dev.mcpregistry/entries.json"
HEADER_GENERATION = "X-Mcpreg-Generation"


class Unreachable(Exception):
    """The registry could not be asked (connection, HTTP error other than a missing signature)."""


class Missing(Exception):
    """The registry has no signature for the document."""


@dataclass(frozen=True)
class Fetched:
    body: bytes
    generation: str | None


def _get(url: str, timeout: float, limit: int | None = None) -> Fetched:
    request = urllib.request.Request(url, headers={"Accept-Encoding": "identity"})  # noqa: S310 - http(s) checked
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) checked
            body = response.read() if limit is None else response.read(limit + 1)
            if limit is not None and len(body) > limit:
                raise Unreachable(f"{url} sent more than {limit} bytes")
            return Fetched(body, response.headers.get(HEADER_GENERATION))
    except urllib.error.HTTPError as exc:
        if exc.code == 404 and url.endswith(SIGNATURE_SUFFIX):
            raise Missing(f"{url}: 404, the registry serves no signature (is spec.signing set?)") from None
        raise Unreachable(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreachable(f"{url}: cannot connect ({reason})") from None


def documents_of(url: str) -> list[str]:
    """The document URLs to check: `url` itself, or every signed document of a registry base URL."""
    parts = urllib.parse.urlsplit(url)
    if parts.path in ("", "/"):
        base = url.rstrip("/")
        return [base + path for path in SIGNED_DOCUMENT_PATHS]
    return [url]


def verify_document(url: str, key: PublicKey, *, signature_url: str | None, timeout: float) -> str:
    """Verify one document; returns what was verified, raises SignatureMismatch, Missing or Unreachable.

    The signature and the document are fetched one after the other: when the registry published a
    new generation in between (their generation headers differ), both are fetched once more."""
    for attempt in (1, 2):
        signature = _get(signature_url or url + SIGNATURE_SUFFIX, timeout, MAX_SIGNATURE_BYTES)
        document = _get(url, timeout)
        if signature.generation and document.generation and signature.generation != document.generation:
            if attempt == 1:
                continue
            raise SignatureMismatch(
                f"the signature belongs to generation {signature.generation}, the document to "
                f"{document.generation}: the registry keeps changing; try again"
            )
        verify_blob(key, signature.body, document.body)
        generation = document.generation or signature.generation or "unknown"
        return f"{url}: {len(document.body)} bytes, generation {generation}"
    raise AssertionError("unreachable")


def _refuse(message: str, code: int) -> int:
    """Say why on stderr; the exit status tells a script which kind of failure it was."""
    print(message, file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    try:
        key = load_public_key(Path(args.key).read_bytes())
    except OSError as exc:
        return _refuse(f"error: cannot read the key {args.key}: {exc.strerror}", EXIT_UNREACHABLE)
    except SigningError as exc:
        return _refuse(f"error: {args.key}: {exc}", EXIT_UNREACHABLE)
    if urllib.parse.urlsplit(args.url).scheme not in ("http", "https"):
        return _refuse(f"error: {args.url} is not an http(s) URL", EXIT_UNREACHABLE)
    if args.entry is not None:
        return _run_entry(args, key)
    urls = documents_of(args.url)
    if args.signature and len(urls) > 1:
        return _refuse("error: --signature is the signature of one document: give its URL", EXIT_UNREACHABLE)
    for url in urls:
        code = _checked(
            functools.partial(verify_document, url, key, signature_url=args.signature, timeout=args.timeout),
            key,
            where=f"{url}: ",
        )
        if code != EXIT_OK:
            return code
    if len(urls) > 1:
        # Checked like the documents when signed; a registry without one (no per-entry provenance yet)
        # is said to be so, not refused: its documents verified, and --entry refuses it on its own.
        manifest = args.url.rstrip("/") + ENTRIES_MANIFEST_PATH
        return _checked(
            functools.partial(verify_document, manifest, key, signature_url=None, timeout=args.timeout),
            key,
            where=f"{manifest}: ",
            absent=f"{manifest}: the registry serves no entries manifest (no per-entry provenance)",
        )
    return EXIT_OK


def _checked(check: Callable[[], str], key: PublicKey, where: str = "", absent: str | None = None) -> int:
    """Run one check: say what was verified, or why not; the exit status for it. With `absent`, a
    missing signature is not a failure: `absent` says what was not checked."""
    try:
        what = check()
    except Unreachable as exc:
        return _refuse(f"error: {exc}", EXIT_UNREACHABLE)
    except Missing as exc:
        if absent is not None:
            print(f"not checked: {absent}")
            return EXIT_OK
        return _refuse(f"NOT VERIFIED: {exc}", EXIT_MISMATCH)
    except SignatureMismatch as exc:
        return _refuse(f"NOT VERIFIED: {where}{exc}", EXIT_MISMATCH)
    print(f"verified: {what}, key {key_id(key)}")
    return EXIT_OK


def _body(url: str, timeout: float, limit: int | None) -> bytes:
    return _get(url, timeout, limit).body


def _run_entry(args: argparse.Namespace, key: PublicKey) -> int:
    """`--entry NAME[@VERSION]`: the registry's base URL, one entry checked (see verify_entry)."""
    if args.signature:
        return _refuse("error: --signature is for a document; an entry names its own", EXIT_UNREACHABLE)
    try:
        name, version = parse_entry_arg(args.entry)
    except ValueError as exc:
        return _refuse(f"error: {exc}", EXIT_UNREACHABLE)
    return _checked(
        lambda: verify_entry(args.url, name, version, key, timeout=args.timeout, fetch=_body), key
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="verify a registry's signed document with a public key (run before launching a server)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument(
        "url", help="a signed document's URL (…/api/v1/registry, …/servers.json) or a registry's base URL"
    )
    parser.add_argument("--key", required=True, help="the public key (PEM), obtained outside the registry")
    parser.add_argument("--signature", help="the signature's URL (default: the document's URL + .sig)")
    parser.add_argument(
        "--entry",
        metavar="NAME[@VERSION]",
        help="verify one server entry (default version: latest) against the signed entries manifest; "
        "URL is then the registry's base URL",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    parser.set_defaults(func=run)
