"""Per-entry quarantine (issue 14) against the real control plane and a real git server: a catalogue
of a hundred real entries with one broken is served as 99 and names the one; the guard refuses a sync
that would drop more than maxSkippedPercent or everything, keeping the last good catalogue; Reject
fails on one error; a document that cannot be read fails whatever the policy. What is stored is read
back through the product's own ConfigMap reader."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from fixtures.kube import Kube, wait_until
from fixtures.operator import Registries
from fixtures.stored import stored_data
from mcpreg.catalog.served import read_served
from mcpreg_dev.gitserver import BareRepo, GitDaemonServer

pytestmark = pytest.mark.integration

SHARED = Path(os.environ.get("MCPREG_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
REAL = SHARED / "toolhive" / "registry-2026-02-18.json"
BROKEN_TRANSPORT = "carrier-pigeon"


def hundred() -> dict[str, Any]:
    """The real snapshot cut to exactly 100 entries (79 container servers, 21 remote ones)."""
    document = json.loads(REAL.read_text())
    document["remote_servers"] = dict(list(document["remote_servers"].items())[:21])
    assert len(document["servers"]) + len(document["remote_servers"]) == 100
    return dict(document)


def break_entries(document: dict[str, Any], names: list[str]) -> str:
    for name in names:
        document["servers"][name]["transport"] = BROKEN_TRANSPORT
    return json.dumps(document)


def git_spec(url: str, **validation: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"source": {"type": "git", "git": {"repository": url, "path": "registry.json"}}}
    if validation:
        spec["validation"] = validation
    return spec


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def synced(revision: str, servers: int) -> Any:
    def check(status: dict[str, Any]) -> bool:
        sync = status.get("syncStatus", {})
        return (
            status.get("phase") == "Ready"
            and sync.get("phase") == "Complete"
            and sync.get("revision") == revision
            and sync.get("serverCount") == servers
        )

    return check


def failed_with(reason: str) -> Any:
    def check(status: dict[str, Any]) -> bool:
        valid = next((c for c in status.get("conditions", []) if c["type"] == "DataValid"), None)
        return status.get("phase") == "Failed" and valid is not None and valid["reason"] == reason

    return check


def stored_names(kube: Kube, namespace: str, name: str) -> set[str]:
    """The ToolHive server names of the catalogue stored for `name`, as the API pods read it."""

    toolhive = json.loads(read_served(stored_data(kube, namespace, name)).toolhive)
    return set(toolhive.get("servers") or {}) | set(toolhive.get("remote_servers") or {})


def warning_events(kube: Kube, namespace: str, name: str, reason: str) -> list[client.CoreV1Event]:
    return [
        e
        for e in kube.core.list_namespaced_event(namespace).items
        if e.involved_object.name == name and e.reason == reason and e.type == "Warning"
    ]


def printed_columns(kube: Kube, namespace: str, name: str) -> dict[str, str]:
    """`kubectl get mcpreg NAME`, header to value (columns are separated by two spaces or more)."""
    header, row = kube.kubectl("get", "mcpreg", name, "-n", namespace).stdout.splitlines()[:2]
    return dict(zip(re.split(r"\s{2,}", header.strip()), re.split(r"\s{2,}", row.strip()), strict=True))


def test_one_broken_entry_of_a_hundred_is_skipped_named_and_the_rest_served(
    registries: Registries, kube: Kube, namespace: str, bare_repo: BareRepo, git_daemon: GitDaemonServer
) -> None:
    document = hundred()
    everything = set(document["servers"]) | set(document["remote_servers"])
    broken = sorted(document["servers"])[10]
    commit = bare_repo.commit({"registry.json": break_entries(document, [broken])})
    registries.create("partial", git_spec(git_daemon.url(bare_repo)))
    obj = registries.wait("partial", synced(commit, 99), timeout=60)
    status, generation = obj["status"], obj["metadata"]["generation"]

    sync = status["syncStatus"]
    assert (sync["serverCount"], sync["skippedCount"]) == (99, 1)
    assert isinstance(sync["warningCount"], int)
    assert sync["skippedHash"].startswith("sha256:")
    assert "1 invalid entry skipped" in status["message"]
    valid = condition(status, "DataValid")
    assert (valid["status"], valid["reason"], valid["observedGeneration"]) == (
        "False",
        "EntriesSkipped",
        generation,
    )
    assert valid["message"].startswith(f"1 of 100 entries skipped as invalid: servers.{broken}.transport: ")
    assert BROKEN_TRANSPORT in valid["message"] and "serving 99 servers" in valid["message"]
    for type_ in ("SourceAvailable", "Synced", "Ready"):
        assert condition(status, type_)["status"] == "True", type_
    # What is stored (and so served) is the 99, without the broken one.
    assert stored_names(kube, namespace, "partial") == everything - {broken}
    # One Warning Event names it; `kubectl get` shows the count.
    [event] = wait_until(
        lambda: warning_events(kube, namespace, "partial", "EntriesSkipped"),
        timeout=15,
        what="EntriesSkipped",
    )
    assert f"servers.{broken}.transport" in event.message
    columns = printed_columns(kube, namespace, "partial")
    assert (columns["PHASE"], columns["SERVERS"], columns["SKIPPED"]) == ("Ready", "99", "1")

    # A new commit that keeps the same entry broken: synced again, no second Event.
    first = sorted(document["servers"])[0]
    document["servers"][first]["description"] = "changed, still served"
    again = bare_repo.commit({"registry.json": json.dumps(document)})
    registries.trigger("partial")
    registries.wait("partial", synced(again, 99), timeout=60)
    # A second broken entry changes the skipped set: one more Event, naming the new set.
    second = sorted(document["servers"])[20]
    more = bare_repo.commit({"registry.json": break_entries(document, [second])})
    registries.trigger("partial")
    status = registries.wait("partial", synced(more, 98), timeout=60)["status"]
    assert status["syncStatus"]["skippedCount"] == 2
    assert "2 of 100 entries skipped" in condition(status, "DataValid")["message"]
    events: list[client.CoreV1Event] = wait_until(
        lambda: e if len(e := warning_events(kube, namespace, "partial", "EntriesSkipped")) >= 2 else None,
        timeout=15,
        what="a second EntriesSkipped Event",
    )
    assert len(events) == 2 and any(f"servers.{second}.transport" in e.message for e in events)

    # Fixed: nothing skipped, DataValid True again.
    fixed = bare_repo.commit({"registry.json": REAL.read_bytes()})
    registries.trigger("partial")
    status = registries.wait("partial", synced(fixed, 102), timeout=60)["status"]
    assert status["syncStatus"]["skippedCount"] == 0 and "skippedHash" not in status["syncStatus"]
    assert condition(status, "DataValid")["status"] == "True"
    assert printed_columns(kube, namespace, "partial")["SKIPPED"] == "0"
    assert len(warning_events(kube, namespace, "partial", "EntriesSkipped")) == 2


def test_the_guard_refuses_a_broken_file_and_keeps_the_last_good_catalogue(
    registries: Registries, kube: Kube, namespace: str, bare_repo: BareRepo, git_daemon: GitDaemonServer
) -> None:
    document = hundred()
    good = bare_repo.commit({"registry.json": json.dumps(document)})
    registries.create("guarded", git_spec(git_daemon.url(bare_repo)))
    before = registries.wait("guarded", synced(good, 100), timeout=60)["status"]
    stored_before = stored_names(kube, namespace, "guarded")
    head = kube.core.read_namespaced_config_map("guarded-data", namespace).metadata.resource_version

    # 51 of 100 broken: more than the default 50%.
    broken = sorted(document["servers"])[:51]
    half = bare_repo.commit({"registry.json": break_entries(document, broken)})
    registries.trigger("guarded")
    status = registries.wait("guarded", failed_with("TooManyEntriesSkipped"), timeout=60)["status"]
    sync = status["syncStatus"]
    assert sync["phase"] == "Failed" and sync["attemptCount"] >= 1
    assert "51 of 100 entries skipped as invalid" in sync["message"]
    assert "more than spec.validation.maxSkippedPercent (50%)" in sync["message"]
    assert "still serving the last good catalogue (100 servers" in sync["message"]
    assert condition(status, "Synced")["reason"] == "TooManyEntriesSkipped"
    assert condition(status, "Ready")["status"] == "False"
    # Nothing was stored: the last good catalogue is what status and storage hold.
    assert (sync["lastSyncHash"], sync["revision"], sync["serverCount"]) == (
        before["syncStatus"]["lastSyncHash"],
        good,
        100,
    )
    assert kube.core.read_namespaced_config_map("guarded-data", namespace).metadata.resource_version == head
    assert stored_names(kube, namespace, "guarded") == stored_before
    wait_until(
        lambda: warning_events(kube, namespace, "guarded", "SyncFailed"), timeout=15, what="SyncFailed"
    )
    assert not warning_events(kube, namespace, "guarded", "EntriesSkipped")

    # A wider limit, set on purpose, lets the same data through: the spec change resyncs at once.
    obj = registries.patch("guarded", {"spec": {"validation": {"maxSkippedPercent": 60}}})
    status = registries.wait("guarded", synced(half, 49), timeout=60)["status"]
    assert status["syncStatus"]["skippedCount"] == 51
    assert condition(status, "DataValid")["observedGeneration"] == obj["metadata"]["generation"]
    assert stored_names(kube, namespace, "guarded") == stored_before - set(broken)

    # Every entry broken: refused whatever the share allows.
    registries.patch("guarded", {"spec": {"validation": {"maxSkippedPercent": 100}}})
    registries.wait(
        "guarded", lambda s: s.get("observedGeneration") == 3 and s.get("phase") == "Ready", timeout=60
    )
    nothing = {"version": "1.0.0", "last_updated": document["last_updated"], "servers": {}}
    for name in broken[:3]:
        nothing["servers"][name] = dict(document["servers"][name], transport=BROKEN_TRANSPORT)
    bare_repo.commit({"registry.json": json.dumps(nothing)})
    registries.trigger("guarded")
    status = registries.wait("guarded", failed_with("NoValidEntries"), timeout=60)["status"]
    assert "no entry could be served, nothing was stored: 3 of 3 entries" in status["syncStatus"]["message"]
    assert status["syncStatus"]["serverCount"] == 49
    assert stored_names(kube, namespace, "guarded") == stored_before - set(broken)


def test_reject_fails_the_sync_on_one_error(
    registries: Registries, kube: Kube, namespace: str, bare_repo: BareRepo, git_daemon: GitDaemonServer
) -> None:
    document = hundred()
    good = bare_repo.commit({"registry.json": json.dumps(document)})
    registries.create("strict", git_spec(git_daemon.url(bare_repo), onInvalidEntry="Reject"))
    registries.wait("strict", synced(good, 100), timeout=60)

    broken = sorted(document["servers"])[5]
    one = bare_repo.commit({"registry.json": break_entries(document, [broken])})
    registries.trigger("strict")
    status = registries.wait("strict", failed_with("InvalidData"), timeout=60)["status"]
    valid = condition(status, "DataValid")
    assert valid["status"] == "False" and f"servers.{broken}.transport" in valid["message"]
    assert status["syncStatus"]["revision"] == good and status["syncStatus"]["serverCount"] == 100
    assert len(stored_names(kube, namespace, "strict")) == 100

    # Switching to Skip judges the same data again at once, and serves the 99.
    registries.patch("strict", {"spec": {"validation": {"onInvalidEntry": "Skip"}}})
    status = registries.wait("strict", synced(one, 99), timeout=60)["status"]
    assert status["syncStatus"]["skippedCount"] == 1


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"servers": {"fetch": ', id="not-json"),
        pytest.param(b'{"servers": {"caf\xe9": {"image": "x"}}}', id="not-utf8"),
        pytest.param(b'{"hello": "world"}', id="unknown-shape"),
    ],
)
def test_a_document_that_cannot_be_read_always_fails(
    registries: Registries,
    kube: Kube,
    namespace: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    data: bytes,
) -> None:
    good = bare_repo.commit({"registry.json": REAL.read_bytes()})
    # The most lenient policy: whole-document problems fail the sync all the same.
    registries.create("whole", git_spec(git_daemon.url(bare_repo), maxSkippedPercent=100))
    registries.wait("whole", synced(good, 102), timeout=60)
    bare_repo.commit({"registry.json": data})
    registries.trigger("whole")
    status = registries.wait("whole", failed_with("InvalidData"), timeout=60)["status"]
    assert "(document): " in condition(status, "DataValid")["message"]
    assert condition(status, "SourceAvailable")["status"] == "True"
    assert (status["syncStatus"]["revision"], status["syncStatus"]["serverCount"]) == (good, 102)
    assert len(stored_names(kube, namespace, "whole")) == 102
