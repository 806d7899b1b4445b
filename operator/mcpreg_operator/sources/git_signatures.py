"""Signature verification of a fetched revision: is this commit (or annotated tag) signed by a key the
registry trusts?

Git stores a commit's signature in its `gpgsig` header and a tag's after its message; what was signed
is the object without it. This module splits the two (pure functions), then hands the pair to the
tools git itself would use, with nothing but the registry's trusted keys in reach: `gpgv` (which trusts
exactly the keyring it is given, with no trust database) for OpenPGP, `ssh-keygen -Y` with the
allowed-signers list for SSH. git's own `verify-commit` is not used because it needs a full `gpg`
and a keyring home; the checks are the same.

Every outcome other than a good signature by a trusted key is a `SourceError` of kind UNVERIFIED whose
message names the object and the signer found (key id or fingerprint), never any key material.
"""

from __future__ import annotations

import base64
import binascii
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import NoReturn

from mcpreg_operator.sources.errors import SourceError, SourceErrorKind
from mcpreg_operator.spec.source import VerifyMode

ALLOWED_SIGNERS_KEY = "allowed_signers"
OPENPGP_ARMORED_SUFFIX = ".asc"
OPENPGP_BINARY_SUFFIX = ".gpg"
# ssh-keygen's namespace for git signatures (git signs with `-n git`).
SSH_NAMESPACE = "git"
VERIFY_TIMEOUT_S = 30.0

_PGP_BEGIN = b"-----BEGIN PGP SIGNATURE-----"
_SSH_BEGIN = b"-----BEGIN SSH SIGNATURE-----"
_X509_BEGIN = b"-----BEGIN SIGNED MESSAGE-----"
_ARMOR_BLOCK = re.compile(
    r"-----BEGIN PGP PUBLIC KEY BLOCK-----\r?\n(?P<body>.*?)-----END PGP PUBLIC KEY BLOCK-----", re.DOTALL
)


class SignatureKind(StrEnum):
    OPENPGP = "OpenPGP"
    SSH = "SSH"
    X509 = "X.509"


@dataclass(frozen=True)
class SignedObject:
    """A commit or tag split into what was signed and the signature (None: not signed)."""

    payload: bytes
    signature: bytes | None

    @property
    def kind(self) -> SignatureKind | None:
        if self.signature is None:
            return None
        if self.signature.startswith(_SSH_BEGIN):
            return SignatureKind.SSH
        if self.signature.startswith(_PGP_BEGIN):
            return SignatureKind.OPENPGP
        return SignatureKind.X509


def split_commit(raw: bytes) -> SignedObject:
    """A raw commit object (`git cat-file commit`): its `gpgsig` header (with its continuation lines,
    one leading space each) is the signature, the rest of the object is what was signed."""
    header, separator, message = raw.partition(b"\n\n")
    kept: list[bytes] = []
    signature: list[bytes] = []
    in_signature = False
    for line in header.split(b"\n"):
        if line.startswith(b"gpgsig "):
            in_signature = True
            signature.append(line[len(b"gpgsig ") :])
        elif in_signature and line.startswith(b" "):
            signature.append(line[1:])
        else:
            in_signature = False
            kept.append(line)
    payload = b"\n".join(kept) + separator + message
    return SignedObject(payload, b"\n".join(signature) + b"\n" if signature else None)


def split_tag(raw: bytes) -> SignedObject:
    """A raw tag object (`git cat-file tag`): a signature is appended to its message, from a line that
    begins it to the end; what was signed is everything before that line."""
    header, _, message = raw.partition(b"\n\n")
    offset = len(header) + 2
    for begin in (_PGP_BEGIN, _SSH_BEGIN, _X509_BEGIN):
        at = message.find(begin)
        if at >= 0 and (at == 0 or message[at - 1 : at] == b"\n"):
            return SignedObject(raw[: offset + at], raw[offset + at :])
    return SignedObject(raw, None)


def dearmor_openpgp(text: str) -> bytes:
    """The binary packets of every ASCII-armored public key block in `text` (the checksum line and
    armor headers dropped); ValueError when there is none or one is not base64."""
    packets = bytearray()
    for block in _ARMOR_BLOCK.finditer(text):
        lines = block.group("body").splitlines()
        # Armor headers ("Comment: …") end at the first blank line; a block may have none.
        if "" in lines and any(":" in line for line in lines[: lines.index("")]):
            lines = lines[lines.index("") + 1 :]
        body = "".join(line.strip() for line in lines if line.strip() and not line.startswith("="))
        try:
            packets += base64.b64decode(body, validate=True)
        except binascii.Error:
            raise ValueError("an armored key block is not valid base64") from None
    if not packets:
        raise ValueError("holds no '-----BEGIN PGP PUBLIC KEY BLOCK-----' block")
    return bytes(packets)


