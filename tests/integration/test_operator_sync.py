"""The operator against the real control plane and real git servers: sync from git and ConfigMaps,
manual triggers, intervals, failures that keep the last good data, recovery, deletion, and a crash."""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from fixtures.git_servers import GitHTTPCredentials
from fixtures.kube import Kube, wait_until
from fixtures.operator import OperatorProcess, Registries
from mcpreg_dev.gitserver import BareRepo, GitDaemonServer, SmartHTTPGitServer

pytestmark = pytest.mark.integration

SHARED = Path(os.environ.get("MCPREG_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
SNAPSHOTS = sorted((SHARED / "toolhive").glob("registry-*.json"))


def expected_count(path: Path) -> int:
    document = json.loads(path.read_text())
    return len(document.get("servers", {})) + len(document.get("remote_servers", {}))


def git_spec(url: str, **extra: Any) -> dict[str, Any]:
    return {"source": {"type": "git", "git": {"repository": url, "path": "registry.json", **extra}}}


def conditions(status: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status.get("conditions", [])}


def is_ready_with(hash_or_count: str | int) -> Any:
    def check(status: dict[str, Any]) -> bool:
        sync = status.get("syncStatus", {})
        key = "lastSyncHash" if isinstance(hash_or_count, str) else "serverCount"
        return (
            status.get("phase") == "Ready"
            and sync.get(key) == hash_or_count
            and sync.get("phase") == "Complete"
        )

    return check


def data_configmap(kube: Kube, namespace: str, name: str) -> client.V1ConfigMap:
    return kube.core.read_namespaced_config_map(f"{name}-data", namespace)


def events_for(kube: Kube, namespace: str, name: str) -> list[client.CoreV1Event]:
    return [e for e in kube.core.list_namespaced_event(namespace).items if e.involved_object.name == name]


def wait_for_event(
    kube: Kube, namespace: str, name: str, reason: str, type: str = "Normal"
) -> client.CoreV1Event:
    """The operator posts Events after it writes status: a test that just saw the status waits a little."""
    return wait_until(
        lambda: next(
            (e for e in events_for(kube, namespace, name) if e.reason == reason and e.type == type), None
        ),
        timeout=15,
        what=f"a {type} Event {reason} for {name}",
    )


def test_create_syncs_to_ready_with_server_count(
    registries: Registries, kube: Kube, namespace: str, bare_repo: BareRepo, git_daemon: GitDaemonServer
) -> None:
    snapshot = SNAPSHOTS[-1]
    commit = bare_repo.commit({"registry.json": snapshot.read_bytes()})
    registries.create("company", git_spec(git_daemon.url(bare_repo), branch="main"))
    obj = registries.wait("company", is_ready_with(expected_count(snapshot)), timeout=60)
    status = obj["status"]
    assert status["syncStatus"]["revision"] == commit
    assert status["syncStatus"]["lastSyncHash"].startswith("sha256:")
    assert status["syncStatus"]["attemptCount"] == 0
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert conditions(status) == {
        "SourceAvailable": "True",
        "DataValid": "True",
        "Synced": "True",
        "APIReady": "True",
        "Ready": "True",
    }
    for condition in status["conditions"]:
        assert condition["observedGeneration"] == obj["metadata"]["generation"]
        assert condition["reason"] and condition["lastTransitionTime"].endswith("Z")
    assert status["storageRef"]["type"] == "configmap"
    assert "company-data" in status["storageRef"]["configMaps"]
    # Kopf's bookkeeping stays out of status.
    assert set(status) <= {
        "observedGeneration",
        "phase",
        "message",
        "syncStatus",
        "apiStatus",
        "storageRef",
        "lastManualSyncTrigger",
        "conditions",
    }
    cm = data_configmap(kube, namespace, "company")
    owner = cm.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid, owner.controller) == (
        "MCPRegistry",
        "company",
        obj["metadata"]["uid"],
        True,
    )
    assert cm.metadata.labels["app.kubernetes.io/managed-by"] == "mcp-registry-operator"
    wait_for_event(kube, namespace, "company", "Synced")
    printed = kube.kubectl("get", "mcpreg", "company", "-n", namespace).stdout
    assert "Ready" in printed and str(expected_count(snapshot)) in printed


def test_real_snapshots_in_turn_and_manual_trigger(
    registries: Registries,
    kube: Kube,
    namespace: str,
    bare_repo: BareRepo,
    git_http_server: SmartHTTPGitServer,
    git_http_credentials: GitHTTPCredentials,
) -> None:
    kube.core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="git-creds"),
            string_data={
                "username": git_http_credentials.username,
                "password": git_http_credentials.password,
            },
        ),
    )
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    spec = git_spec(git_http_server.url(bare_repo), branch="main", auth={"secretRef": {"name": "git-creds"}})
    registries.create("snap", spec)
    registries.wait("snap", is_ready_with(expected_count(SNAPSHOTS[0])), timeout=60)
    for snapshot in SNAPSHOTS[1:]:
        commit = bare_repo.commit({"registry.json": snapshot.read_bytes()})
        trigger = registries.trigger("snap")
        obj = registries.wait("snap", lambda s, t=trigger: s.get("lastManualSyncTrigger") == t, timeout=60)
        assert obj["status"]["syncStatus"]["revision"] == commit
        assert obj["status"]["syncStatus"]["serverCount"] == expected_count(snapshot)
        assert obj["status"]["phase"] == "Ready"

    # An unchanged source: the trigger is acknowledged, nothing is downloaded, storage is not rewritten.
    cm_before = data_configmap(kube, namespace, "snap").metadata.resource_version
    fetches_before = git_http_server.pack_fetches(bare_repo)
    trigger = registries.trigger("snap")
    obj = registries.wait("snap", lambda s: s.get("lastManualSyncTrigger") == trigger, timeout=30)
    assert obj["status"]["phase"] == "Ready"
    assert git_http_server.pack_fetches(bare_repo) == fetches_before
    assert data_configmap(kube, namespace, "snap").metadata.resource_version == cm_before


