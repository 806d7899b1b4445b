"""Detached signatures of a ConfigMap catalogue: trusted keys out of a Secret, and a signature checked
against each of them (the verification is `mcpreg.signing.verify_blob`, shared with `mcpreg verify`)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from mcpreg.signing import PrivateKeySigner, key_id, load_public_key
from mcpreg_operator.sources.blob_signatures import check_detached_signature, trusted_public_keys
from mcpreg_operator.sources.errors import SourceError, SourceErrorKind
from mcpreg_operator.spec.source import ConfigMapSource

CATALOGUE = b'{"version": "1.0.0", "servers": {}}'


def signer(kind: str) -> PrivateKeySigner:
    return PrivateKeySigner(
        ec.generate_private_key(ec.SECP256R1()) if kind == "ecdsa" else ed25519.Ed25519PrivateKey.generate()
    )


def signature(by: PrivateKeySigner, data: bytes = CATALOGUE) -> bytes:
    return base64.b64encode(by.sign(data))


@pytest.mark.parametrize("kind", ["ecdsa", "ed25519"])
def test_a_signature_by_any_trusted_key_is_accepted(kind: str) -> None:
    old, new = signer("ecdsa"), signer(kind)
    keys = trusted_public_keys(
        {"old.pub": old.public_key_pem.encode(), "new.pub": new.public_key_pem.encode(), "notes": b"x"},
        "Secret ns/k",
    )
    assert len(keys) == 2
    assert check_detached_signature(CATALOGUE, signature(new), keys, what="w", origin="o") == new.key_id


def test_a_changed_catalogue_or_another_key_is_refused_naming_the_keys_tried() -> None:
    trusted, stranger = signer("ecdsa"), signer("ecdsa")
    keys = [load_public_key(trusted.public_key_pem)]
    for data, sig in ((CATALOGUE + b" ", signature(trusted)), (CATALOGUE, signature(stranger))):
        with pytest.raises(SourceError) as raised:
            check_detached_signature(
                data, sig, keys, what="ConfigMap ns/c key registry.json", origin="Secret ns/k"
            )
        assert raised.value.kind is SourceErrorKind.UNVERIFIED
        assert "ConfigMap ns/c key registry.json: the signature does not verify" in raised.value.message
        assert key_id(keys[0])[:19] in raised.value.message


def test_a_signature_that_is_not_base64_is_refused() -> None:
    keys = [load_public_key(signer("ecdsa").public_key_pem)]
    with pytest.raises(SourceError, match="does not verify"):
        check_detached_signature(CATALOGUE, b"not base64 !", keys, what="w", origin="o")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Secret ns/k holds no public key"),
        ({"cosign.key": b"private"}, "Secret ns/k holds no public key"),
        ({"cosign.pub": b"garbage"}, "Secret ns/k key 'cosign.pub': not a PEM public key"),
    ],
)
def test_a_secret_without_a_usable_public_key_is_refused(data: dict[str, bytes], message: str) -> None:
    with pytest.raises(SourceError) as raised:
        trusted_public_keys(data, "Secret ns/k")
    assert raised.value.kind is SourceErrorKind.UNVERIFIED
    assert message in raised.value.message


def test_the_signature_key_defaults_to_the_catalogue_key_with_sig() -> None:
    source = ConfigMapSource.model_validate(
        {"name": "c", "key": "prod.json", "verify": {"secretRef": {"name": "k"}}}
    )
    assert source.signature_key_name == "prod.json.sig"
    source = ConfigMapSource.model_validate(
        {"name": "c", "verify": {"secretRef": {"name": "k"}, "signatureKey": "registry.sig"}}
    )
    assert source.signature_key_name == "registry.sig"
