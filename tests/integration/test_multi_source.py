"""Several sources in one registry (`spec.sources`, issue 15) against the real control plane, a real git
server and real ConfigMaps: a ConfigMap source and a git source with a name in common (the first
source serves it, the conflict is reported in status and a Warning Event); then the ConfigMap is
deleted, and the git source's next commit still lands while the ConfigMap's last good entries stay
served, across an operator crash too (recovered from storage); then the ConfigMap comes back. What is
stored is read back through the product's own ConfigMap reader."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from fixtures.catalogues import TOOLHIVE_PREFIX, toolhive_catalogue
from fixtures.kube import Kube, wait_until
from fixtures.operator import OperatorProcess, Registries
from fixtures.stored import stored_data
from mcpreg.catalog.served import read_served
from mcpreg_dev.controlplane import free_port
from mcpreg_dev.gitserver import BareRepo, GitDaemonServer
from mcpreg_operator.merge import SOURCE_META_KEY

pytestmark = pytest.mark.integration

PREFIX = TOOLHIVE_PREFIX
PLATFORM = {"time-teller": "The platform's reviewed time server.", "fetcher": "The platform's fetcher."}
TEAM = {"time-teller": "The team's own time server.", "tickets": "The team's ticket server."}


def served(kube: Kube, namespace: str, name: str) -> dict[str, tuple[str, str]]:
    """What storage serves for `name`, as the API pods read it: server name -> (description, source)."""
    out = {}
    for entry in read_served(stored_data(kube, namespace, name)).entries:
        body = json.loads(entry.body)
        out[entry.name.removeprefix(PREFIX)] = (body["server"]["description"], body["_meta"][SOURCE_META_KEY])
    return out


def sources(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {source["name"]: source for source in status.get("sources") or ()}


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def events(kube: Kube, namespace: str, name: str, reason: str) -> list[client.CoreV1Event]:
    return [
        e
        for e in kube.core.list_namespaced_event(namespace).items
        if e.involved_object.name == name and e.reason == reason
    ]


def wait_for_event(kube: Kube, namespace: str, name: str, reason: str) -> client.CoreV1Event:
    return wait_until(
        lambda: next(iter(events(kube, namespace, name, reason)), None),
        timeout=15,
        what=f"an Event {reason} for {name}",
    )


def platform_configmap(kube: Kube, namespace: str, servers: dict[str, str]) -> None:
    kube.core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="platform-servers"),
            data={"registry.json": toolhive_catalogue(servers).decode()},
        ),
    )


def spec(git_url: str) -> dict[str, Any]:
    return {
        "sources": [
            {"name": "platform", "type": "configmap", "configMap": {"name": "platform-servers"}},
            {"name": "team", "type": "git", "git": {"repository": git_url, "path": "registry.json"}},
        ],
        "api": {"enabled": False},
    }


def both_current(team_revision: str) -> Any:
    def check(status: dict[str, Any]) -> bool:
        by_name = sources(status)
        return (
            status.get("phase") == "Ready"
            and status.get("syncStatus", {}).get("phase") == "Complete"
            and by_name.get("platform", {}).get("state") == "Current"
            and by_name.get("team", {}).get("state") == "Current"
            and by_name["team"].get("revision") == team_revision
        )

    return check


def platform_failing_team_at(team_revision: str) -> Any:
    def check(status: dict[str, Any]) -> bool:
        by_name = sources(status)
        return (
            by_name.get("platform", {}).get("state") == "LastGood"
            and by_name.get("team", {}).get("state") == "Current"
            and by_name["team"].get("revision") == team_revision
        )

    return check


def test_two_sources_merge_a_failing_one_keeps_its_entries_and_recovers(
    registries: Registries,
    kube: Kube,
    namespace: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    operator_process: OperatorProcess,
) -> None:
    platform_configmap(kube, namespace, PLATFORM)
    first = bare_repo.commit({"registry.json": toolhive_catalogue(TEAM)})
    registries.create("merged", spec(git_daemon.url(bare_repo)))

    # 1. Merged: the platform (listed first) serves time-teller; the conflict is reported.
    obj = registries.wait("merged", both_current(first), timeout=60, what="both sources synced")
    status, generation = obj["status"], obj["metadata"]["generation"]
    assert served(kube, namespace, "merged") == {
        "time-teller": (PLATFORM["time-teller"], "platform"),
        "fetcher": (PLATFORM["fetcher"], "platform"),
        "tickets": (TEAM["tickets"], "team"),
    }
    assert status["syncStatus"]["serverCount"] == 3
    platform, team = sources(status)["platform"], sources(status)["team"]
    assert (platform["type"], platform["entryCount"], team["type"], team["entryCount"]) == (
        "configmap",
        2,
        "git",
        1,
    )
    assert platform["revision"] and platform["lastSuccessTime"] and "lastError" not in platform
    assert team["conflicts"] == 1
    assert status["conflicts"]["count"] == 1
    assert status["conflicts"]["items"] == [
        {"name": PREFIX + "time-teller", "source": "platform", "shadowed": "team"}
    ]
    for type_ in ("Synced", "Ready"):
        assert (condition(status, type_)["status"], condition(status, type_)["observedGeneration"]) == (
            "True",
            generation,
        )
    conflict = wait_for_event(kube, namespace, "merged", "NameConflicts")
    assert conflict.type == "Warning"
    assert all(word in conflict.message for word in ("time-teller", "platform", "team"))

    # 2. The ConfigMap source breaks (deleted); the git source's next commit still lands.
    kube.core.delete_namespaced_config_map("platform-servers", namespace)
    second = bare_repo.commit(
        {"registry.json": toolhive_catalogue({**TEAM, "notes": "The team's notes server."})}
    )
    registries.trigger("merged")
    obj = registries.wait(
        "merged",
        platform_failing_team_at(second),
        timeout=60,
        what="platform failing, team at its new commit",
    )
    status = obj["status"]
    assert served(kube, namespace, "merged") == {
        "time-teller": (PLATFORM["time-teller"], "platform"),
        "fetcher": (PLATFORM["fetcher"], "platform"),
        "tickets": (TEAM["tickets"], "team"),
        "notes": ("The team's notes server.", "team"),
    }
    platform = sources(status)["platform"]
    assert platform["lastErrorReason"] == "SourceNotFound"
    assert "platform-servers" in platform["lastError"]
    assert platform["lastSuccessTime"] and platform["entryCount"] == 2
    synced = condition(status, "Synced")
    assert (synced["status"], synced["reason"]) == ("False", "SourcesDegraded")
    assert "platform" in synced["message"] and "platform-servers" in synced["message"]
    assert condition(status, "Ready")["status"] == "True" and status["phase"] == "Ready"
    failed = wait_for_event(kube, namespace, "merged", "SourceFailed")
    assert failed.type == "Warning" and "platform" in failed.message

    # 3. A crash while the ConfigMap is gone: the new process finds the platform's last good entries in
    # storage (each names its source), and the git source's next commit still lands.
    operator_process.kill()
    third = bare_repo.commit(
        {"registry.json": toolhive_catalogue({"tickets": "The team's ticket server, v2."})}
    )
    operator_process.start()
    registries.wait(
        "merged",
        platform_failing_team_at(third),
        timeout=90,
        what="after a restart: team at its third commit",
    )
    assert served(kube, namespace, "merged") == {
        "time-teller": (PLATFORM["time-teller"], "platform"),
        "fetcher": (PLATFORM["fetcher"], "platform"),
        "tickets": ("The team's ticket server, v2.", "team"),
    }

    # 4. The ConfigMap comes back, changed: the platform is current again, Synced is True.
    platform_configmap(kube, namespace, {"fetcher": "The platform's fetcher, v2."})
    obj = registries.wait("merged", both_current(third), timeout=60, what="platform back")
    status = obj["status"]
    assert served(kube, namespace, "merged") == {
        "fetcher": ("The platform's fetcher, v2.", "platform"),
        "tickets": ("The team's ticket server, v2.", "team"),
    }
    assert condition(status, "Synced")["status"] == "True"
    assert "conflicts" not in status
    assert "lastError" in sources(status)["platform"]  # the latest failure stays on record
    recovered = wait_for_event(kube, namespace, "merged", "SourceRecovered")
    assert "platform" in recovered.message


def test_an_unreachable_git_source_fails_alone(
    registries: Registries, kube: Kube, namespace: str, bare_repo: BareRepo, git_daemon: GitDaemonServer
) -> None:
    """A git source whose server does not answer, from the first sync on: the ConfigMap source is
    served, the git source is reported as never synced, and fixing its URL brings it in."""
    platform_configmap(kube, namespace, PLATFORM)
    commit = bare_repo.commit({"registry.json": toolhive_catalogue(TEAM)})
    dead = git_daemon.url(bare_repo).replace(f":{git_daemon.port}/", f":{free_port()}/")  # nothing listens
    registries.create("halfway", spec(dead))

    def team_missing(status: dict[str, Any]) -> bool:
        return sources(status).get("team", {}).get("state") == "Missing" and status.get("phase") == "Ready"

    obj = registries.wait("halfway", team_missing, timeout=90, what="team never synced, platform served")
    status = obj["status"]
    assert set(served(kube, namespace, "halfway")) == {"time-teller", "fetcher"}
    team = sources(status)["team"]
    assert team["lastErrorReason"] == "SourceUnreachable" and "revision" not in team
    assert condition(status, "SourceAvailable")["reason"] == "SourcesDegraded"
    assert "team" in condition(status, "Synced")["message"]

    registries.patch(
        "halfway",
        {"spec": {"sources": [spec(dead)["sources"][0], spec(git_daemon.url(bare_repo))["sources"][1]]}},
    )
    registries.wait("halfway", both_current(commit), timeout=60, what="team fixed")
    assert served(kube, namespace, "halfway")["tickets"] == (TEAM["tickets"], "team")


def test_a_failing_source_is_retried_on_a_backoff_not_at_the_interval(
    registries: Registries, kube: Kube, namespace: str, bare_repo: BareRepo, git_daemon: GitDaemonServer
) -> None:
    """The git source's repository has no commit yet, so it fails while the ConfigMap source is served;
    the registry syncs once an hour, yet it retries on the failed-sync backoff (5 s, 10 s, …), and the
    first commit is served without a trigger, long before the hour."""
    platform_configmap(kube, namespace, PLATFORM)
    registries.create("retrying", {**spec(git_daemon.url(bare_repo)), "syncPolicy": {"interval": "1h"}})

    def team_failed_twice(status: dict[str, Any]) -> bool:
        team = sources(status).get("team", {})
        return team.get("state") == "Missing" and team.get("consecutiveFailures", 0) >= 2

    obj = registries.wait("retrying", team_failed_twice, timeout=90, what="team retried before the interval")
    assert obj["status"]["phase"] == "Ready"
    assert set(served(kube, namespace, "retrying")) == {"time-teller", "fetcher"}
    assert sources(obj["status"])["platform"].get("consecutiveFailures") is None

    commit = bare_repo.commit({"registry.json": toolhive_catalogue(TEAM)})
    obj = registries.wait("retrying", both_current(commit), timeout=90, what="the first commit, untriggered")
    assert "consecutiveFailures" not in sources(obj["status"])["team"]
    assert served(kube, namespace, "retrying")["tickets"] == (TEAM["tickets"], "team")
