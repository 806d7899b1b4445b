"""The operator's promises under faults, against the real control plane: one status write per pass,
status corrected when someone else edits it, and a control loop that survives the API server going
away in the middle of a pass."""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.request
from typing import Any

import pytest
from kubernetes import watch

from fixtures.faults import FaultProxyFactory
from fixtures.kube import Kube, wait_until
from fixtures.operator import GROUP, PLURAL, VERSION, OperatorProcess, Registries
from integration.test_operator_sync import SNAPSHOTS, expected_count, git_spec, is_ready_with
from mcpreg.storage.configmap_layout import parse_head_annotations
from mcpreg_dev.controlplane import ControlPlane
from mcpreg_dev.gitserver import BareRepo, GitDaemonServer
from mcpreg_dev.samples import replicated_toolhive

pytestmark = pytest.mark.integration

# After a fault ends, status must tell the truth again within this many seconds.
CONVERGE_S = 30.0


class StatusWrites:
    """Counts the MCPRegistry's versions that changed its status, from a real watch."""

    def __init__(self, kube: Kube, namespace: str, name: str, resource_version: str) -> None:
        self.versions: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(kube, namespace, name, resource_version), daemon=True
        )
        self._thread.start()

    def _run(self, kube: Kube, namespace: str, name: str, resource_version: str) -> None:
        stream = watch.Watch()
        last_status: Any = None
        for event in stream.stream(
            kube.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            field_selector=f"metadata.name={name}",
            resource_version=resource_version,
            timeout_seconds=15,
        ):
            obj = event["object"]
            status = obj.get("status")
            if last_status is not None and status != last_status:
                self.versions.append(status)
            last_status = status
            if self._stop.is_set():
                stream.stop()
                return

    def stop(self) -> list[dict[str, Any]]:
        self._stop.set()
        self._thread.join(timeout=20)  # the server ends the watch after timeout_seconds at the latest
        return self.versions


def test_a_trigger_with_nothing_new_writes_status_once(
    registries: Registries, kube: Kube, namespace: str, bare_repo: BareRepo, git_daemon: GitDaemonServer
) -> None:
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    registries.create("once", {**git_spec(git_daemon.url(bare_repo)), "api": {"enabled": False}})
    obj = registries.wait("once", is_ready_with(expected_count(SNAPSHOTS[0])), timeout=60)
    time.sleep(2)  # let the creation's passes settle
    obj = registries.get("once")
    writes = StatusWrites(kube, namespace, "once", obj["metadata"]["resourceVersion"])
    value = registries.trigger("once")
    registries.wait("once", lambda s: s.get("lastManualSyncTrigger") == value, timeout=30)
    time.sleep(3)  # any further writes the trigger causes
    registries.trigger("once", value + "-again")  # an event after the quiet period ends the watch
    registries.wait("once", lambda s: s.get("lastManualSyncTrigger") == value + "-again", timeout=30)
    time.sleep(1)
    versions = writes.stop()
    # One status write per trigger: the trigger recorded together with the (unchanged) result.
    assert len(versions) == 2, [v.get("syncStatus") for v in versions]
    assert all(v["phase"] == "Ready" for v in versions)


def test_status_edited_by_someone_else_is_corrected(
    registries: Registries, kube: Kube, bare_repo: BareRepo, git_daemon: GitDaemonServer, namespace: str
) -> None:
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    registries.create("edited", {**git_spec(git_daemon.url(bare_repo)), "api": {"enabled": False}})
    good = registries.wait("edited", is_ready_with(expected_count(SNAPSHOTS[0])), timeout=60)["status"]
    kube.custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        "edited",
        {"status": {"phase": "Failed", "message": "edited by hand", "syncStatus": {"serverCount": 1}}},
    )
    fixed = registries.wait(
        "edited",
        lambda s: s.get("phase") == "Ready" and s.get("message") == good["message"],
        timeout=CONVERGE_S,
        what="status corrected",
    )["status"]
    assert fixed["syncStatus"]["lastSyncHash"] == good["syncStatus"]["lastSyncHash"]


def test_the_loop_survives_the_api_server_going_away_mid_pass(
    registries: Registries,
    kube: Kube,
    control_plane: ControlPlane,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    operator_process: OperatorProcess,
) -> None:
    """A registry retrying a failing source makes passes on its own timer; the API server goes away
    for one of them. The loop must keep going (no dead daemon waiting for Kopf's restart backoff)
    and act on a trigger promptly once the API server is back."""
    registries.create("outage", {**git_spec(git_daemon.url(bare_repo)), "api": {"enabled": False}})
    # Nothing committed yet: the sync fails (no branch) and is retried at 5 s, 10 s, … .
    registries.wait("outage", lambda s: (s.get("syncStatus") or {}).get("attemptCount", 0) >= 1, timeout=60)
    control_plane.restart("kube-apiserver", down_seconds=12)
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    back = time.monotonic()
    registries.trigger("outage")
    registries.wait(
        "outage", is_ready_with(expected_count(SNAPSHOTS[0])), timeout=CONVERGE_S, what="converged"
    )
    assert time.monotonic() - back < CONVERGE_S
    assert operator_process.process is not None and operator_process.process.poll() is None