@dataclass(frozen=True)
class TrustedKeys:
    """The keys one registry trusts, from its verification Secret."""

    openpgp_keyring: bytes = b""  # binary public keys, concatenated: what gpgv reads as a keyring
    allowed_signers: str = ""  # ssh-keygen's allowed-signers file
    origin: str = "the verification Secret"

    @classmethod
    def from_secret_data(cls, data: Mapping[str, bytes], origin: str) -> TrustedKeys:
        """Keys from a Secret's decoded values: `allowed_signers`, `*.asc`, `*.gpg`."""
        keyring = bytearray()
        for name in sorted(data):
            value = data[name]
            if name.endswith(OPENPGP_BINARY_SUFFIX):
                keyring += value
            elif name.endswith(OPENPGP_ARMORED_SUFFIX):
                try:
                    keyring += dearmor_openpgp(value.decode("utf-8"))
                except (UnicodeDecodeError, ValueError) as exc:
                    raise SourceError(
                        SourceErrorKind.UNVERIFIED,
                        f"{origin} key {name!r} is not an OpenPGP public key: {exc}",
                    ) from None
        signers = data.get(ALLOWED_SIGNERS_KEY, b"")
        try:
            allowed = signers.decode("utf-8")
        except UnicodeDecodeError:
            raise SourceError(
                SourceErrorKind.UNVERIFIED, f"{origin} key {ALLOWED_SIGNERS_KEY!r} is not UTF-8 text"
            ) from None
        if not keyring and not allowed.strip():
            raise SourceError(
                SourceErrorKind.UNVERIFIED,
                f"{origin} holds no trusted keys: put SSH signers under {ALLOWED_SIGNERS_KEY!r} or OpenPGP "
                f"public keys under keys ending in {OPENPGP_ARMORED_SUFFIX!r} or {OPENPGP_BINARY_SUFFIX!r}",
            )
        return cls(bytes(keyring), allowed, origin)


@dataclass(frozen=True)
class SignaturePolicy:
    """What must be signed (`mode`) and by whom (`keys`)."""

    mode: VerifyMode
    keys: TrustedKeys

    @property
    def checks_commit(self) -> bool:
        return self.mode in (VerifyMode.HEAD, VerifyMode.TAG_AND_HEAD)

    @property
    def checks_tag(self) -> bool:
        return self.mode in (VerifyMode.TAG, VerifyMode.TAG_AND_HEAD)


def verify(signed: SignedObject, keys: TrustedKeys, what: str) -> str:
    """Who signed `signed` (a key fingerprint, with the SSH principal when there is one), when the
    signature is good and by a trusted key; SourceError(UNVERIFIED) otherwise. `what` names the object
    in messages: "commit 0123abcd… of URL"."""
    kind = signed.kind
    if signed.signature is None or kind is None:
        raise SourceError(
            SourceErrorKind.UNVERIFIED, f"{what} is not signed; {keys.origin} requires a signature"
        )
    if kind is SignatureKind.X509:
        raise SourceError(
            SourceErrorKind.UNVERIFIED,
            f"{what} carries an X.509 (gpgsm) signature; only SSH and OpenPGP signatures are verified",
        )
    with tempfile.TemporaryDirectory(prefix="mcpreg-verify-") as scratch:
        work = Path(scratch)
        (work / "payload").write_bytes(signed.payload)
        (work / "signature").write_bytes(signed.signature)
        if kind is SignatureKind.OPENPGP:
            return _verify_openpgp(work, keys, what)
        return _verify_ssh(work, keys, what)


def _run(args: list[str], work: Path, *, stdin: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "GNUPGHOME": str(work), "LC_ALL": "C"}
    try:
        with stdin.open("rb") if stdin else open("/dev/null", "rb") as handle:
            return subprocess.run(
                args,
                cwd=work,
                env=env,
                stdin=handle,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=VERIFY_TIMEOUT_S,
                check=False,
            )
    except FileNotFoundError:
        raise SourceError(
            SourceErrorKind.UNVERIFIED,
            f"the operator cannot verify signatures: {args[0]} is not installed in its image",
        ) from None
    except subprocess.TimeoutExpired:
        raise SourceError(
            SourceErrorKind.UNVERIFIED,
            f"{args[0]} took more than {VERIFY_TIMEOUT_S:.0f}s to check a signature",
        ) from None


