"""The pydantic spec and status models on their own: parsing, defaults, durations, conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from mcpreg_operator.spec.api import Api, ResourceRequirements
from mcpreg_operator.spec.base import SecretReference
from mcpreg_operator.spec.durations import parse_go_duration
from mcpreg_operator.spec.identity import MAX_SYNC_INTERVAL_SECONDS, MIN_SYNC_INTERVAL_SECONDS
from mcpreg_operator.spec.registry import MCPRegistry, MCPRegistrySpec
from mcpreg_operator.spec.source import CatalogFormat, GitSource, SourceType
from mcpreg_operator.spec.status import (
    Condition,
    ConditionStatus,
    ConditionType,
    MCPRegistryStatus,
    Phase,
    SyncStatus,
)
from mcpreg_operator.spec.storage import S3Storage, Storage, StorageType
from mcpreg_operator.spec.sync_policy import SyncPolicy

# The spec example from DESIGN.md, minus `configMap:` (shown there for `type: configmap` only).
DESIGN_SPEC = yaml.safe_load(
    """
displayName: Company MCP catalogue
source:
  type: git            # git | configmap   (later: url | api)
  format: auto         # auto | toolhive | upstream
  git:
    repository: https://git.example.com/platform/mcp-registry.git
    branch: main       # exactly one of branch | tag | commit; none = remote HEAD
    path: registry.json
    auth:              # optional; a Secret in the same namespace
      secretRef: {name: registry-git-credentials}   # keys: username+password, or token
syncPolicy:
  interval: 1h         # Go-style duration; omit for manual-only syncing
filter:
  names: {include: ["*"], exclude: ["*-experimental"]}   # globs
  tags:  {include: [], exclude: [deprecated]}
storage:
  type: configmap      # configmap | s3
  s3: {bucket: mcp-registries, region: us-east-1, endpoint: "", prefix: "", forcePathStyle: false,
       credentialsSecretRef: {name: s3-creds}, serverSideEncryption: "", kmsKeyId: ""}
api:
  enabled: true
  replicas: 1
  image: ""            # default: the operator's own image
  resources: {}
"""
)

DESIGN_STATUS = yaml.safe_load(
    """
observedGeneration: 3
phase: Ready
message: ""
syncStatus:
  phase: Complete
  message: ""
  revision: 9f2c0ab1e4d2c3b4a5f60718293a4b5c6d7e8f90
  lastSyncHash: sha256:0123abcd
  lastSyncTime: "2026-11-21T10:00:00Z"
  lastAttempt: "2026-11-21T10:00:00Z"
  attemptCount: 0
  serverCount: 102
apiStatus: {phase: Ready, endpoint: "http://company-registry-api.default.svc:8080", readyReplicas: 1,
            readySince: "2026-11-21T10:00:05Z"}
storageRef: {type: configmap, configMaps: [company-registry-data]}
lastManualSyncTrigger: "2026-11-21T09:59:00Z"
conditions:
- {type: Ready, status: "True", observedGeneration: 3, lastTransitionTime: "2026-11-21T10:00:05Z",
   reason: Ready, message: ""}
