"""Issue 15, Deliver 1 (`source.type: api`): the operator mirrors an MCP Registry API v0.1 endpoint.

Upstreams are real: the official registry's own server over PostgreSQL (the session's peer, 3,000
seeded entries, and entries each test publishes under a namespace of its own), this product's API
server, and a static file server for what is not a registry. A forwarding server in front of the peer
(`mcpreg_dev.forwarder`) logs every request with its query, so the tests count what a pass costs, and
can refuse requests without a token (the official registry's list needs none).

These registries are handled by an operator of this module's own, with http:// sources allowed (the
peers listen on loopback without TLS; the session's operator keeps the chart's default, http://
refused): it handles the `tn-api-*` namespaces, which the session's operator leaves alone.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from kubernetes import client
from kubernetes_asyncio import config as async_config

from fixtures.kube import Kube, fresh_namespace
from fixtures.official_registry import SEED_COUNT, SEED_NAMESPACE
from fixtures.operator import OperatorProcess, Registries, wait_until_handling_registries
from integration.test_api_server import LATEST, needs_shared, start_api
from integration.test_url_source import condition, failed_with, secret, sync_once
from mcpreg.catalog.served import ServedEntry, read_served
from mcpreg.storage import ConfigMapAddress, ConfigMapCatalogReader
from mcpreg_dev.fileserver import Served, StaticFileServer
from mcpreg_dev.forwarder import ForwardingServer
from mcpreg_dev.gitserver import BareRepo, GitDaemonServer
from mcpreg_dev.official_registry import OFFICIAL_META, OfficialRegistryPeer, generated_server

pytestmark = pytest.mark.integration

TOKEN = "mirror-token-5f1c0d9e2b"
LIST = "/v0.1/servers"


@pytest.fixture(scope="module")
def api_operator(
    kube: Kube, crd: str, product_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(
        kubeconfig=kube.kubeconfig,
        log_path=tmp_path_factory.mktemp("api-operator") / "operator.log",
        extra_env={"MCPREG_API_IMAGE": product_image, "MCPREG_ALLOW_INSECURE_HTTP_SOURCES": "true"},
        extra_args=["--namespace", "tn-api-*"],
    )
    proc.start()
    wait_until_handling_registries(kube, "tn-api-warmup-")
    yield proc
    proc.stop()


@pytest.fixture
def mirror_namespace(kube: Kube) -> Iterator[str]:
    with fresh_namespace(kube, "tn-api-") as name:
        yield name


@pytest.fixture
def mirrors(kube: Kube, mirror_namespace: str, api_operator: OperatorProcess) -> Registries:
    made = Registries(kube=kube, namespace=mirror_namespace, operator=api_operator)
    made.wait_until_handled()
    return made


@pytest.fixture
def gate(official_registry: OfficialRegistryPeer) -> Iterator[ForwardingServer]:
    """The session's peer behind a request log (no auth)."""
    with ForwardingServer(official_registry.base_url) as server:
        yield server


def api_spec(
    url: str, *, names: list[str] | None = None, exclude: list[str] | None = None, **api: Any
) -> Any:
    spec: dict[str, Any] = {"source": {"type": "api", "api": {"url": url, **api}}, "api": {"enabled": False}}
    if names is not None or exclude is not None:
        spec["filter"] = {"names": {"include": names or [], "exclude": exclude or []}}
    return spec


def ready_with(count: int) -> Any:
    return lambda s: s.get("phase") == "Ready" and s.get("syncStatus", {}).get("serverCount") == count


def stored(kube: Kube, namespace: str, name: str) -> dict[tuple[str, str], ServedEntry]:
    """The entries of the catalogue stored for `name`, as the API pods read them."""

    async def read() -> bytes:
        api = await async_config.new_client_from_config(config_file=str(kube.kubeconfig))
        try:
            catalogue = await ConfigMapCatalogReader(ConfigMapAddress(api, namespace, name)).read()
        finally:
            await api.close()
        assert catalogue is not None
        return catalogue.data

    return {entry.key: entry for entry in read_served(asyncio.run(read())).entries}


def queries(served: list[Served]) -> list[dict[str, str]]:
    return [{k: v[0] for k, v in parse_qs(r.query).items()} for r in served]


def events_text(kube: Kube, namespace: str) -> str:
    return " ".join(e.message or "" for e in kube.core.list_namespaced_event(namespace).items)