def test_new_commit_is_picked_up_on_the_interval(
    registries: Registries, bare_repo: BareRepo, git_daemon: GitDaemonServer
) -> None:
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    registries.create("interval", git_spec(git_daemon.url(bare_repo)) | {"syncPolicy": {"interval": "30s"}})
    registries.wait("interval", is_ready_with(expected_count(SNAPSHOTS[0])), timeout=60)
    commit = bare_repo.commit({"registry.json": SNAPSHOTS[1].read_bytes()})
    obj = registries.wait("interval", lambda s: s.get("syncStatus", {}).get("revision") == commit, timeout=75)
    assert obj["status"]["syncStatus"]["serverCount"] == expected_count(SNAPSHOTS[1])


def test_invalid_data_keeps_last_good_then_recovers(
    registries: Registries, kube: Kube, namespace: str, bare_repo: BareRepo, git_daemon: GitDaemonServer
) -> None:
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    # Reject: one invalid entry fails the sync (with the default Skip it would be left out, as
    # test_operator_quarantine.py shows).
    registries.create(
        "bad", git_spec(git_daemon.url(bare_repo)) | {"validation": {"onInvalidEntry": "Reject"}}
    )
    good = registries.wait("bad", is_ready_with(expected_count(SNAPSHOTS[0])), timeout=60)["status"]
    stored_before = data_configmap(kube, namespace, "bad")

    broken = json.loads(SNAPSHOTS[0].read_text())
    first = next(iter(broken["servers"]))
    broken["servers"][first]["transport"] = "carrier-pigeon"
    bad_commit = bare_repo.commit({"registry.json": json.dumps(broken)})
    registries.trigger("bad")
    failed = registries.wait("bad", lambda s: s.get("phase") == "Failed", timeout=30)["status"]
    assert failed["syncStatus"]["attemptCount"] >= 1
    assert f"servers.{first}.transport" in failed["syncStatus"]["message"]
    assert "last good catalogue" in failed["syncStatus"]["message"]
    assert conditions(failed)["DataValid"] == "False"
    assert conditions(failed)["Ready"] == "False"
    # The last good data is still what is stored.
    assert failed["syncStatus"]["lastSyncHash"] == good["syncStatus"]["lastSyncHash"]
    assert failed["syncStatus"]["revision"] != bad_commit
    assert (
        data_configmap(kube, namespace, "bad").metadata.resource_version
        == stored_before.metadata.resource_version
    )
    wait_for_event(kube, namespace, "bad", "SyncFailed", "Warning")

    fixed = bare_repo.commit({"registry.json": SNAPSHOTS[1].read_bytes()})
    registries.trigger("bad")
    recovered = registries.wait("bad", is_ready_with(expected_count(SNAPSHOTS[1])), timeout=60)["status"]
    assert recovered["syncStatus"]["revision"] == fixed
    assert recovered["syncStatus"]["attemptCount"] == 0
    assert set(conditions(recovered).values()) == {"True"}
    wait_for_event(kube, namespace, "bad", "SyncRecovered")


