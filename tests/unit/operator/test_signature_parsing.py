"""The pure parts of signature verification: splitting commits and tags into what was signed and the
signature, reading trusted keys out of a Secret, and what each mode checks."""

from __future__ import annotations

import base64

import pytest

from mcpreg_operator.sources.errors import SourceError, SourceErrorKind
from mcpreg_operator.sources.git_signatures import (
    SignatureKind,
    SignaturePolicy,
    TrustedKeys,
    dearmor_openpgp,
    split_commit,
    split_tag,
    verify,
)
from mcpreg_operator.spec.source import GitSource, VerifyMode

SSH_SIGNATURE = b"-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n"
PGP_SIGNATURE = b"-----BEGIN PGP SIGNATURE-----\n\niHUEABYIAB0W\n=abcd\n-----END PGP SIGNATURE-----\n"


def signed_commit(signature: bytes) -> bytes:
    lines = signature.rstrip(b"\n").split(b"\n")
    header = b"gpgsig " + lines[0] + b"".join(b"\n " + line for line in lines[1:])
    return (
        b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"
        b"author A <a@example.com> 1 +0000\n"
        b"committer A <a@example.com> 1 +0000\n" + header + b"\n\nUpdate catalogue\n"
    )


UNSIGNED_COMMIT = (
    b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"
    b"author A <a@example.com> 1 +0000\n"
    b"committer A <a@example.com> 1 +0000\n\nUpdate catalogue\n"
)


@pytest.mark.parametrize(
    ("signature", "kind"), [(SSH_SIGNATURE, SignatureKind.SSH), (PGP_SIGNATURE, SignatureKind.OPENPGP)]
)
def test_a_commit_splits_into_the_unsigned_object_and_its_signature(
    signature: bytes, kind: SignatureKind
) -> None:
    signed = split_commit(signed_commit(signature))
    # What was signed is the commit exactly as it was before git added the gpgsig header.
    assert signed.payload == UNSIGNED_COMMIT
    assert signed.signature == signature
    assert signed.kind is kind


def test_an_unsigned_commit_has_no_signature() -> None:
    signed = split_commit(UNSIGNED_COMMIT)
    assert (signed.payload, signed.signature, signed.kind) == (UNSIGNED_COMMIT, None, None)


def test_a_message_line_that_looks_like_a_header_is_not_a_signature() -> None:
    raw = UNSIGNED_COMMIT + b"gpgsig is mentioned here\n"
    assert split_commit(raw).signature is None


def test_a_tag_signature_follows_its_message() -> None:
    body = b"object 0123\ntype commit\ntag v1\ntagger A <a@example.com> 1 +0000\n\nrelease v1\n"
    signed = split_tag(body + SSH_SIGNATURE)
    assert signed.payload == body
    assert signed.signature == SSH_SIGNATURE
    assert split_tag(body).signature is None
    # The marker must start a line of the message to count.
    assert split_tag(body.rstrip(b"\n") + b" see " + SSH_SIGNATURE).signature is None


def test_an_unsigned_object_is_refused_without_running_any_tool() -> None:
    with pytest.raises(SourceError) as raised:
        verify(
            split_commit(UNSIGNED_COMMIT), TrustedKeys(allowed_signers="x"), "commit 0123abcd of git://h/r"
        )
    assert raised.value.kind is SourceErrorKind.UNVERIFIED
    assert "commit 0123abcd of git://h/r is not signed" in raised.value.message


def test_an_x509_signature_is_refused_as_unsupported() -> None:
    raw = signed_commit(b"-----BEGIN SIGNED MESSAGE-----\nMIIB\n-----END SIGNED MESSAGE-----\n")
    with pytest.raises(SourceError, match=r"X\.509"):
        verify(split_commit(raw), TrustedKeys(allowed_signers="x"), "commit 0123")


def test_armored_keys_become_binary_packets() -> None:
    packets = b"\x99\x00\x33" + bytes(range(40))
    body = base64.b64encode(packets).decode()
    armored = (
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: a comment\n\n"
        f"{body[:20]}\n{body[20:]}\n=AbCd\n-----END PGP PUBLIC KEY BLOCK-----\n"
    )
    assert dearmor_openpgp(armored) == packets
    assert dearmor_openpgp(armored + armored.replace("Comment: a comment\n", "")) == packets * 2
    with pytest.raises(ValueError, match="no '-----BEGIN PGP PUBLIC KEY BLOCK-----'"):
        dearmor_openpgp("ssh-ed25519 AAAA")


def test_trusted_keys_come_from_the_keys_of_the_secret() -> None:
    packets = b"\x99\x00\x01\x02"
    body = base64.b64encode(packets).decode()
    armored = f"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n{body}\n-----END PGP PUBLIC KEY BLOCK-----\n"
    keys = TrustedKeys.from_secret_data(
        {
            "a.asc": armored.encode(),
            "b.gpg": b"\x99raw",
            "allowed_signers": b"dev ssh-ed25519 AAAA\n",
            "README": b"x",
        },
        "Secret ns/keys",
    )
    assert keys.openpgp_keyring == packets + b"\x99raw"
    assert keys.allowed_signers == "dev ssh-ed25519 AAAA\n"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Secret ns/keys holds no trusted keys"),
        ({"README": b"hello"}, "Secret ns/keys holds no trusted keys"),
        ({"key.asc": b"not a key"}, "Secret ns/keys key 'key.asc' is not an OpenPGP public key"),
        ({"allowed_signers": b"\xff\xfe"}, "key 'allowed_signers' is not UTF-8 text"),
    ],
)
def test_a_secret_without_usable_keys_is_refused_clearly(data: dict[str, bytes], message: str) -> None:
    with pytest.raises(SourceError) as raised:
        TrustedKeys.from_secret_data(data, "Secret ns/keys")
    assert raised.value.kind is SourceErrorKind.UNVERIFIED
    assert message in raised.value.message


@pytest.mark.parametrize(
    ("mode", "commit", "tag"),
    [(VerifyMode.HEAD, True, False), (VerifyMode.TAG, False, True), (VerifyMode.TAG_AND_HEAD, True, True)],
)
def test_what_each_mode_checks(mode: VerifyMode, commit: bool, tag: bool) -> None:
    policy = SignaturePolicy(mode, TrustedKeys(allowed_signers="x"))
    assert (policy.checks_commit, policy.checks_tag) == (commit, tag)


def test_the_spec_reads_verify_with_head_as_the_default_mode() -> None:
    git = GitSource.model_validate(
        {"repository": "https://h/r.git", "verify": {"secretRef": {"name": "keys"}}}
    )
    assert git.verify is not None
    assert (git.verify.mode, git.verify.secret_ref.name) == (VerifyMode.HEAD, "keys")