def test_every_page_is_walked_and_the_registry_filter_applies(
    mirrors: Registries, gate: ForwardingServer
) -> None:
    mirrors.create("all-seeded", api_spec(gate.base_url, names=[f"{SEED_NAMESPACE}/*"]))
    mirrors.create(
        "some",
        api_spec(gate.base_url, names=[f"{SEED_NAMESPACE}/server-0001*"], exclude=["*/server-00015"]),
    )
    status = mirrors.wait("all-seeded", ready_with(SEED_COUNT), timeout=120)["status"]
    mirrors.wait("some", ready_with(9), timeout=120)
    assert (
        f"{SEED_COUNT} servers from MCP Registry API {gate.base_url} at " in status["syncStatus"]["message"]
    )
    # Two full walks, each over every page of 100 latest versions (the peer holds other tests' entries
    # too), following the cursor: the last page is the first without one.
    walks = [q for q in queries(gate.requests(LIST)) if "cursor" not in q]
    assert len(walks) == 2
    assert all(q == {"limit": "100", "version": "latest"} for q in walks)
    pages = queries(gate.requests(LIST))
    assert len(pages) >= 2 * (SEED_COUNT // 100 + 1)
    assert len({q["cursor"] for q in pages if "cursor" in q}) == (len(pages) - 2) // 2

    # An unchanged refresh: one request, an updated_since query that the peer answers with no entries.
    before = len(gate.requests())
    status = sync_once(mirrors, "all-seeded")
    made = gate.requests()[before:]
    assert len(made) <= 2, made
    assert all("updated_since" in q for q in queries(made))
    assert status["phase"] == "Ready" and status["syncStatus"]["serverCount"] == SEED_COUNT


def test_an_incremental_refresh_follows_edits_deprecations_and_deletions(
    mirrors: Registries,
    kube: Kube,
    mirror_namespace: str,
    gate: ForwardingServer,
    official_registry: OfficialRegistryPeer,
    official_namespace: str,
) -> None:
    peer, ns = official_registry, official_namespace
    for index in range(6):
        peer.publish(generated_server(index, namespace=ns))
    peer.publish(generated_server(4, namespace=ns, version="1.1.0"))
    mirrors.create("mine", api_spec(gate.base_url, names=[f"{ns}/*"]))
    first = mirrors.wait("mine", ready_with(6), timeout=120)["status"]
    assert stored(kube, mirror_namespace, "mine")[(f"{ns}/server-00004", "1.1.0")].is_latest

    name = lambda index: f"{ns}/server-{index:05d}"  # noqa: E731
    peer.edit(generated_server(0, namespace=ns, description="Edited upstream"))
    peer.deprecate(name(1), "1.0.0", "use server-00000")
    peer.delete(name(2), "1.0.0")
    peer.publish(generated_server(3, namespace=ns, version="2.0.0"))
    peer.delete(name(4), "1.1.0")  # the latest deleted: 1.0.0 is the latest again upstream
    peer.publish(generated_server(9, namespace=ns))

    before = len(gate.requests())
    status = sync_once(mirrors, "mine")
    assert status["phase"] == "Ready", status
    assert status["syncStatus"]["revision"] != first["syncStatus"]["revision"]
    made = gate.requests()[before:]
    # No full walk: the changes since the watermark, and a look-up of each server whose mirrored latest
    # was deleted (server-00002: none left; server-00004: 1.0.0).
    lists = [r for r in made if r.path == LIST]
    assert lists and all("updated_since" in q for q in queries(lists))
    assert sorted(r.path for r in made if r.path != LIST) == [
        f"{LIST}/{name(2)}/versions/latest",  # as the server decodes it (sent as %2F)
        f"{LIST}/{name(4)}/versions/latest",
    ]
    entries = stored(kube, mirror_namespace, "mine")
    assert sorted(entries) == [
        (name(0), "1.0.0"),
        (name(1), "1.0.0"),
        (name(3), "2.0.0"),
        (name(4), "1.0.0"),
        (name(5), "1.0.0"),
        (name(9), "1.0.0"),
    ]
    assert json.loads(entries[(name(0), "1.0.0")].body)["server"]["description"] == "Edited upstream"
    deprecated = entries[(name(1), "1.0.0")]
    assert deprecated.status == "deprecated"
    official = json.loads(deprecated.body)["_meta"][OFFICIAL_META]
    assert (official["status"], official["statusMessage"]) == ("deprecated", "use server-00000")
    assert status["syncStatus"]["serverCount"] == 6


def test_an_operator_restart_walks_in_full_and_stores_nothing_new(
    mirrors: Registries,
    gate: ForwardingServer,
    api_operator: OperatorProcess,
    official_registry: OfficialRegistryPeer,
    official_namespace: str,
) -> None:
    ns = official_namespace
    for index in range(3):
        official_registry.publish(generated_server(index, namespace=ns))
    mirrors.create("restarted", api_spec(gate.base_url, names=[f"{ns}/*"]))
    first = mirrors.wait("restarted", ready_with(3), timeout=120)["status"]
    api_operator.stop()
    api_operator.start()
    before = len(gate.requests())
    status = sync_once(mirrors, "restarted")
    walked = queries(gate.requests(LIST)[before:])
    # The mirror is gone with the process: the first pass walks every page again...
    assert {"limit": "100", "version": "latest"} in walked
    assert len(walked) >= SEED_COUNT // 100 + 1
    # ...and, the registry being unchanged, finds the revision status records: nothing is rewritten.
    assert status["syncStatus"]["revision"] == first["syncStatus"]["revision"]
    assert status["syncStatus"]["lastSyncHash"] == first["syncStatus"]["lastSyncHash"]
    assert status["syncStatus"]["message"].endswith("(unchanged; nothing downloaded)")


def test_credentials_refused_then_fixed(
    mirrors: Registries, kube: Kube, mirror_namespace: str, official_registry: OfficialRegistryPeer
) -> None:
    with ForwardingServer(official_registry.base_url, token=TOKEN) as guarded:
        secret(kube, mirror_namespace, "registry-token", {"token": "not-" + TOKEN})
        spec = api_spec(
            guarded.base_url,
            names=[f"{SEED_NAMESPACE}/server-0000*"],
            auth={"secretRef": {"name": "registry-token"}},
        )
        mirrors.create("guarded", spec)
        status = mirrors.wait(
            "guarded",
            failed_with(
                "AuthenticationFailed",
                f"{guarded.base_url}/v0.1/servers",
                "HTTP 401",
                f"the credentials of Secret {mirror_namespace}/registry-token were refused",
            ),
            timeout=60,
        )["status"]
        assert all(r.authorized and r.status == 401 for r in guarded.requests())
        kube.core.replace_namespaced_secret(
            "registry-token",
            mirror_namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="registry-token"), string_data={"token": TOKEN}
            ),
        )
        status = sync_once(mirrors, "guarded")
        assert status["phase"] == "Ready" and status["syncStatus"]["serverCount"] == 10, status
        assert condition(status).get("status") == "True"
    seen = json.dumps(mirrors.get("guarded")) + events_text(kube, mirror_namespace)
    assert TOKEN not in seen


