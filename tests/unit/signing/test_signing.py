"""Signing and verifying served documents (mcpreg.signing), and the signatures' way through storage."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from mcpreg.catalog import parse_catalog
from mcpreg.catalog.served import read_served, render_served, served_documents, upstream_list
from mcpreg.signing import (
    SIGNED_DOCUMENTS,
    PrivateKeySigner,
    SignatureMismatch,
    SigningError,
    key_id,
    load_public_key,
    sign_documents,
    verify_blob,
)
from mcpreg.storage.configmap_layout import HeadAnnotations
from mcpreg.storage.manifest import BlobRef, Manifest
from mcpreg.storage.model import StoredCatalog, sha256_hash
from mcpreg.storage.s3_layout import PointerDocument

CATALOGUE = {
    "servers": [
        {
            "server": {
                "name": f"io.example/s{i}",
                "description": f"server {i}",
                "version": "1.0.0",
                "packages": [{"registryType": "npm", "identifier": f"s{i}", "version": "1.0.0",
                              "transport": {"type": "stdio"}}],
            }
        }
        for i in range(3)
    ]
}  # fmt: skip


def pem_of(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def served() -> bytes:
    return render_served(parse_catalog(json.dumps(CATALOGUE).encode(), format="auto"))


@pytest.fixture(params=["ecdsa-p256", "ed25519"])
def signer(request: pytest.FixtureRequest) -> PrivateKeySigner:
    key = (
        ec.generate_private_key(ec.SECP256R1())
        if request.param == "ecdsa-p256"
        else ed25519.Ed25519PrivateKey.generate()
    )
    return PrivateKeySigner.from_pem(pem_of(key))


def test_a_signature_verifies_and_a_tampered_document_or_another_key_does_not(
    signer: PrivateKeySigner,
) -> None:
    data = b'{"servers":[]}'
    signature = base64.b64encode(signer.sign(data)).decode() + "\n"  # cosign files may end in a newline
    public = load_public_key(signer.public_key_pem)
    verify_blob(public, signature, data)
    with pytest.raises(SignatureMismatch, match="does not match"):
        verify_blob(public, signature, data + b" ")
    other = load_public_key(
        PrivateKeySigner.from_pem(pem_of(ec.generate_private_key(ec.SECP256R1()))).public_key_pem
    )
    with pytest.raises(SignatureMismatch):
        verify_blob(other, signature, data)
    with pytest.raises(SignatureMismatch, match="not base64"):
        verify_blob(public, "not base64!", data)


def test_the_key_id_is_the_sha256_of_the_public_key_der(signer: PrivateKeySigner) -> None:
    public = load_public_key(signer.public_key_pem)
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert signer.key_id == key_id(public) == "sha256:" + hashlib.sha256(der).hexdigest()
    assert signer.key_id in repr(signer) and "PRIVATE" not in repr(signer)


def test_an_ecdsa_signature_is_der_over_sha256_as_cosign_writes_it() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signer = PrivateKeySigner.from_pem(pem_of(key))
    raw = signer.sign(b"blob")
    assert raw[0] == 0x30  # an ASN.1 SEQUENCE (r, s), not the raw 64-byte form
    from cryptography.hazmat.primitives import hashes

    key.public_key().verify(raw, b"blob", ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        (b"garbage", "not a PEM private key"),
        (pem_of(ec.generate_private_key(ec.SECP384R1())), "only P-256"),
        (pem_of(rsa.generate_private_key(public_exponent=65537, key_size=2048)), "neither"),
        (
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"pw"),
            ),
            "encrypted",
        ),
    ],
)
def test_an_unusable_key_is_refused_with_a_message_that_names_no_key_material(
    pem: bytes, message: str
) -> None:
    with pytest.raises(SigningError, match=message) as caught:
        PrivateKeySigner.from_pem(pem, where="Secret ns/key")
    assert "Secret ns/key" in str(caught.value) and "BEGIN" not in str(caught.value)


def test_the_signed_documents_are_the_bytes_the_api_serves(signer: PrivateKeySigner) -> None:
    data = served()
    documents = served_documents(data, sha256_hash(data))
    assert set(documents) == set(SIGNED_DOCUMENTS)
    document = read_served(data)
    assert documents["toolhive"] == document.toolhive
    assert documents["upstream"] == upstream_list([entry.body for entry in document.entries])
    listed = json.loads(documents["upstream"])
    assert [s["server"]["name"] for s in listed["servers"]] == [f"io.example/s{i}" for i in range(3)]
    assert listed["metadata"] == {"count": 3}
    signatures = sign_documents(signer, documents)
    public = load_public_key(signatures.public_key)
    for name, payload in documents.items():
        verify_blob(public, signatures.documents[name], payload)


def _manifest(stored: StoredCatalog) -> Manifest:
    return Manifest.of(
        stored, encoding="identity", blobs=(BlobRef(name="catalog.json", size=len(stored.data)),), inline=True
    )


def test_signatures_survive_both_storage_encodings_and_change_the_generation_id(
    signer: PrivateKeySigner,
) -> None:
    data = served()
    unsigned = StoredCatalog.create(
        data, revision="abc", server_count=3, stored_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    stored = replace(
        unsigned, signatures=sign_documents(signer, served_documents(data, unsigned.content_hash))
    )
    manifest = _manifest(stored)
    head = HeadAnnotations.model_validate(HeadAnnotations.of(manifest).to_annotations())
    assert head.manifest().signatures == stored.signatures
    assert head.manifest().catalog(data).signatures == stored.signatures
    s3_manifest = Manifest.of(
        stored, encoding="identity", blobs=(BlobRef(name="k/catalog.json", size=len(data)),)
    )
    pointer = PointerDocument.model_validate_json(
        PointerDocument.of(s3_manifest).model_dump_json(by_alias=True)
    )
    assert pointer.manifest().signatures == stored.signatures
    # The same data signed with another key is another generation for readers; unsigned stays the hash.
    assert unsigned.generation_id == unsigned.content_hash
    assert stored.generation_id == f"{stored.content_hash}@{signer.key_id}"
    assert _manifest(unsigned).signatures is None
    assert (
        HeadAnnotations.of(_manifest(unsigned))
        .to_annotations()
        .keys()
        .isdisjoint({"mcpregistry.dev/signatures"})
    )