def _status(output: str, keyword: str) -> list[str] | None:
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "[GNUPG:]" and parts[1] == keyword:
            return parts[2:]
    return None


def _verify_openpgp(work: Path, keys: TrustedKeys, what: str) -> str:
    keyring = work / "trusted.gpg"
    keyring.write_bytes(keys.openpgp_keyring)
    done = _run(["gpgv", "--status-fd", "1", "--keyring", str(keyring), "signature", "payload"], work)
    valid = _status(done.stdout, "VALIDSIG")
    if done.returncode == 0 and _status(done.stdout, "GOODSIG") is not None and valid:
        # VALIDSIG: the signing (sub)key's fingerprint first, the primary key's last.
        return f"OpenPGP key {valid[-1]}"
    errsig = _status(done.stdout, "ERRSIG")
    if _status(done.stdout, "NO_PUBKEY") is not None or errsig is not None:
        signer = errsig[-1] if errsig and len(errsig[-1]) >= 32 else (errsig or ["an unknown key"])[0]
        _refuse(what, f"is signed by OpenPGP key {signer}, which {keys.origin} does not hold")
    for keyword, why in (
        ("BADSIG", "has a bad OpenPGP signature (the object does not match it)"),
        ("EXPKEYSIG", "is signed by an expired OpenPGP key"),
        ("REVKEYSIG", "is signed by a revoked OpenPGP key"),
        ("EXPSIG", "has an expired OpenPGP signature"),
    ):
        found = _status(done.stdout, keyword)
        if found is not None:
            _refuse(what, f"{why} ({found[0] if found else 'unknown key'})")
    detail = _last_line(done.stderr) or f"gpgv exited with status {done.returncode}"
    _refuse(what, f"has an OpenPGP signature that could not be verified ({detail})")


def _verify_ssh(work: Path, keys: TrustedKeys, what: str) -> str:
    # Which key signed, whoever it is: for the message when it is not trusted.
    found = _run(
        ["ssh-keygen", "-Y", "check-novalidate", "-n", SSH_NAMESPACE, "-s", "signature"],
        work,
        stdin=work / "payload",
    )
    fingerprint = _ssh_fingerprint(found.stdout + found.stderr)
    if found.returncode != 0:
        _refuse(what, f"has a bad SSH signature ({_last_line(found.stderr) or 'ssh-keygen refused it'})")
    if not keys.allowed_signers.strip():
        _refuse(what, f"is signed by SSH key {fingerprint}, and {keys.origin} holds no SSH signers")
    allowed = work / "allowed_signers"
    allowed.write_text(keys.allowed_signers, encoding="utf-8")
    principals = _run(["ssh-keygen", "-Y", "find-principals", "-s", "signature", "-f", str(allowed)], work)
    names = [line.strip() for line in principals.stdout.splitlines() if line.strip()]
    if principals.returncode != 0 or not names:
        _refuse(what, f"is signed by SSH key {fingerprint}, which {keys.origin} does not list")
    checked = _run(
        [
            "ssh-keygen",
            "-Y",
            "verify",
            "-f",
            str(allowed),
            "-I",
            names[0],
            "-n",
            SSH_NAMESPACE,
            "-s",
            "signature",
        ],
        work,
        stdin=work / "payload",
    )
    if checked.returncode != 0:
        detail = _last_line(checked.stderr) or _last_line(checked.stdout) or "ssh-keygen refused it"
        _refuse(what, f"has an SSH signature by {names[0]} ({fingerprint}) that does not verify ({detail})")
    return f"SSH key {fingerprint} ({names[0]})"


def _ssh_fingerprint(text: str) -> str:
    match = re.search(r"\b(SHA256:[A-Za-z0-9+/=]+)", text)
    return match.group(1) if match else "of unknown fingerprint"


def _last_line(text: str) -> str:
    return next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")


def _refuse(what: str, why: str) -> NoReturn:
    raise SourceError(SourceErrorKind.UNVERIFIED, f"{what} {why}")