def test_what_is_not_a_v01_registry_is_named(mirrors: Registries, tmp_path: Path) -> None:
    root = tmp_path / "files"
    (root / "catalogue" / "v0.1").mkdir(parents=True)
    # A ToolHive document where the list should be: JSON, but not a v0.1 answer.
    (root / "catalogue" / "v0.1" / "servers").write_text(json.dumps({"version": "1.0.0", "servers": {}}))
    with StaticFileServer(root) as files:
        mirrors.create("empty-site", api_spec(files.base_url))
        mirrors.create("toolhive-file", api_spec(files.url("catalogue")))
        refused = f"{files.base_url} is not an MCP Registry API v0.1 endpoint: "
        status = mirrors.wait(
            "empty-site", failed_with("InvalidSourceReference", refused, "HTTP 404"), timeout=60
        )["status"]
        assert status["phase"] == "Failed"
        mirrors.wait(
            "toolhive-file",
            failed_with(
                "InvalidSourceReference",
                f"{files.url('catalogue')} is not an MCP Registry API v0.1 endpoint: ",
                "the answer has no 'servers' array",
            ),
            timeout=60,
        )


def test_limits_on_pages_and_bytes_fail_clearly(mirrors: Registries, gate: ForwardingServer) -> None:
    mirrors.create("few-pages", api_spec(gate.base_url, maxPages=5))
    mirrors.create("few-bytes", api_spec(gate.base_url, maxBytes=100_000))
    mirrors.wait(
        "few-pages",
        failed_with("SourceTooLarge", gate.base_url, "needs more than 5 requests (source.api.maxPages)"),
        timeout=60,
    )
    mirrors.wait(
        "few-bytes",
        failed_with("SourceTooLarge", gate.base_url, "larger together than 97.7 KiB (source.api.maxBytes)"),
        timeout=60,
    )