def test_unreachable_source_fails_with_backoff(registries: Registries) -> None:
    registries.create("gone", git_spec("git://127.0.0.1:9/nothing.git"))
    failed = registries.wait("gone", lambda s: s.get("phase") == "Failed", timeout=30)["status"]
    assert conditions(failed)["SourceAvailable"] == "False"
    reasons = {c["type"]: c["reason"] for c in failed["conditions"]}
    assert reasons["SourceAvailable"] == "SourceUnreachable"
    assert "cannot reach git://127.0.0.1:9/nothing.git" in failed["message"]
    # Retries back off: the attempt count grows, but slowly (5 s, 10 s, …), not in a hot loop.
    again = registries.wait("gone", lambda s: s.get("syncStatus", {}).get("attemptCount", 0) >= 2, timeout=30)
    time.sleep(3)
    assert (
        registries.get("gone")["status"]["syncStatus"]["attemptCount"]
        <= again["status"]["syncStatus"]["attemptCount"] + 1
    )


def test_wrong_credentials_are_reported_without_leaking(
    registries: Registries,
    kube: Kube,
    namespace: str,
    bare_repo: BareRepo,
    git_http_server: SmartHTTPGitServer,
    operator_process: OperatorProcess,
) -> None:
    secret_value = "s3cr3t-" + os.urandom(6).hex()
    kube.core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="wrong"),
            string_data={"username": "nobody", "password": secret_value},
        ),
    )
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    registries.create(
        "creds", git_spec(git_http_server.url(bare_repo), auth={"secretRef": {"name": "wrong"}})
    )
    failed = registries.wait("creds", lambda s: s.get("phase") == "Failed", timeout=30)
    reasons = {c["type"]: c["reason"] for c in failed["status"]["conditions"]}
    assert reasons["SourceAvailable"] == "AuthenticationFailed"
    assert "authentication" in failed["status"]["message"]
    everything = json.dumps(failed) + json.dumps([e.message for e in events_for(kube, namespace, "creds")])
    everything += operator_process.log_text()
    assert secret_value not in everything


def test_configmap_source_change_syncs_promptly(registries: Registries, kube: Kube, namespace: str) -> None:
    kube.core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="catalog"), data={"registry.json": SNAPSHOTS[0].read_text()}
        ),
    )
    registries.create("fromcm", {"source": {"type": "configmap", "configMap": {"name": "catalog"}}})
    registries.wait("fromcm", is_ready_with(expected_count(SNAPSHOTS[0])), timeout=60)
    kube.core.patch_namespaced_config_map(
        "catalog", namespace, {"data": {"registry.json": SNAPSHOTS[1].read_text()}}
    )
    registries.wait("fromcm", is_ready_with(expected_count(SNAPSHOTS[1])), timeout=20)


def test_filter_change_resyncs(
    registries: Registries, bare_repo: BareRepo, git_daemon: GitDaemonServer
) -> None:
    snapshot = SNAPSHOTS[-1]
    document = json.loads(snapshot.read_text())
    bare_repo.commit({"registry.json": snapshot.read_bytes()})
    registries.create("filtered", git_spec(git_daemon.url(bare_repo)))
    registries.wait("filtered", is_ready_with(expected_count(snapshot)), timeout=60)
    container_names = sorted(document["servers"])
    excluded = container_names[:3]
    registries.patch("filtered", {"spec": {"filter": {"names": {"exclude": excluded}}}})
    registries.wait("filtered", is_ready_with(expected_count(snapshot) - 3), timeout=30)


def test_spec_breaking_a_cel_rule_is_refused_by_kubectl(kube: Kube, namespace: str, crd: str) -> None:
    manifest = {
        "apiVersion": "mcpregistry.dev/v1alpha1",
        "kind": "MCPRegistry",
        "metadata": {"name": "both"},
        "spec": {
            "source": {
                "type": "git",
                "git": {
                    "repository": "https://example.com/r.git",
                    "path": "r.json",
                    "branch": "main",
                    "tag": "v1",
                },
            }
        },
    }
    result = kube.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest), check=False)
    assert result.returncode != 0
    assert "at most one of branch, tag and commit" in result.stderr
    manifest["spec"] = {
        "source": {
            "type": "git",
            "git": {"repository": "https://example.com/r.git", "path": "../../etc/passwd"},
        }
    }
    result = kube.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest), check=False)
    assert result.returncode != 0 and "path" in result.stderr