"""
)


def test_design_spec_parses_with_its_meaning() -> None:
    spec = MCPRegistrySpec.model_validate(DESIGN_SPEC)
    assert spec.single_source.type is SourceType.GIT
    assert spec.single_source.format is CatalogFormat.AUTO
    assert spec.single_source.git is not None
    assert spec.single_source.git.branch == "main"
    assert spec.single_source.git.auth is not None
    assert spec.single_source.git.auth.secret_ref.name == "registry-git-credentials"
    assert spec.sync_policy is not None
    assert spec.sync_policy.interval_seconds == 3600
    assert spec.filter is not None and spec.filter.names is not None
    assert spec.filter.names.exclude == ["*-experimental"]
    assert spec.storage.type is StorageType.CONFIGMAP
    assert spec.storage.s3 is not None
    assert spec.storage.s3.server_side_encryption == ""
    assert spec.api.enabled and spec.api.replicas == 1


def test_design_spec_round_trips_through_the_wire_format() -> None:
    spec = MCPRegistrySpec.model_validate(DESIGN_SPEC)
    dumped = spec.model_dump(mode="json", exclude_none=True)
    assert dumped["syncPolicy"] == {"interval": "1h"}
    assert dumped["storage"]["s3"]["credentialsSecretRef"] == {"name": "s3-creds"}
    assert MCPRegistrySpec.model_validate(dumped) == spec


def test_minimal_spec_defaults() -> None:
    spec = MCPRegistrySpec.model_validate({"source": {"type": "configmap", "configMap": {"name": "data"}}})
    assert spec.single_source.format is CatalogFormat.AUTO
    assert spec.single_source.config_map is not None and spec.single_source.config_map.key == "registry.json"
    assert spec.sync_policy is None  # manual-only
    assert spec.filter is None
    assert spec.storage == Storage(type=StorageType.CONFIGMAP)
    assert spec.api == Api(enabled=True, replicas=1, image="", resources=ResourceRequirements())
    git = GitSource.model_validate({"repository": "https://example.com/r.git"})
    assert git.path == "registry.json"
    assert (git.branch, git.tag, git.commit) == (None, None, None)  # the remote HEAD


def test_snake_case_names_are_accepted_too() -> None:
    # Code builds models by attribute name; manifests use camelCase. Both must work.
    assert SyncPolicy(interval="5m").interval_seconds == 300
    ref = S3Storage(bucket="b-1", force_path_style=True, credentials_secret_ref=SecretReference(name="c"))
    assert ref.model_dump(exclude_none=True)["forcePathStyle"] is True


def test_unknown_spec_fields_are_ignored() -> None:
    # A newer CRD may admit fields this operator does not know: it acts on the ones it does know.
    spec = MCPRegistrySpec.model_validate(
        {
            "source": {"type": "git", "git": {"repository": "https://x/y", "depth": 1}, "cache": {}},
            "rollout": {"maxUnavailable": 1},
        }
    )
    assert spec.single_source.git is not None and spec.single_source.git.repository == "https://x/y"
    assert "depth" not in spec.single_source.git.model_dump() and "rollout" not in spec.model_dump()


def test_wrong_types_are_refused() -> None:
    # The model keeps the schema's types: what it cannot read becomes an InvalidSpec condition.
    for spec in (
        {"source": {"type": "git", "git": {"repository": 5}}},
        {"source": {"type": "svn"}},
        {"source": {"type": "git"}, "api": {"replicas": "two"}},
        {"source": {"type": "git"}, "api": {"enabled": "true"}},
        {"storage": {"type": "configmap"}},
    ):
        with pytest.raises(ValidationError):
            MCPRegistrySpec.model_validate(spec)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("250ms", 0.25),
        ("1h0m0.5s", 3600.5),
        ("1500us", 0.0015),
        ("10ns", 1e-8),
        ("2h45m", 9900),
        ("1s1h", 3601),  # Go accepts components in any order
    ],
)
def test_parse_go_duration(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "0", "1", "-5m", "+5m", "1d", "1 h", "h", ".5s", "1.s", "5M", "1µs", "5m\n"]
)
def test_parse_go_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="Go duration"):
        parse_go_duration(text)


def test_durations_are_truncated_to_nanoseconds_like_go() -> None:
    # Each component is truncated to whole nanoseconds, as Go does (so 29.9999999999s is 29.999999999s).
    assert parse_go_duration("29999999999ns") < MIN_SYNC_INTERVAL_SECONDS
    assert parse_go_duration("29.9999999999s") == 29.999999999
    assert parse_go_duration("30s") == MIN_SYNC_INTERVAL_SECONDS
    assert parse_go_duration("8760h") == MAX_SYNC_INTERVAL_SECONDS


def test_interval_is_never_shorter_than_the_minimum() -> None:
    # The CRD refuses shorter intervals; one admitted by an older or hand-made CRD is raised to the
    # minimum rather than turning the operator into a load generator.
    assert SyncPolicy(interval="8760h").interval_seconds == MAX_SYNC_INTERVAL_SECONDS
    assert SyncPolicy(interval="45s").interval_seconds == 45
    assert SyncPolicy(interval="1ms").interval_seconds == MIN_SYNC_INTERVAL_SECONDS
    assert SyncPolicy().interval_seconds is None


def test_quantities_are_integers_or_strings() -> None:
    resources = ResourceRequirements.model_validate(
        {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": 2, "memory": "1e9"}}
    )
    assert resources.limits == {"cpu": 2, "memory": "1e9"}
    for bad in (True, 0.5, None, ["1"]):
        with pytest.raises(ValidationError):
            ResourceRequirements.model_validate({"limits": {"memory": bad}})


def test_whole_object() -> None:
    obj = MCPRegistry.model_validate(
        {
            "apiVersion": "mcpregistry.dev/v1alpha1",
            "kind": "MCPRegistry",
            "metadata": {"name": "company-registry", "namespace": "default", "uid": "1234", "generation": 3},
            "spec": DESIGN_SPEC,
            "status": DESIGN_STATUS,
        }
    )
    assert obj.metadata.name == "company-registry"
    assert obj.metadata.model_extra == {"uid": "1234", "generation": 3}
    with pytest.raises(ValidationError):
        MCPRegistry.model_validate({**obj.model_dump(), "kind": "Other"})


# --- status --------------------------------------------------------------------------------------


def test_design_status_parses_and_dumps_identically() -> None:
    status = MCPRegistryStatus.model_validate(DESIGN_STATUS)
    assert status.phase is Phase.READY
    assert status.sync_status is not None
    assert status.sync_status.last_sync_time == datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    assert status.storage_ref is not None and status.storage_ref.config_maps == ["company-registry-data"]
    assert status.model_dump(mode="json", exclude_none=True) == DESIGN_STATUS


def test_status_ignores_unknown_fields() -> None:
    # Another operator version may have written a field this one does not know.
    status = MCPRegistryStatus.model_validate({"phase": "Ready", "kopf": {"progress": {}}})
    assert status.phase is Phase.READY


def test_times_are_utc_seconds_with_z() -> None:
    local = datetime(2026, 11, 21, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    sync = SyncStatus(last_sync_time=local)
    assert sync.model_dump(mode="json", exclude_none=True) == {"lastSyncTime": "2026-11-21T10:00:00Z"}
    with pytest.raises(ValidationError):
        SyncStatus(last_sync_time=datetime(2026, 1, 1))  # naive: which zone?


def test_set_condition_transitions() -> None:
    status = MCPRegistryStatus()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    t1 = t0 + timedelta(minutes=1)
    t2 = t0 + timedelta(minutes=2)
    assert status.set_condition(ConditionType.SYNCED, ConditionStatus.TRUE, "Synced", at=t0)
    assert not status.set_condition(ConditionType.SYNCED, ConditionStatus.TRUE, "Synced", at=t1)
    # Same status, new message: updated, but the transition time stays.
    assert status.set_condition(ConditionType.SYNCED, ConditionStatus.TRUE, "Synced", "102 servers", at=t1)
    synced = status.condition(ConditionType.SYNCED)
    assert synced is not None and synced.last_transition_time == t0 and synced.message == "102 servers"
    # Failure, then recovery: each is a transition, and recovery leaves the condition True.
    status.set_condition(ConditionType.SYNCED, ConditionStatus.FALSE, "SourceUnavailable", "down", at=t1)
    status.set_condition(ConditionType.SYNCED, ConditionStatus.TRUE, "Synced", "back", at=t2)
    synced = status.condition(ConditionType.SYNCED)
    assert synced is not None
    assert (synced.status, synced.last_transition_time) == (ConditionStatus.TRUE, t2)
    status.set_condition("Ready", ConditionStatus.TRUE, "Ready", observed_generation=4, at=t2)
    assert [c.type for c in status.conditions] == ["Synced", "Ready"]
    dumped = status.model_dump(mode="json", exclude_none=True)["conditions"][1]
    assert dumped == {
        "type": "Ready",
        "status": "True",
        "observedGeneration": 4,
        "lastTransitionTime": "2026-01-01T00:02:00Z",
        "reason": "Ready",
        "message": "",
    }


def test_conditions_are_well_formed() -> None:
    c: dict[str, Any] = {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    with pytest.raises(ValidationError):
        Condition.model_validate({**c, "reason": "not camel case", "message": ""})
    with pytest.raises(ValidationError):
        Condition.model_validate({**c, "status": "Maybe", "reason": "A", "message": ""})
