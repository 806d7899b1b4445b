"""The controller's decisions on their own: when a sync is due, what status becomes, when to wake."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mcpreg.kube import ForbiddenError, KubeUnavailableError, ServerError, TooManyRequestsError
from mcpreg.storage.errors import StorageConflictError, StorageError
from mcpreg.storage.s3_errors import S3BucketMissingError
from mcpreg_operator import decisions
from mcpreg_operator.api_reconciler import ApiReport, apply_api_report
from mcpreg_operator.phase import derive_overall
from mcpreg_operator.sources.errors import SourceError, SourceErrorKind
from mcpreg_operator.spec.registry import MCPRegistrySpec
from mcpreg_operator.spec.status import ApiPhase, MCPRegistryStatus, Phase, SyncPhase, SyncStatus
from mcpreg_operator.sync import SyncFailure, SyncOutcome, SyncStage, data_spec_hash, failure_from_error

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
SPEC_DOC: dict[str, Any] = {
    "source": {
        "type": "git",
        "git": {"repository": "https://git.example.com/catalog.git", "branch": "main", "path": "r.json"},
    },
    "syncPolicy": {"interval": "1h"},
}


def spec(**changes: Any) -> MCPRegistrySpec:
    return MCPRegistrySpec.model_validate({**SPEC_DOC, **changes})


def synced_status(s: MCPRegistrySpec, *, at: datetime = NOW - timedelta(minutes=10)) -> MCPRegistryStatus:
    return MCPRegistryStatus(
        observed_generation=1,
        last_manual_sync_trigger="t1",
        sync_status=SyncStatus(
            phase=SyncPhase.COMPLETE,
            revision="a" * 40,
            last_sync_hash="sha256:" + "1" * 64,
            last_sync_time=at,
            last_attempt=at,
            attempt_count=0,
            server_count=3,
            spec_hash=data_spec_hash(s),
        ),
    )


def observed(**changes: Any) -> decisions.Observed:
    base: dict[str, Any] = {"now": NOW, "generation": 1, "trigger": "t1", "first_pass": False}
    return decisions.Observed(**{**base, **changes})


def test_first_pass_always_syncs() -> None:
    s = spec()
    assert decisions.sync_reason(s, synced_status(s), observed(first_pass=True)) == "Startup"


def test_nothing_due_when_synced_recently() -> None:
    s = spec()
    assert decisions.sync_reason(s, synced_status(s), observed()) is None


def test_manual_trigger_is_due_until_recorded() -> None:
    s = spec()
    status = synced_status(s)
    assert decisions.sync_reason(s, status, observed(trigger="t2")) == "ManualTrigger"
    decisions.record_trigger(status, trigger="t2")
    assert decisions.sync_reason(s, status, observed(trigger="t2")) is None


def test_a_trigger_read_by_the_startup_sync_is_acknowledged_by_it() -> None:
    s = spec()
    status = synced_status(s)
    assert decisions.sync_reason(s, status, observed(trigger="t3", first_pass=True)) == "Startup"
    decisions.record_trigger(status, trigger="t3")
    assert status.last_manual_sync_trigger == "t3"
    assert decisions.sync_reason(s, status, observed(trigger="t3")) is None


def test_data_shaping_spec_change_syncs_but_an_api_change_does_not() -> None:
    s = spec()
    status = synced_status(s)
    moved = spec(source={**SPEC_DOC["source"], "git": {**SPEC_DOC["source"]["git"], "branch": "next"}})
    assert decisions.sync_reason(moved, status, observed(generation=2)) == "SpecChanged"
    replicas = spec(api={"replicas": 3})
    assert decisions.sync_reason(replicas, status, observed(generation=2)) is None


def test_a_failed_attempt_for_this_generation_waits_for_the_backoff() -> None:
    status = synced_status(spec())
    moved = spec(filter={"names": {"include": ["a*"]}})
    failure = SyncFailure(SyncStage.SOURCE, "SourceUnreachable", "down")
    decisions.record_failure(status, failure, generation=2, started=NOW, now=NOW)
    assert decisions.sync_reason(moved, status, observed(generation=2)) is None
    later = observed(generation=2, now=NOW + timedelta(seconds=5))
    assert decisions.sync_reason(moved, status, later) == "Retry"


def test_interval_and_events() -> None:
    s = spec()
    status = synced_status(s, at=NOW - timedelta(hours=1, seconds=1))
    assert decisions.sync_reason(s, status, observed()) == "Interval"
    fresh = synced_status(s)
    assert decisions.sync_reason(s, fresh, observed(pending={"StorageChanged"})) == "StorageChanged"
    assert decisions.sync_reason(s, fresh, observed(pending={"SourceChanged"})) == "SourceChanged"


def test_retries_back_off_exponentially() -> None:
    s = spec()
    status = synced_status(s)
    failure = SyncFailure(SyncStage.SOURCE, "SourceUnreachable", "down")
    delays = []
    for _ in range(4):
        decisions.record_failure(status, failure, generation=1, started=NOW, now=NOW)
        delays.append(decisions.seconds_until_next_pass(s, status, NOW, 0))
    assert delays == [5.0, 10.0, 20.0, 40.0]


def test_next_pass_after_success_is_the_interval_and_manual_only_waits_for_a_wake_up() -> None:
    s = spec()
    assert decisions.seconds_until_next_pass(s, synced_status(s), NOW, 0) == pytest.approx(50 * 60)
    manual = spec(syncPolicy={})
    assert decisions.seconds_until_next_pass(manual, synced_status(manual), NOW, 0) is None
    # A pass that failed outside a sync is retried even when no sync is due.
    assert decisions.seconds_until_next_pass(manual, synced_status(manual), NOW, 2) == 10.0
    assert decisions.seconds_until_next_pass(None, MCPRegistryStatus(), NOW, 30) == decisions.PASS_RETRY_CAP_S


def test_failure_keeps_the_last_good_data_and_says_so() -> None:
    s = spec()
    status = synced_status(s)
    failure = SyncFailure(SyncStage.DATA, "InvalidData", "servers.x.transport: must be one of …")
    decisions.record_failure(status, failure, generation=1, started=NOW, now=NOW)
    derive_overall(status, api_enabled=False, generation=1)
    assert status.phase is Phase.FAILED
    assert status.sync_status is not None and status.sync_status.attempt_count == 1
    assert status.sync_status.last_sync_hash == "sha256:" + "1" * 64  # still what is stored
    assert "still serving the last good catalogue (3 servers" in (status.message or "")
    conditions = {c.type: (c.status.value, c.reason) for c in status.conditions}
    assert conditions["DataValid"] == ("False", "InvalidData")
    assert conditions["SourceAvailable"] == ("True", "SourceReachable")
    assert conditions["Synced"] == ("False", "InvalidData")


def test_success_after_failures_resets_and_records_the_spec() -> None:
    s = spec()
    status = synced_status(s)
    decisions.record_failure(
        status, SyncFailure(SyncStage.SOURCE, "SourceUnreachable", "down"), generation=1, started=NOW, now=NOW
    )
    outcome = SyncOutcome(
        revision="b" * 40,
        content_hash="sha256:" + "2" * 64,
        server_count=5,
        written=True,
        fetched=True,
        storage_location={"type": "configmap", "configMaps": ["reg-data"]},
        source="git …",
    )
    decisions.record_success(status, outcome, spec=s, generation=1, started=NOW, now=NOW)
    derive_overall(status, api_enabled=False, generation=1)
    sync = status.sync_status
    assert sync is not None and sync.attempt_count == 0 and sync.server_count == 5
    assert sync.spec_hash == data_spec_hash(s) and sync.phase is SyncPhase.COMPLETE
    assert status.phase is Phase.READY
    assert all(c.status.value == "True" for c in status.conditions)


def test_mutations_reapply_cleanly_to_a_fresh_copy() -> None:
    """A lost conditional write re-applies the same mutations to the newer status: the result must
    depend only on that status, not on the copy the pass started from."""
    s = spec()
    failure = SyncFailure(SyncStage.SOURCE, "SourceUnreachable", "down")
    first, second = synced_status(s), synced_status(s)
    second.last_manual_sync_trigger = "someone-else"
    for status in (first, second):
        decisions.record_failure(status, failure, generation=1, started=NOW, now=NOW)
    assert first.sync_status == second.sync_status
    assert second.last_manual_sync_trigger == "someone-else"


def test_api_report_sets_ready_since_once() -> None:
    status = MCPRegistryStatus()
    ready = ApiReport(ApiPhase.READY, 2, "2/2 replicas ready", endpoint="http://r-api.ns.svc:8080")
    apply_api_report(status, ready, generation=1, now=NOW)
    apply_api_report(status, ready, generation=1, now=NOW + timedelta(minutes=5))
    assert status.api_status is not None and status.api_status.ready_since == NOW
    apply_api_report(status, ApiReport(ApiPhase.DEPLOYING, 1, "rolling out"), generation=1, now=NOW)
    assert status.api_status.ready_since is None and status.api_status.endpoint is None


def test_invalid_spec_and_workload_error() -> None:
    status = MCPRegistryStatus()
    decisions.record_invalid_spec(status, "spec.source: field required", generation=4, now=NOW)
    assert status.phase is Phase.FAILED and status.observed_generation == 4
    decisions.record_workload_error(status, "HTTP 403 Forbidden", generation=4, now=NOW)
    api = status.condition("APIReady")
    assert api is not None and api.reason == "WorkloadError" and "403" in api.message


@pytest.mark.parametrize(
    ("error", "stage", "reason"),
    [
        (SourceError(SourceErrorKind.NOT_FOUND, "no file"), SyncStage.SOURCE, "SourceNotFound"),
        (
            ForbiddenError(403, "Forbidden", "configmaps is forbidden"),
            SyncStage.STORAGE,
            "KubernetesForbidden",
        ),
        (ServerError(500, "InternalError", "etcd"), SyncStage.STORAGE, "KubernetesInternalError"),
        (TooManyRequestsError(429, "TooManyRequests", ""), SyncStage.STORAGE, "KubernetesTooManyRequests"),
        (KubeUnavailableError("connection refused"), SyncStage.STORAGE, "KubernetesUnavailable"),
        (StorageConflictError("another writer"), SyncStage.STORAGE, "StorageConflict"),
        (StorageError("refused"), SyncStage.STORAGE, "StorageFailed"),
        (S3BucketMissingError("no bucket"), SyncStage.STORAGE, "BucketMissing"),
        (ZeroDivisionError("secret=hunter2"), SyncStage.INTERNAL, "InternalError"),
    ],
)
def test_every_error_becomes_one_classified_failure(error: Exception, stage: SyncStage, reason: str) -> None:
    failure = failure_from_error(error, SyncStage.STORAGE)
    assert (failure.stage, failure.reason) == (stage, reason)
    assert "hunter2" not in failure.message  # a bug's text never reaches status
    status = MCPRegistryStatus()
    decisions.record_failure(status, failure, generation=1, started=NOW, now=NOW)  # a valid reason
    MCPRegistryStatus.model_validate(status.model_dump(mode="json", by_alias=True))
