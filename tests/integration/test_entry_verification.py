"""Per-entry verification end to end (issue 18): the operator syncs a real catalogue from git and signs
it with a key from a Secret; the API process serves each entry with its provenance block and the signed
entries manifest; `mcpreg verify --entry` accepts an entry as served, and refuses it when a registry in
between (a real HTTP proxy in front of the real API) changes the entry, forges the manifest, or strips
the provenance, and when the key is another one."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from fixtures.api_process import get
from fixtures.kube import Kube, wait_until
from fixtures.operator import Registries
from fixtures.signing import SNAPSHOT, create_signed, pem_private, put_key
from mcpreg.catalog.provenance import PROVENANCE_META_KEY, EntriesManifest, canonical_entry, entry_digest
from mcpreg.signing import PrivateKeySigner, load_public_key, verify_blob
from mcpreg_dev.gitserver import BareRepo, GitDaemonServer

pytestmark = pytest.mark.integration

ENTRIES = "/v0.1/x/dev.mcpregistry/entries.json"
UPSTREAM = "/v0.1/x/dev.mcpregistry/servers.json"
Tamper = Callable[[str, bytes], bytes]


@pytest.fixture
def proxies() -> Iterator[Callable[[str, Tamper], str]]:
    """`proxy(base, tamper)`: an HTTP server relaying GETs to `base`, each body through `tamper`."""
    servers: list[ThreadingHTTPServer] = []

    def start(base: str, tamper: Tamper) -> str:
        class Relay(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body, headers = get(base + self.path)
                body = tamper(urllib.parse.urlsplit(self.path).path, body)
                self.send_response(status)
                self.send_header("Content-Type", headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def verify_entry(base: str, key: Path, entry: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcpreg_cli.main", "verify", base, "--key", str(key), "--entry", entry],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def on_entries(change: Callable[[dict[str, Any]], None]) -> Tamper:
    def tamper(path: str, body: bytes) -> bytes:
        if not path.startswith("/v0.1/servers/"):
            return body
        entry = json.loads(body)
        change(entry)
        return json.dumps(entry).encode()

    return tamper


def new_remote(entry: dict[str, Any]) -> None:
    entry["server"]["remotes"] = [{"type": "streamable-http", "url": "https://attacker.example/mcp"}]
    entry["server"].pop("packages", None)


def new_remote_and_digest(entry: dict[str, Any]) -> None:
    new_remote(entry)
    entry["_meta"][PROVENANCE_META_KEY]["digest"] = entry_digest(canonical_entry(entry))


def no_provenance(entry: dict[str, Any]) -> None:
    del entry["_meta"][PROVENANCE_META_KEY]


def forged_manifest(path: str, body: bytes) -> bytes:
    if path != ENTRIES:
        return body
    manifest = json.loads(body)
    for row in manifest["entries"]:
        row["digest"] = "sha256:" + "0" * 64
    return json.dumps(manifest, separators=(",", ":")).encode()


def test_a_synced_registrys_entry_verifies_and_a_tampered_one_is_refused(
    registries: Registries,
    kube: Kube,
    namespace: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    api_process: Any,
    proxies: Callable[[str, Tamper], str],
    tmp_path: Path,
) -> None:
    pem = pem_private(ec.generate_private_key(ec.SECP256R1()))
    signer = PrivateKeySigner.from_pem(pem)
    put_key(kube, namespace, pem)
    bare_repo.commit({"registry.json": SNAPSHOT.read_bytes()})
    create_signed(registries, "entries", git_daemon.url(bare_repo), signer.key_id)
    base = api_process("entries")
    key = tmp_path / "signing.pub"
    key.write_text(signer.public_key_pem)  # the hosts' copy: not the one the registry publishes
    other = tmp_path / "other.pub"
    other.write_text(
        PrivateKeySigner.from_pem(pem_private(ec.generate_private_key(ec.SECP256R1()))).public_key_pem
    )

    # The manifest is signed with the Secret's key and names every entry of the real catalogue, each by
    # the digest of its canonical form (the whole list, decoded and re-encoded as a host does).
    status, manifest_body, headers = get(base + ENTRIES)
    assert status == 200
    verify_blob(load_public_key(key.read_bytes()), get(base + ENTRIES + ".sig")[1].decode(), manifest_body)
    manifest = EntriesManifest.model_validate_json(manifest_body)
    assert manifest.generation == headers["X-Mcpreg-Generation"]
    servers = json.loads(get(base + UPSTREAM)[1])["servers"]
    assert len(manifest.entries) == len(servers) > 50
    for entry in servers:
        digest = manifest.digest_of(entry["server"]["name"], entry["server"]["version"])
        assert digest == entry_digest(canonical_entry(entry))

    # The entry as the v0.1 API serves it names its digest, the generation and the manifest.
    first = json.loads(get(base + "/v0.1/servers?limit=1")[1])["servers"][0]
    name, version = first["server"]["name"], first["server"]["version"]
    block = first["_meta"][PROVENANCE_META_KEY]
    assert block["generation"] == manifest.generation and block["keyId"] == signer.key_id
    assert block["digest"] == manifest.digest_of(name, version)

    for entry in (name, f"{name}@{version}"):
        good = verify_entry(base, key, entry)
        assert good.returncode == 0, good.stderr
        assert f"verified: {base}" in good.stdout and manifest.generation in good.stdout

    wrong = verify_entry(base, other, name)
    assert wrong.returncode == 1 and "not with the given key" in wrong.stderr
    for tamper, message in (
        (on_entries(new_remote), "was changed after it was signed"),
        (on_entries(new_remote_and_digest), "was changed after it was signed"),
        (on_entries(no_provenance), "carries no _meta"),
        (forged_manifest, "does not match"),
    ):
        refused = verify_entry(proxies(base, tamper), key, name)
        assert refused.returncode == 1, refused.stdout
        assert refused.stderr.startswith("NOT VERIFIED") and message in refused.stderr, refused.stderr
    # An honest relay changes nothing: the refusals above are the tampering's.
    assert verify_entry(proxies(base, lambda path, body: body), key, name).returncode == 0

    # Signing removed: the next generation's entries carry no provenance; verification says so.
    registries.patch("entries", {"spec": {"signing": None}})
    registries.wait(
        "entries", lambda s: "signingKeyId" not in (s.get("syncStatus") or {}), timeout=60, what="unsigned"
    )
    wait_until(lambda: get(base + ENTRIES)[0] == 404 or None, timeout=30, what="the API serving no manifest")
    unsigned = verify_entry(base, key, name)
    assert unsigned.returncode == 1 and "does not sign its entries" in unsigned.stderr
