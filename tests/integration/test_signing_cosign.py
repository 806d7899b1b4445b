"""Signed catalogues end to end, proven with the real `cosign` (issue 18): the operator signs with a key
from a Secret, the API process (the Deployment's arguments and configuration document, the pod's own
ServiceAccount token) serves each document and its signature, and `cosign verify-blob --key` accepts
them; a tampered document, another key, a missing signature and a rotated key are each refused or
followed. And the other way round: what `cosign sign-blob --key` signs, our verification accepts.

cosign is run offline: no transparency log (`--insecure-ignore-tlog`, `--tlog-upload=false`), and a
proxy on a closed loopback port, so its attempt to fetch Sigstore's trust root goes nowhere else.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from fixtures.api_process import get
from fixtures.kube import Kube, wait_until
from fixtures.operator import Registries
from fixtures.signing import SNAPSHOT, create_signed, pem_private, put_key
from mcpreg.signing import PrivateKeySigner, load_public_key, verify_blob
from mcpreg_dev.binaries import ensure_cosign
from mcpreg_dev.controlplane import free_port
from mcpreg_dev.gitserver import BareRepo, GitDaemonServer

pytestmark = pytest.mark.integration

DOCUMENTS = {
    "toolhive": "/api/v1/registry",
    "upstream": "/v0.1/x/dev.mcpregistry/servers.json",
    "entries": "/v0.1/x/dev.mcpregistry/entries.json",  # per-entry provenance: the digests, signed alike
}
KEY_PATH = "/v0.1/x/dev.mcpregistry/signing-key"


@pytest.fixture(scope="module")
def cosign() -> Path:
    return ensure_cosign()


def cosign_env(home: Path) -> dict[str, str]:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there: no request leaves the machine
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return env | {"HOME": str(home), "HTTPS_PROXY": closed, "HTTP_PROXY": closed, "NO_PROXY": ""}


def verify_blob_with_cosign(cosign: Path, home: Path, key: Path, signature: Path, blob: Path) -> bool:
    result = subprocess.run(
        [str(cosign), "verify-blob", "--key", str(key), "--signature", str(signature),
         "--insecure-ignore-tlog=true", str(blob)],
        env=cosign_env(home), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if result.returncode == 0:
        assert "Verified OK" in result.stderr + result.stdout
    return result.returncode == 0


def served_key_id(base: str) -> str | None:
    status, _, headers = get(base + KEY_PATH)
    return headers.get("X-Mcpreg-Signing-Key-Id") if status == 200 else None


def download(base: str, where: Path) -> dict[str, tuple[Path, Path]]:
    """Each signed document and its signature, as files (the document's exact bytes: no gzip asked)."""
    files = {}
    for name, path in DOCUMENTS.items():
        status, body, headers = get(base + path)
        assert status == 200
        sig_status, signature, sig_headers = get(base + path + ".sig")
        assert sig_status == 200
        assert headers["X-Mcpreg-Generation"] == sig_headers["X-Mcpreg-Generation"]
        assert headers["X-Mcpreg-Signature"] == signature.decode()
        (where / name).write_bytes(body)
        (where / f"{name}.sig").write_bytes(signature)
        files[name] = (where / name, where / f"{name}.sig")
    return files


def mcpreg_verify(base: str, key: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcpreg_cli.main", "verify", base, "--key", str(key)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_cosign_verifies_what_the_api_serves_and_refuses_tampering_other_keys_and_no_signature(
    registries: Registries,
    kube: Kube,
    namespace: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    api_process: Any,
    cosign: Path,
    tmp_path: Path,
) -> None:
    first = ec.generate_private_key(ec.SECP256R1())
    first_signer = PrivateKeySigner.from_pem(pem_private(first))
    put_key(kube, namespace, pem_private(first))
    bare_repo.commit({"registry.json": SNAPSHOT.read_bytes()})
    create_signed(registries, "signed", git_daemon.url(bare_repo), first_signer.key_id)
    base = api_process("signed")
    home = tmp_path / "home"
    home.mkdir()

    # The public key the API publishes is the Secret's, named by its key id.
    status, published, headers = get(base + KEY_PATH)
    assert status == 200 and headers["X-Mcpreg-Signing-Key-Id"] == first_signer.key_id
    pub = tmp_path / "first.pub"
    pub.write_bytes(published)
    assert published.decode() == first_signer.public_key_pem

    files = download(base, tmp_path)
    for document, signature in files.values():
        assert verify_blob_with_cosign(cosign, home, pub, signature, document)
    # Tampered: one byte more in the document.
    tampered = tmp_path / "tampered"
    tampered.write_bytes(files["toolhive"][0].read_bytes().replace(b"}", b" }", 1))
    assert not verify_blob_with_cosign(cosign, home, pub, files["toolhive"][1], tampered)
    # Another key.
    other = tmp_path / "other.pub"
    other.write_text(
        PrivateKeySigner.from_pem(pem_private(ec.generate_private_key(ec.SECP256R1()))).public_key_pem
    )
    assert not verify_blob_with_cosign(cosign, home, other, files["upstream"][1], files["upstream"][0])
    # The signature of the other document.
    assert not verify_blob_with_cosign(cosign, home, pub, files["upstream"][1], files["toolhive"][0])
    assert mcpreg_verify(base, pub).returncode == 0
    wrong = mcpreg_verify(base, other)
    assert wrong.returncode == 1 and "does not match" in wrong.stderr

    # Rotation: new Secret contents (Ed25519 this time) sign the next pass; the key URL follows.
    second = ed25519.Ed25519PrivateKey.generate()
    second_signer = PrivateKeySigner.from_pem(pem_private(second))
    put_key(kube, namespace, pem_private(second))
    registries.trigger("signed")
    registries.wait(
        "signed",
        lambda s: (s.get("syncStatus") or {}).get("signingKeyId") == second_signer.key_id,
        timeout=60,
        what="signed with the rotated key",
    )
    wait_until(
        lambda: served_key_id(base) == second_signer.key_id, timeout=30, what="the API serving the new key"
    )
    pub2 = tmp_path / "second.pub"
    pub2.write_bytes(get(base + KEY_PATH)[1])
    rotated = tmp_path / "rotated"
    rotated.mkdir()
    files = download(base, rotated)
    for document, signature in files.values():
        assert verify_blob_with_cosign(cosign, home, pub2, signature, document)
        assert not verify_blob_with_cosign(cosign, home, pub, signature, document)
    assert mcpreg_verify(base, pub2).returncode == 0
    assert mcpreg_verify(base, pub).returncode == 1

    # No signature: signing removed from the spec, the next generation is unsigned.
    registries.patch("signed", {"spec": {"signing": None}})
    registries.wait(
        "signed", lambda s: "signingKeyId" not in (s.get("syncStatus") or {}), timeout=60, what="unsigned"
    )
    wait_until(lambda: get(base + KEY_PATH)[0] == 404, timeout=30, what="the API serving no key")
    assert get(base + DOCUMENTS["toolhive"] + ".sig")[0] == 404
    missing = mcpreg_verify(base, pub2)
    assert missing.returncode == 1 and "serves no signature" in missing.stderr


def test_a_missing_signing_secret_fails_the_sync_and_keeps_the_last_catalogue(
    registries: Registries, kube: Kube, namespace: str, bare_repo: BareRepo, git_daemon: GitDaemonServer
) -> None:
    bare_repo.commit({"registry.json": SNAPSHOT.read_bytes()})
    spec: dict[str, Any] = {
        "source": {"type": "git", "git": {"repository": git_daemon.url(bare_repo), "path": "registry.json"}}
    }
    registries.create("keyless", spec)
    synced = registries.wait("keyless", lambda s: (s.get("syncStatus") or {}).get("lastSyncHash"), timeout=60)
    registries.patch("keyless", {"spec": {"signing": {"secretRef": {"name": "no-such-secret"}}}})
    obj = registries.wait(
        "keyless",
        lambda s: any(
            c["type"] == "Synced" and c["reason"] == "SigningKeyMissing" for c in s.get("conditions", [])
        ),
        timeout=60,
        what="Synced False for the missing key",
    )
    [condition] = [c for c in obj["status"]["conditions"] if c["type"] == "Synced"]
    assert condition["status"] == "False" and f"Secret {namespace}/no-such-secret" in condition["message"]
    assert obj["status"]["syncStatus"]["lastSyncHash"] == synced["status"]["syncStatus"]["lastSyncHash"]


def test_what_cosign_sign_blob_signs_our_verification_accepts(cosign: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = cosign_env(home) | {"COSIGN_PASSWORD": "test-password"}
    subprocess.run(
        [str(cosign), "generate-key-pair"], cwd=tmp_path, env=env, check=True, capture_output=True, timeout=60
    )
    blob = tmp_path / "registry.json"
    blob.write_bytes(SNAPSHOT.read_bytes())
    signature = tmp_path / "registry.json.sig"
    subprocess.run(
        [str(cosign), "sign-blob", "--key", "cosign.key", "--tlog-upload=false", "--yes",
         "--output-signature", str(signature), str(blob)],
        cwd=tmp_path, env=env, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    public = load_public_key((tmp_path / "cosign.pub").read_bytes())
    verify_blob(public, signature.read_text(), blob.read_bytes())
    with pytest.raises(ValueError, match="does not match"):
        verify_blob(public, signature.read_text(), blob.read_bytes() + b"\n")
