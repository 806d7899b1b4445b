"""Signatures over served catalogue documents, in the format of `cosign sign-blob`.

The operator signs each document the API serves whole (the ToolHive registry document, the upstream
server list and the entries manifest: `SIGNED_DOCUMENTS`) over its exact bytes, and stores the
signatures and the public key with the generation (`GenerationSignatures`, part of the storage
manifest). The API serves them; `mcpreg verify` and `cosign verify-blob --key` check them. Nothing
here ever sees the private key except a `Signer`, which only the operator builds.

The format is cosign's for a key pair (no transparency log, no certificate):
- ECDSA P-256: base64 of the ASN.1 DER signature over SHA-256 of the bytes;
- Ed25519: base64 of the 64-byte signature over the bytes themselves (PureEd25519).
The key id is `sha256:` and the hex SHA-256 of the public key's DER SubjectPublicKeyInfo.

A KMS is the next step: anything with `key_id`, `public_key_pem` and `sign(data)` is a `Signer`, so a
KMS signer plugs into the operator without touching storage, the API or verification.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Protocol

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from pydantic import BaseModel, ConfigDict, Field

TOOLHIVE_DOCUMENT = "toolhive"
UPSTREAM_DOCUMENT = "upstream"
ENTRIES_DOCUMENT = "entries"  # the digest of each entry (mcpreg.catalog.provenance): per-entry checks
SIGNED_DOCUMENTS = (TOOLHIVE_DOCUMENT, UPSTREAM_DOCUMENT, ENTRIES_DOCUMENT)
KEY_ID_PATTERN = r"^sha256:[0-9a-f]{64}$"

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


class SigningError(ValueError):
    """A key that cannot be used: the message says what is wrong, never what the key holds."""


class SignatureMismatch(ValueError):
    """A signature that does not verify (wrong key, tampered bytes, malformed signature)."""


class GenerationSignatures(BaseModel):
    """What a signed generation carries: the key that signed it and one signature per document."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    key_id: str = Field(alias="keyId", pattern=KEY_ID_PATTERN)
    public_key: str = Field(alias="publicKey", min_length=1, max_length=4096)  # PEM
    documents: Mapping[str, str] = Field(default_factory=dict)  # name → base64 signature


def key_id(public_key: PublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def public_key_pem(public_key: PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


class Signer(Protocol):
    """Signs bytes with a key it holds (a PEM key now, a KMS key later)."""

    @property
    def key_id(self) -> str: ...

    @property
    def public_key_pem(self) -> str: ...

    def sign(self, data: bytes) -> bytes:
        """The raw signature of `data` (cosign's format before base64)."""
        ...


class PrivateKeySigner:
    """A `Signer` over an unencrypted PEM private key (PKCS#8, or SEC1 `EC PRIVATE KEY`): ECDSA P-256
    or Ed25519, the key types `cosign verify-blob --key` accepts."""

    def __init__(self, key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> None:
        self._key = key
        public = key.public_key()
        self._key_id = key_id(public)
        self._public_pem = public_key_pem(public)

    @classmethod
    def from_pem(cls, pem: bytes, *, where: str = "the signing key") -> PrivateKeySigner:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except TypeError:
            raise SigningError(f"{where} is encrypted; store it unencrypted (PKCS#8 PEM)") from None
        except (ValueError, UnsupportedAlgorithm):
            raise SigningError(f"{where} is not a PEM private key (PKCS#8 or EC PRIVATE KEY)") from None
        if isinstance(key, ec.EllipticCurvePrivateKey):
            if not isinstance(key.curve, ec.SECP256R1):
                raise SigningError(f"{where} is an ECDSA key on {key.curve.name}; only P-256 is supported")
            return cls(key)
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return cls(key)
        raise SigningError(f"{where} is neither an ECDSA P-256 nor an Ed25519 key")

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def public_key_pem(self) -> str:
        return self._public_pem

    def sign(self, data: bytes) -> bytes:
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return self._key.sign(data)
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    def __repr__(self) -> str:  # never the key itself
        return f"PrivateKeySigner({self._key_id})"


def sign_documents(signer: Signer, documents: Mapping[str, bytes]) -> GenerationSignatures:
    """Signatures of `documents` (name → exact bytes served) with `signer`."""
    return GenerationSignatures(
        key_id=signer.key_id,
        public_key=signer.public_key_pem,
        documents={
            name: base64.b64encode(signer.sign(data)).decode("ascii") for name, data in documents.items()
        },
    )


def load_public_key(pem: bytes | str) -> PublicKey:
    """An ECDSA P-256 or Ed25519 public key from PEM; SigningError otherwise."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise SigningError("not a PEM public key (-----BEGIN PUBLIC KEY-----)") from None
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise SigningError("the public key is neither ECDSA P-256 nor Ed25519")


def decode_signature(text: bytes | str) -> bytes:
    """A cosign signature file's content (base64, surrounding whitespace allowed) as raw bytes."""
    raw = text.encode("ascii", "replace") if isinstance(text, str) else text
    try:
        return base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureMismatch("the signature is not base64") from None


def verify_blob(public_key: PublicKey, signature: bytes | str, data: bytes) -> None:
    """Check a cosign-format signature (base64) of `data`; SignatureMismatch when it does not verify."""
    raw = decode_signature(signature)
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(raw, data)
        else:
            public_key.verify(raw, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise SignatureMismatch(
            "the signature does not match the document and key (tampered document, or another key)"
        ) from None