@needs_shared
def test_this_products_own_api_is_mirrored(mirrors: Registries, tmp_path: Path) -> None:
    """A registry of registries: the operator mirrors another instance of this product."""
    api = start_api(tmp_path, "--file", str(LATEST))
    try:
        latest: list[dict[str, Any]] = []
        cursor = ""
        while True:
            page = api.json(f"{LIST}?limit=100&version=latest" + (f"&cursor={cursor}" if cursor else ""))
            latest += page["servers"]
            cursor = page["metadata"].get("nextCursor") or ""
            if not cursor:
                break
        mirrors.create("of-registries", api_spec(api.base))
        status = mirrors.wait("of-registries", ready_with(len(latest)), timeout=120)["status"]
        assert f"servers from MCP Registry API {api.base} at " in status["syncStatus"]["message"]

        def asked() -> list[dict[str, Any]]:
            return [line for line in api.access_log() if str(line.get("path", "")).startswith(LIST)]

        for _ in range(2):  # unchanged: one request each; the second answered 304 (the ETag was sent)
            before = len(asked())
            status = sync_once(mirrors, "of-registries")
            assert status["phase"] == "Ready"
            made = asked()[before:]
            assert len(made) <= 2, made
        assert made[-1].get("status") == 304, made
    finally:
        api.stop()


def test_git_and_a_mirrored_registry_merge_and_a_dead_mirror_keeps_its_entries(
    mirrors: Registries,
    kube: Kube,
    mirror_namespace: str,
    official_registry: OfficialRegistryPeer,
    official_namespace: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
) -> None:
    """Issue 15's composition: our reviewed servers (git, listed first) plus a filtered mirror of the
    official registry, one name in both; then the mirror's upstream dies while git keeps changing."""
    ns = official_namespace
    for index in range(3):
        official_registry.publish(generated_server(index, namespace=ns))
    reviewed = generated_server(1, namespace=ns, description="Reviewed internally")
    ours = generated_server(7, namespace=ns, description="Only ours")
    bare_repo.commit({"registry.json": upstream_list(reviewed, ours)})
    name = lambda index: f"{ns}/server-{index:05d}"  # noqa: E731
    upstream = ForwardingServer(official_registry.base_url).start()
    try:
        mirror = {
            "name": "public",
            "type": "api",
            "api": {"url": upstream.base_url},
            "filter": {"names": {"include": [f"{ns}/*"]}},
        }
        git = {
            "name": "reviewed",
            "type": "git",
            "git": {"repository": git_daemon.url(bare_repo), "path": "registry.json"},
        }
        mirrors.create("composed", {"sources": [git, mirror], "api": {"enabled": False}})
        status = mirrors.wait("composed", ready_with(4), timeout=120)["status"]
        entries = stored(kube, mirror_namespace, "composed")
        assert sorted(key[0] for key in entries) == [name(0), name(1), name(2), name(7)]
        # The first source wins the shared name, and the conflict is reported.
        assert json.loads(entries[(name(1), "1.0.0")].body)["server"]["description"] == "Reviewed internally"
        assert status["conflicts"]["count"] == 1
        assert name(1) in json.dumps(status["conflicts"]["items"])
        per_source = {s["name"]: s for s in status["sources"]}
        # Entries each source serves: the mirror's server-00001 is left out for git's.
        assert (per_source["reviewed"]["entryCount"], per_source["public"]["entryCount"]) == (2, 2)
        assert per_source["public"]["conflicts"] == 1
    finally:
        upstream.stop()

    # The mirror's upstream is gone: git's next commit still lands, the mirror's entries stay served.
    added = generated_server(8, namespace=ns, description="Added after the mirror died")
    bare_repo.commit({"registry.json": upstream_list(reviewed, ours, added)})
    status = sync_once(mirrors, "composed")
    entries = stored(kube, mirror_namespace, "composed")
    assert sorted(key[0] for key in entries) == [name(0), name(1), name(2), name(7), name(8)]
    per_source = {s["name"]: s for s in status["sources"]}
    assert per_source["public"]["state"] == "LastGood" and per_source["public"]["lastError"]
    assert per_source["reviewed"]["state"] == "Current"
    synced = condition(status, "Synced")
    assert (synced["status"], synced["reason"]) == ("False", "SourcesDegraded") and "public" in synced[
        "message"
    ]
    assert condition(status, "Ready")["status"] == "True"


def upstream_list(*servers: dict[str, Any]) -> bytes:
    """An upstream-format catalogue (a v0.1 list) of these server.json entries."""
    return json.dumps({"servers": [{"server": server} for server in servers]}).encode()