@pytest.fixture
def newer_crd(kube: Kube, crd: str) -> Iterator[None]:
    """The session's CRD as a newer release might ship it, with a field and a source type this
    operator does not know; the generated CRD is put back afterwards."""
    original = json.loads(kube.kubectl("get", "crd", crd, "-o", "json").stdout)
    newer = copy.deepcopy(original)
    spec = newer["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    spec["mirror"] = {"type": "boolean", "description": "A field of a newer release."}
    spec["source"]["properties"]["git"]["properties"]["depth"] = {"type": "integer", "description": "Newer."}
    spec["source"]["properties"]["type"]["enum"].append("oci")
    kube.kubectl("replace", "-f", "-", input=json.dumps(newer))

    def admits_oci_sources() -> bool:
        body: dict[str, Any] = {"apiVersion": "mcpregistry.dev/v1alpha1", "kind": "MCPRegistry"}
        body |= {"metadata": {"name": "probe"}, "spec": {"source": {"type": "oci"}}}
        try:
            kube.custom.create_namespaced_custom_object(
                "mcpregistry.dev", "v1alpha1", "default", "mcpregistries", body, dry_run="All"
            )
        except ApiException:
            return False
        return True

    wait_until(admits_oci_sources, timeout=30, what="the newer CRD in effect")
    try:
        yield
    finally:
        current = json.loads(kube.kubectl("get", "crd", crd, "-o", "json").stdout)
        current["spec"] = original["spec"]
        kube.kubectl("replace", "-f", "-", input=json.dumps(current))
        wait_until(lambda: not admits_oci_sources(), timeout=30, what="the generated CRD back in effect")


def test_an_operator_reads_what_a_newer_crd_admits(
    newer_crd: None,
    registries: Registries,
    kube: Kube,
    namespace: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
) -> None:
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    # Fields it does not know: ignored, the registry syncs.
    registries.create("newer", git_spec(git_daemon.url(bare_repo), depth=1) | {"mirror": True})
    registries.wait("newer", is_ready_with(expected_count(SNAPSHOTS[0])), timeout=60)
    assert registries.get("newer")["spec"]["source"]["git"]["depth"] == 1
    # A value its models cannot read (a source type it does not implement): InvalidSpec, until the
    # spec changes; nothing is synced.
    registries.create("oci", {"source": {"type": "oci"}})
    status = registries.wait_phase("oci", "Failed", timeout=30)["status"]
    [ready] = [c for c in status["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert status["message"].startswith("invalid spec: spec.source.type:"), status["message"]
    assert "syncStatus" not in status
    wait_until(
        lambda: any(e.reason == "InvalidSpec" for e in events_for(kube, namespace, "oci")),
        timeout=30,
        what="an InvalidSpec Event",
    )
    for name in ("newer", "oci"):
        registries.delete(name)
    wait_until(
        lambda: not registries.exists("newer") and not registries.exists("oci"),
        timeout=30,
        what="deletion of both registries",
    )


def test_registry_with_invalid_spec_can_be_deleted(
    registries: Registries, kube: Kube, namespace: str
) -> None:
    # A ConfigMap source that does not exist: the registry fails, and deleting it still works.
    registries.create("broken", {"source": {"type": "configmap", "configMap": {"name": "missing"}}})
    registries.wait_phase("broken", "Failed", timeout=30)
    registries.delete("broken")
    wait_until(lambda: not registries.exists("broken"), timeout=30, what="deletion of broken")


def test_owned_configmaps_are_garbage_collected(
    registries: Registries, kube: Kube, namespace: str, bare_repo: BareRepo, git_daemon: GitDaemonServer
) -> None:
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    registries.create("gc", git_spec(git_daemon.url(bare_repo)))
    registries.wait("gc", is_ready_with(expected_count(SNAPSHOTS[0])), timeout=60)
    assert data_configmap(kube, namespace, "gc")
    registries.delete("gc")
    wait_until(lambda: not registries.exists("gc"), timeout=30, what="deletion of gc")

    def gone() -> bool:
        try:
            data_configmap(kube, namespace, "gc")
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_until(gone, timeout=60, what="garbage collection of gc-data")


def test_operator_killed_mid_sync_converges(
    registries: Registries,
    kube: Kube,
    namespace: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    operator_process: OperatorProcess,
) -> None:
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    registries.create("crash", git_spec(git_daemon.url(bare_repo)))
    registries.wait("crash", is_ready_with(expected_count(SNAPSHOTS[0])), timeout=60)
    commit = bare_repo.commit({"registry.json": SNAPSHOTS[-1].read_bytes()})
    registries.trigger("crash")
    registries.wait(
        "crash",
        lambda s: (
            s.get("syncStatus", {}).get("phase") == "Syncing"
            or s.get("syncStatus", {}).get("revision") == commit
        ),
        timeout=30,
    )
    operator_process.kill()
    operator_process.start()
    obj = registries.wait("crash", is_ready_with(expected_count(SNAPSHOTS[-1])), timeout=60)
    assert obj["status"]["syncStatus"]["revision"] == commit
    data_maps = [
        cm.metadata.name
        for cm in kube.core.list_namespaced_config_map(
            namespace, label_selector="app.kubernetes.io/instance=crash"
        ).items
    ]
    assert data_maps == sorted(set(data_maps))
    assert obj["status"]["storageRef"]["configMaps"] == [
        n for n in obj["status"]["storageRef"]["configMaps"] if n in data_maps
    ]
