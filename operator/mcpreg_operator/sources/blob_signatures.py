"""Detached signatures of a catalogue read from a ConfigMap: the format of `cosign sign-blob` with a
public key (no transparency log, no certificate), checked over the exact bytes before parsing.

The verification itself is the one `mcpreg verify` and the API's signed documents use
(`mcpreg.signing.verify_blob`); this module adds what a source needs: the trusted keys out of a Secret,
and failures as `SourceError`s that name the object and the keys tried (their key ids), never a key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mcpreg.signing import PublicKey, SignatureMismatch, SigningError, key_id, load_public_key, verify_blob
from mcpreg_operator.sources.errors import SourceError, SourceErrorKind

PUBLIC_KEY_SUFFIX = ".pub"


def trusted_public_keys(data: Mapping[str, bytes], origin: str) -> list[PublicKey]:
    """Every public key of a Secret's keys ending in '.pub'; SourceError when one is not a key, or
    there is none."""
    keys: list[PublicKey] = []
    for name in sorted(data):
        if not name.endswith(PUBLIC_KEY_SUFFIX):
            continue
        try:
            keys.append(load_public_key(data[name]))
        except SigningError as exc:
            raise SourceError(SourceErrorKind.UNVERIFIED, f"{origin} key {name!r}: {exc}") from None
    if not keys:
        raise SourceError(
            SourceErrorKind.UNVERIFIED,
            f"{origin} holds no public key: put one (PEM, as cosign.pub) under a key ending in "
            f"{PUBLIC_KEY_SUFFIX!r}",
        )
    return keys


def check_detached_signature(
    data: bytes, signature: bytes, keys: Sequence[PublicKey], *, what: str, origin: str
) -> str:
    """The key id of the trusted key whose signature `signature` is over `data`; SourceError otherwise."""
    for key in keys:
        try:
            verify_blob(key, signature, data)
        except SignatureMismatch:
            continue
        return key_id(key)
    tried = ", ".join(key_id(key)[:19] + "…" for key in keys)
    raise SourceError(
        SourceErrorKind.UNVERIFIED,
        f"{what}: the signature does not verify with any key of {origin} ({tried}): the catalogue was "
        "changed after signing, or signed with another key",
    )
