"""Issue 15, Deliver 2 (`source.type: url`) and issue 18's detached signature for URL sources, against a
real static file server on loopback (`mcpreg_dev.fileserver`: aiohttp's FileResponse, ETag and
Last-Modified from the file) and the session's operator and API server.

The file server logs every request with the status it got: an unchanged document must cost exactly one
request answered 304, a changed one exactly one download. The session's operator runs with the chart's
default (http:// refused), so every registry here fetches over TLS from a private CA, except the one
proving that http:// is refused; the allowed http:// path is run in-process with the setting on.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from kubernetes import client

from fixtures.cosign import Cosign
from fixtures.kube import Kube
from fixtures.operator import Registries
from mcpreg.signing import PrivateKeySigner
from mcpreg_dev.fileserver import StaticFileServer
from mcpreg_dev.pki import generate_pki, issue_certificate
from mcpreg_operator.sources.errors import SourceError, SourceErrorKind
from mcpreg_operator.sources.url import UrlCatalogSource, ValidatorCache
from mcpreg_operator.sources.url_http import UrlPolicy
from mcpreg_operator.spec.source_url import UrlSource

pytestmark = pytest.mark.integration

SHARED = Path(os.environ.get("MCPREG_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
SNAPSHOT = SHARED / "toolhive" / "registry-2026-02-18.json"
DOC = "/registry.json"
TOKEN = "files-token-0123456789"


class Tls:
    """A private CA and a serving certificate for 127.0.0.1 and localhost."""

    def __init__(self, directory: Path) -> None:
        self.pki = generate_pki(directory / "ca")
        self.ca_pem = self.pki.ca_cert.read_text()
        self.cert, self.key = issue_certificate(
            self.pki,
            directory / "serving",
            "files",
            common_name="mcpreg-files",
            alt_names=("localhost", "127.0.0.1"),
        )


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return Tls(tmp_path_factory.mktemp("url-tls"))


@pytest.fixture
def served(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    root.mkdir()
    return root


@pytest.fixture
def https_files(served: Path, tls: Tls) -> Iterator[StaticFileServer]:
    with StaticFileServer(served, tls=(tls.cert, tls.key), token=TOKEN) as server:
        yield server


def catalogue() -> tuple[bytes, int]:
    data = SNAPSHOT.read_bytes()
    document = json.loads(data)
    return data, len(document["servers"]) + len(document.get("remote_servers", {}))


def smaller(data: bytes) -> bytes:
    """The catalogue with one server fewer."""
    document = json.loads(data)
    document["servers"].pop(sorted(document["servers"])[0])
    return json.dumps(document).encode()


def condition(status: dict[str, Any], kind: str = "SourceAvailable") -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == kind), {})


def failed_with(reason: str, *fragments: str) -> Any:
    def predicate(status: dict[str, Any]) -> bool:
        found = condition(status)
        return found.get("reason") == reason and all(f in found.get("message", "") for f in fragments)

    return predicate


def ready_with(count: int) -> Any:
    return lambda s: s.get("phase") == "Ready" and s.get("syncStatus", {}).get("serverCount") == count


def secret(kube: Kube, namespace: str, name: str, data: dict[str, str]) -> None:
    kube.core.create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data)
    )


def config_map(kube: Kube, namespace: str, name: str, data: dict[str, str]) -> None:
    kube.core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data=data)
    )


def url_spec(url: str, **settings: Any) -> dict[str, Any]:
    return {"source": {"type": "url", "url": {"url": url, **settings}}, "api": {"enabled": False}}


def sync_once(registries: Registries, name: str) -> dict[str, Any]:
    """One manual sync, waited for until its trigger is recorded (the pass is over)."""
    value = registries.trigger(name)
    return registries.wait(name, lambda s: s.get("lastManualSyncTrigger") == value, timeout=60)["status"]


def test_a_url_catalogue_syncs_with_one_request_per_check(
    registries: Registries, kube: Kube, namespace: str, https_files: StaticFileServer, served: Path, tls: Tls
) -> None:
    data, count = catalogue()
    (served / "registry.json").write_bytes(data)
    config_map(kube, namespace, "files-ca", {"ca.crt": tls.ca_pem})
    secret(kube, namespace, "files-auth", {"token": "not-the-token"})
    url = https_files.url(DOC)
    spec = url_spec(
        url,
        auth={"secretRef": {"name": "files-auth"}},
        caBundle={"configMapRef": {"name": "files-ca"}},
    )
    registries.create("by-url", spec)

    # Refused credentials: named with the URL, the status and the Secret; never the token.
    status = registries.wait(
        "by-url",
        failed_with("AuthenticationFailed", url, "HTTP 401", f"Secret {namespace}/files-auth"),
        timeout=60,
    )["status"]
    assert "not-the-token" not in json.dumps(status)
    kube.core.patch_namespaced_secret("files-auth", namespace, {"stringData": {"token": TOKEN}})
    sync_once(registries, "by-url")
    ready = registries.wait("by-url", ready_with(count), timeout=60)["status"]
    good_hash = ready["syncStatus"]["lastSyncHash"]
    etag = https_files.requests(DOC)[-1]
    assert etag.status == 200 and etag.authorized
    assert ready["syncStatus"]["revision"].startswith('"')  # the server's ETag

    # Unchanged: one conditional request, answered 304, and nothing stored.
    before = len(https_files.requests(DOC))
    status = sync_once(registries, "by-url")
    asked = https_files.requests(DOC)[before:]
    assert [(r.status, r.conditional) for r in asked] == [(304, True)], asked
    assert status["syncStatus"]["lastSyncHash"] == good_hash
    assert status["phase"] == "Ready"

    # Changed: one request, answered 200 with the new document, which is synced.
    (served / "registry.json").write_bytes(smaller(data))
    before = len(https_files.requests(DOC))
    sync_once(registries, "by-url")
    changed = registries.wait("by-url", ready_with(count - 1), timeout=60)["status"]
    asked = https_files.requests(DOC)[before:]
    assert [(r.status, r.conditional) for r in asked] == [(200, True)], asked
    assert changed["syncStatus"]["lastSyncHash"] != good_hash
    changed_hash = changed["syncStatus"]["lastSyncHash"]

    # Over the byte limit: refused naming the limit, the last good catalogue stays.
    registries.patch("by-url", {"spec": {"source": {"url": {"maxBytes": 1000}}}})
    too_large = registries.wait(
        "by-url", failed_with("SourceTooLarge", url, "1000 bytes", "source.url.maxBytes"), timeout=60
    )["status"]
    assert too_large["syncStatus"]["lastSyncHash"] == changed_hash

    # Nothing at the URL: SourceNotFound with the status.
    missing = https_files.url("/missing.json")
    registries.patch("by-url", {"spec": {"source": {"url": {"url": missing, "maxBytes": 50 * 1024 * 1024}}}})
    gone = registries.wait("by-url", failed_with("SourceNotFound", missing, "HTTP 404"), timeout=60)["status"]
    assert gone["syncStatus"]["lastSyncHash"] == changed_hash


def test_a_private_ca_must_be_named_and_an_unknown_one_is_refused(
    registries: Registries, kube: Kube, namespace: str, served: Path, tls: Tls, tmp_path: Path
) -> None:
    data, count = catalogue()
    (served / "registry.json").write_bytes(data)
    other = Tls(tmp_path / "other")
    secret(kube, namespace, "ca", {"ca.crt": other.ca_pem})
    with StaticFileServer(served, tls=(tls.cert, tls.key)) as files:
        url = files.url(DOC)
        registries.create("private-ca", url_spec(url, caBundle={"secretRef": {"name": "ca"}}))
        registries.wait(
            "private-ca",
            failed_with("SourceUnreachable", url, "TLS verification failed", "caBundle"),
            timeout=60,
        )
        assert files.requests() == []  # refused in the handshake, before any request
        kube.core.patch_namespaced_secret("ca", namespace, {"stringData": {"ca.crt": tls.ca_pem}})
        sync_once(registries, "private-ca")
        registries.wait("private-ca", ready_with(count), timeout=60)


def test_redirects_stay_on_the_host_and_credentials_never_leave_it(
    registries: Registries, kube: Kube, namespace: str, https_files: StaticFileServer, served: Path, tls: Tls
) -> None:
    data, count = catalogue()
    (served / "registry.json").write_bytes(data)
    config_map(kube, namespace, "files-ca", {"ca.crt": tls.ca_pem})
    secret(kube, namespace, "files-auth", {"token": TOKEN})
    # Same server, another host name: 127.0.0.1 and localhost are different hosts.
    https_files.redirects["/moved.json"] = f"https://localhost:{https_files.port}{DOC}"
    https_files.redirects["/here.json"] = DOC
    auth = {"auth": {"secretRef": {"name": "files-auth"}}, "caBundle": {"configMapRef": {"name": "files-ca"}}}
    registries.create("same-host", url_spec(https_files.url("/here.json"), **auth))
    registries.wait("same-host", ready_with(count), timeout=60)
    moved = https_files.url("/moved.json")
    registries.create("moved", url_spec(moved, **auth))
    registries.wait("moved", failed_with("InvalidSourceReference", "localhost", "another host"), timeout=60)
    # Allowed to follow it, the credentials stay behind: the other host refuses the anonymous request.
    registries.patch("moved", {"spec": {"source": {"url": {"redirects": "AnyHost"}}}})
    registries.wait(
        "moved", failed_with("AuthenticationFailed", "HTTP 401", "no credentials were sent"), timeout=60
    )
    assert all(not r.authorized for r in https_files.requests(DOC) if r.status == 401)


def test_http_is_refused_unless_the_operator_allows_it(registries: Registries, served: Path) -> None:
    data, _ = catalogue()
    (served / "registry.json").write_bytes(data)
    with StaticFileServer(served) as files:
        url = files.url(DOC)
        registries.create("plain", url_spec(url))
        registries.wait(
            "plain", failed_with("InvalidSourceReference", url, "allowInsecureHttpSources"), timeout=60
        )
        assert files.requests() == []

        # With the setting on (as in local development), the same URL is read: in-process here, since
        # the session's operator keeps the chart's default.
        async def read() -> bytes | None:
            source = UrlCatalogSource(
                UrlSource(url=url),
                namespace="n",
                registry="r",
                kube=None,  # type: ignore[arg-type]  # no Secret to read
                policy=UrlPolicy(allow_http=True),
                cache=ValidatorCache(),
            )
            await source.revision()
            return (await source.fetch()).data

        assert asyncio.run(read()) == data
        assert [r.status for r in files.requests()] == [200]


def test_a_link_local_address_is_refused_before_any_connection() -> None:
    async def revision() -> str:
        source = UrlCatalogSource(
            UrlSource(url="http://169.254.169.254/latest/meta-data/registry.json"),
            namespace="n",
            registry="r",
            kube=None,  # type: ignore[arg-type]
            policy=UrlPolicy(allow_http=True),
            cache=ValidatorCache(),
        )
        return await source.revision()

    with pytest.raises(SourceError, match="link-local") as caught:
        asyncio.run(revision())
    assert caught.value.kind is SourceErrorKind.INVALID_REFERENCE


def _sign(signer: PrivateKeySigner, data: bytes) -> bytes:
    return base64.b64encode(signer.sign(data))


def test_a_url_catalogue_is_synced_only_with_a_good_detached_signature(
    registries: Registries, kube: Kube, namespace: str, https_files: StaticFileServer, served: Path, tls: Tls
) -> None:
    data, count = catalogue()
    (served / "registry.json").write_bytes(data)
    trusted, stranger = (PrivateKeySigner(ec.generate_private_key(ec.SECP256R1())) for _ in range(2))
    secret(kube, namespace, "keys", {"cosign.pub": trusted.public_key_pem})
    secret(kube, namespace, "files-auth", {"token": TOKEN})
    config_map(kube, namespace, "files-ca", {"ca.crt": tls.ca_pem})
    url = https_files.url(DOC)
    spec = url_spec(
        url,
        auth={"secretRef": {"name": "files-auth"}},
        caBundle={"configMapRef": {"name": "files-ca"}},
        verify={"secretRef": {"name": "keys"}},
    )
    registries.create("signed", spec)
    unsigned = registries.wait(
        "signed",
        failed_with("SourceVerificationFailed", "is not signed", url + ".sig", "HTTP 404"),
        timeout=60,
    )["status"]
    assert "lastSyncHash" not in unsigned.get("syncStatus", {})

    (served / "registry.json.sig").write_bytes(_sign(trusted, data))
    sync_once(registries, "signed")
    good_hash = registries.wait("signed", ready_with(count), timeout=60)["status"]["syncStatus"][
        "lastSyncHash"
    ]

    # Changed after signing: refused, the signed catalogue stays.
    changed = smaller(data)
    (served / "registry.json").write_bytes(changed)
    sync_once(registries, "signed")
    refused = registries.wait(
        "signed",
        failed_with("SourceVerificationFailed", "does not verify", f"Secret {namespace}/keys"),
        timeout=60,
    )["status"]
    assert refused["syncStatus"]["lastSyncHash"] == good_hash

    # Signed by a key the Secret does not hold: refused too.
    (served / "registry.json.sig").write_bytes(_sign(stranger, changed))
    before = len(https_files.requests())
    sync_once(registries, "signed")
    status = registries.wait(
        "signed", failed_with("SourceVerificationFailed", "does not verify"), timeout=60
    )["status"]
    assert status["syncStatus"]["lastSyncHash"] == good_hash
    assert "/registry.json.sig" in [r.path for r in https_files.requests()[before:]]

    # Signed by the trusted key: synced.
    (served / "registry.json.sig").write_bytes(_sign(trusted, changed))
    sync_once(registries, "signed")
    registries.wait("signed", ready_with(count - 1), timeout=60)


def _cached_cosign() -> Path | None:
    """The real cosign if it is already built (this test does not build it: that takes minutes)."""
    override = os.environ.get("MCPREG_COSIGN")
    if override:
        return Path(override)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mcp-registry-operator" / "bin"
    return next(iter(sorted(cache.glob("cosign-*/cosign"))), None)


@pytest.mark.skipif(_cached_cosign() is None, reason="cosign is not built in the binary cache")
def test_a_document_signed_by_the_real_cosign_is_accepted(
    registries: Registries, kube: Kube, namespace: str, https_files: StaticFileServer, served: Path, tls: Tls
) -> None:
    data, count = catalogue()
    cosign = Cosign(served.parent / "cosign")
    key, public = cosign.key_pair("signer")
    (served / "registry.json").write_bytes(data)
    (served / "catalogue.sig").write_text(cosign.sign(key, data))
    secret(kube, namespace, "keys", {"cosign.pub": public.read_text()})
    secret(kube, namespace, "files-auth", {"token": TOKEN})
    config_map(kube, namespace, "files-ca", {"ca.crt": tls.ca_pem})
    spec = url_spec(
        https_files.url(DOC),
        auth={"secretRef": {"name": "files-auth"}},
        caBundle={"configMapRef": {"name": "files-ca"}},
        verify={"secretRef": {"name": "keys"}, "signatureUrl": https_files.url("/catalogue.sig")},
    )
    registries.create("cosigned", spec)
    registries.wait("cosigned", ready_with(count), timeout=60)
