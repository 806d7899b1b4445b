"""The pydantic spec and status models on their own: parsing, defaults, durations, conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from mcpreg_operator import spec as s

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
    spec = s.MCPRegistrySpec.model_validate(DESIGN_SPEC)
    assert spec.source.type is s.SourceType.GIT
    assert spec.source.format is s.CatalogFormat.AUTO
    assert spec.source.git is not None
    assert spec.source.git.branch == "main"
    assert spec.source.git.auth is not None
    assert spec.source.git.auth.secret_ref.name == "registry-git-credentials"
    assert spec.sync_policy is not None
    assert spec.sync_policy.interval_seconds == 3600
    assert spec.filter is not None and spec.filter.names is not None
    assert spec.filter.names.exclude == ["*-experimental"]
    assert spec.storage.type is s.StorageType.CONFIGMAP
    assert spec.storage.s3 is not None
    assert spec.storage.s3.server_side_encryption is s.ServerSideEncryption.NONE
    assert spec.api.enabled and spec.api.replicas == 1


def test_design_spec_round_trips_through_the_wire_format() -> None:
    spec = s.MCPRegistrySpec.model_validate(DESIGN_SPEC)
    dumped = spec.model_dump(mode="json", exclude_none=True)
    assert dumped["syncPolicy"] == {"interval": "1h"}
    assert dumped["storage"]["s3"]["credentialsSecretRef"] == {"name": "s3-creds"}
    assert s.MCPRegistrySpec.model_validate(dumped) == spec


def test_design_spec_as_printed_is_refused() -> None:
    # DESIGN.md shows git and configMap side by side; one source at a time is the rule.
    both = {
        **DESIGN_SPEC,
        "source": {**DESIGN_SPEC["source"], "configMap": {"name": "d", "key": "registry.json"}},
    }
    with pytest.raises(ValidationError, match=r"source\.configMap must not be set when source\.type is git"):
        s.MCPRegistrySpec.model_validate(both)


def test_minimal_spec_defaults() -> None:
    spec = s.MCPRegistrySpec.model_validate({"source": {"type": "configmap", "configMap": {"name": "data"}}})
    assert spec.source.format is s.CatalogFormat.AUTO
    assert spec.source.config_map is not None and spec.source.config_map.key == "registry.json"
    assert spec.sync_policy is None  # manual-only
    assert spec.filter is None
    assert spec.storage == s.Storage(type=s.StorageType.CONFIGMAP)
    assert spec.api == s.Api(enabled=True, replicas=1, image="", resources=s.ResourceRequirements())
    git = s.GitSource.model_validate({"repository": "https://example.com/r.git"})
    assert git.path == "registry.json"
    assert (git.branch, git.tag, git.commit) == (None, None, None)  # the remote HEAD


def test_snake_case_names_are_accepted_too() -> None:
    # Code builds models by attribute name; manifests use camelCase. Both must work.
    assert s.SyncPolicy(interval="5m").interval_seconds == 300
    ref = s.S3Storage(bucket="b-1", force_path_style=True, credentials_secret_ref=s.SecretReference(name="c"))
    assert ref.model_dump(exclude_none=True)["forcePathStyle"] is True


def test_unknown_spec_fields_are_refused() -> None:
    # kubectl's strict field validation refuses them, so a typo must not pass silently here either.
    with pytest.raises(ValidationError, match="extra"):
        s.MCPRegistrySpec.model_validate({"source": {"type": "git", "git": {"repo": "https://x/y"}}})


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
    assert s.parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "0", "1", "-5m", "+5m", "1d", "1 h", "h", ".5s", "1.s", "5M", "1µs", "5m\n"]
)
def test_parse_go_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="Go duration"):
        s.parse_go_duration(text)


def test_interval_bounds_are_exact() -> None:
    assert s.SyncPolicy(interval="30s").interval_seconds == s.MIN_SYNC_INTERVAL_SECONDS
    with pytest.raises(ValidationError, match="at least 30s"):
        s.SyncPolicy(interval="29999999999ns")
    with pytest.raises(ValidationError, match="at least 30s"):
        s.SyncPolicy(interval="29.9999999999s")  # truncated to whole nanoseconds, like Go
    assert s.SyncPolicy(interval="8760h").interval_seconds == s.MAX_SYNC_INTERVAL_SECONDS
    with pytest.raises(ValidationError, match="at most 8760h"):
        s.SyncPolicy(interval="8760h1ns")


def test_quantities() -> None:
    resources = s.ResourceRequirements.model_validate(
        {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": 2, "memory": "1e9"}}
    )
    assert resources.limits == {"cpu": 2, "memory": "1e9"}
    for bad in ("lots", "1.5 Gi", "", "64MB"):
        with pytest.raises(ValidationError):
            s.ResourceRequirements.model_validate({"limits": {"memory": bad}})


def test_registry_name() -> None:
    assert s.validate_registry_name("company-registry") == "company-registry"
    for bad in ("Company", "1st", "a.b", "a_b", "a-", "x" * 60, ""):
        with pytest.raises(ValueError, match="DNS-1035"):
            s.validate_registry_name(bad)


def test_whole_object() -> None:
    obj = s.MCPRegistry.model_validate(
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
        s.MCPRegistry.model_validate({**obj.model_dump(), "kind": "Other"})


# --- status --------------------------------------------------------------------------------------


def test_design_status_parses_and_dumps_identically() -> None:
    status = s.MCPRegistryStatus.model_validate(DESIGN_STATUS)
    assert status.phase is s.Phase.READY
    assert status.sync_status is not None
    assert status.sync_status.last_sync_time == datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    assert status.storage_ref is not None and status.storage_ref.config_maps == ["company-registry-data"]
    assert status.model_dump(mode="json", exclude_none=True) == DESIGN_STATUS


def test_status_ignores_unknown_fields() -> None:
    # Another operator version may have written a field this one does not know.
    status = s.MCPRegistryStatus.model_validate({"phase": "Ready", "kopf": {"progress": {}}})
    assert status.phase is s.Phase.READY


def test_times_are_utc_seconds_with_z() -> None:
    local = datetime(2026, 11, 21, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    sync = s.SyncStatus(last_sync_time=local)
    assert sync.model_dump(mode="json", exclude_none=True) == {"lastSyncTime": "2026-11-21T10:00:00Z"}
    with pytest.raises(ValidationError):
        s.SyncStatus(last_sync_time=datetime(2026, 1, 1))  # naive: which zone?


def test_set_condition_transitions() -> None:
    status = s.MCPRegistryStatus()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    t1 = t0 + timedelta(minutes=1)
    t2 = t0 + timedelta(minutes=2)
    assert status.set_condition(s.ConditionType.SYNCED, s.ConditionStatus.TRUE, "Synced", at=t0)
    assert not status.set_condition(s.ConditionType.SYNCED, s.ConditionStatus.TRUE, "Synced", at=t1)
    # Same status, new message: updated, but the transition time stays.
    assert status.set_condition(
        s.ConditionType.SYNCED, s.ConditionStatus.TRUE, "Synced", "102 servers", at=t1
    )
    synced = status.condition(s.ConditionType.SYNCED)
    assert synced is not None and synced.last_transition_time == t0 and synced.message == "102 servers"
    # Failure, then recovery: each is a transition, and recovery leaves the condition True.
    status.set_condition(s.ConditionType.SYNCED, s.ConditionStatus.FALSE, "SourceUnavailable", "down", at=t1)
    status.set_condition(s.ConditionType.SYNCED, s.ConditionStatus.TRUE, "Synced", "back", at=t2)
    synced = status.condition(s.ConditionType.SYNCED)
    assert synced is not None
    assert (synced.status, synced.last_transition_time) == (s.ConditionStatus.TRUE, t2)
    status.set_condition("Ready", s.ConditionStatus.TRUE, "Ready", observed_generation=4, at=t2)
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


def test_conditions_are_unique_and_well_formed() -> None:
    c: dict[str, Any] = {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    with pytest.raises(ValidationError, match="unique"):
        s.MCPRegistryStatus.model_validate({"conditions": [{**c, "reason": "A", "message": ""}] * 2})
    with pytest.raises(ValidationError):
        s.Condition.model_validate({**c, "reason": "not camel case", "message": ""})
    with pytest.raises(ValidationError):
        s.Condition.model_validate({**c, "status": "Maybe", "reason": "A", "message": ""})