def _role_names(role: Any) -> set[str]:
    rules = role.rules or []
    return {name for rule in rules for name in (rule.resource_names or [])}


def test_new_parts_are_readable_before_the_head_names_them(
    registries: Registries, kube: Kube, namespace: str, bare_repo: BareRepo, git_daemon: GitDaemonServer
) -> None:
    """A catalogue split over several ConfigMaps: every head version that lists new parts must come
    after (in etcd's order of writes) the Role version that lets the API pods read them, and a new
    generation must not roll the API pods."""
    source = json.loads(SNAPSHOTS[-1].read_bytes())
    first = json.dumps(replicated_toolhive(source, 6000)).encode()
    bare_repo.commit({"registry.json": first})
    registries.create("split", git_spec(git_daemon.url(bare_repo)))
    obj = registries.wait("split", is_ready_with(6000), timeout=120)
    assert len(obj["status"]["storageRef"]["configMaps"]) > 2, "the catalogue must be split for this test"
    deployment = kube.apps.read_namespaced_deployment("split-api", namespace)
    template_before = deployment.spec.template.metadata.annotations

    role_versions: list[tuple[int, set[str]]] = []
    head_versions: list[tuple[int, list[str]]] = []
    stop = threading.Event()

    def record_roles() -> None:
        stream = watch.Watch()
        for event in stream.stream(
            kube.rbac.list_namespaced_role,
            namespace,
            field_selector="metadata.name=split-api",
            timeout_seconds=40,
        ):
            role = event["object"]
            role_versions.append((int(role.metadata.resource_version), _role_names(role)))
            if stop.is_set():
                stream.stop()

    def record_heads() -> None:
        stream = watch.Watch()
        for event in stream.stream(
            kube.core.list_namespaced_config_map, namespace, field_selector="metadata.name=split-data",
            timeout_seconds=40,
        ):  # fmt: skip
            head = kube.core.api_client.sanitize_for_serialization(event["object"])
            names = list(parse_head_annotations(head).part_names)
            head_versions.append((int(head["metadata"]["resourceVersion"]), names))
            if stop.is_set():
                stream.stop()

    threads = [threading.Thread(target=f, daemon=True) for f in (record_roles, record_heads)]
    for thread in threads:
        thread.start()
    time.sleep(1)
    second = json.dumps(replicated_toolhive(source, 6001)).encode()
    bare_repo.commit({"registry.json": second})
    registries.trigger("split")
    registries.wait("split", is_ready_with(6001), timeout=120)
    time.sleep(2)
    stop.set()
    registries.patch("split", {"metadata": {"annotations": {"poke": "1"}}})  # an event to end the watches
    for thread in threads:
        thread.join(timeout=45)

    published = [(rv, names) for rv, names in head_versions if names]
    assert published, head_versions
    for head_rv, names in published:
        # What the Role granted when the head was written: its latest version older than the head.
        older = [granted for rv, granted in role_versions if rv < head_rv]
        assert older and set(names) <= older[-1], (head_rv, names, role_versions)
    deployment = kube.apps.read_namespaced_deployment("split-api", namespace)
    assert deployment.spec.template.metadata.annotations == template_before


def test_a_sync_finishing_after_deletion_began_leaves_terminating(
    registries: Registries,
    kube: Kube,
    namespace: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    fault_proxy: FaultProxyFactory,
) -> None:
    """Deletion starts while a slow sync runs; when the sync ends, its status write must not cover
    `Terminating` (a person's finalizer keeps the object visible meanwhile)."""
    proxy = fault_proxy(f"127.0.0.1:{git_daemon.port}")
    url = git_daemon.url(bare_repo).replace(f"127.0.0.1:{git_daemon.port}", proxy.listen)
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    registries.create("slowgone", {**git_spec(url), "api": {"enabled": False}})
    registries.wait("slowgone", is_ready_with(expected_count(SNAPSHOTS[0])), timeout=60)
    registries.patch("slowgone", {"metadata": {"finalizers": ["example.com/hold"]}})
    bare_repo.commit({"registry.json": SNAPSHOTS[-1].read_bytes()})
    proxy.latency(2500)
    registries.trigger("slowgone")
    registries.wait("slowgone", lambda s: (s.get("syncStatus") or {}).get("phase") == "Syncing", timeout=30)
    registries.delete("slowgone")
    registries.wait_phase("slowgone", "Terminating", timeout=30)
    time.sleep(15)  # the slow fetch ends meanwhile, and with it the sync
    try:
        obj = registries.get("slowgone")
        assert obj["status"]["phase"] == "Terminating", obj["status"]
    finally:
        registries.patch("slowgone", {"metadata": {"finalizers": None}})


KILLS = 20


def test_operator_sigkilled_at_random_points_of_syncs(
    registries: Registries,
    kube: Kube,
    namespace: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    operator_process: OperatorProcess,
) -> None:
    """20 times: a new commit, a trigger, and a SIGKILL at a random moment of the sync that follows
    (fetch, parse, part writes, the head switch, the status write). Afterwards: status converges to
    the last commit, storage holds exactly what status says, and every ConfigMap is owned."""
    rng = random.Random(1202)
    source = json.loads(SNAPSHOTS[-1].read_bytes())
    bare_repo.commit({"registry.json": json.dumps(replicated_toolhive(source, 4000)).encode()})
    registries.create("killed", {**git_spec(git_daemon.url(bare_repo)), "api": {"enabled": False}})
    registries.wait("killed", is_ready_with(4000), timeout=120)
    for round_ in range(1, KILLS + 1):
        bare_repo.commit({"registry.json": json.dumps(replicated_toolhive(source, 4000 + round_)).encode()})
        registries.trigger("killed")
        time.sleep(rng.uniform(0.0, 2.5))
        operator_process.kill()
        operator_process.start()
    started = time.monotonic()
    obj = registries.wait("killed", is_ready_with(4000 + KILLS), timeout=CONVERGE_S * 2, what="converged")
    converged = time.monotonic() - started
    status = obj["status"]
    head = kube.core.read_namespaced_config_map("killed-data", namespace)
    meta = parse_head_annotations(kube.core.api_client.sanitize_for_serialization(head))
    assert meta.content_hash == status["syncStatus"]["lastSyncHash"]
    assert status["storageRef"]["configMaps"] == ["killed-data", *meta.part_names]
    selector = "app.kubernetes.io/instance=killed"
    owned = kube.core.list_namespaced_config_map(namespace, label_selector=selector)
    names = [cm.metadata.name for cm in owned.items]
    assert set(meta.part_names) <= set(names)
    uid = obj["metadata"]["uid"]
    for cm in owned.items:
        assert [ref.uid for ref in cm.metadata.owner_references or []] == [uid], cm.metadata.name
    print(f"converged {converged:.1f} s after the last of {KILLS} kills; {len(names)} ConfigMaps")


def test_the_operator_reports_its_event_loop_lag(operator_process: OperatorProcess) -> None:
    def scraped() -> str | None:
        url = f"http://127.0.0.1:{operator_process.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        return text if "mcpreg_operator_event_loop_lag_seconds_count" in text else None

    text = wait_until(scraped, timeout=15, what="the lag histogram")
    count = next(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("mcpreg_operator_event_loop_lag_seconds_count")
    )
    assert count > 0  # the monitor samples every 100 ms
    assert "mcpreg_operator_event_loop_lag_max_seconds" in text


def scrape(operator: OperatorProcess) -> dict[str, float]:
    """The operator's /metrics as {series: value} (comments left out)."""
    url = f"http://127.0.0.1:{operator.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        lines = response.read().decode().splitlines()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines if not line.startswith("#")
    }


def test_the_operator_reports_each_sync_step_and_how_syncs_end(
    registries: Registries,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    operator_process: OperatorProcess,
) -> None:
    before = scrape(operator_process)
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    registries.create("metered", {**git_spec(git_daemon.url(bare_repo)), "api": {"enabled": False}})
    registries.wait("metered", is_ready_with(expected_count(SNAPSHOTS[0])), timeout=60)
    value = registries.trigger("metered")  # nothing new upstream: an unchanged sync
    registries.wait("metered", lambda s: s.get("lastManualSyncTrigger") == value, timeout=60)
    registries.patch("metered", {"spec": {"source": {"git": {"repository": "git://127.0.0.1:1/none.git"}}}})
    registries.wait("metered", lambda s: (s.get("syncStatus") or {}).get("phase") == "Failed", timeout=60)
    after = scrape(operator_process)

    def grew(series: str) -> float:
        return after.get(series, 0.0) - before.get(series, 0.0)

    for step in ("revision", "fetch", "prepare", "store"):
        assert grew(f'mcpreg_operator_sync_step_seconds_count{{step="{step}"}}') >= 1, step
        assert grew(f'mcpreg_operator_sync_step_seconds_sum{{step="{step}"}}') > 0, step
    for result in ("stored", "unchanged", "failed"):
        assert grew(f'mcpreg_operator_syncs_total{{result="{result}"}}') >= 1, result
