"""``status``: phases, conditions (metav1.Condition's shape) and the models of what the operator
reports. Written by the operator only; read back on every pass."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, Field, PlainSerializer

from mcpreg_operator.spec.base import ResourceModel
from mcpreg_operator.spec.storage import StorageType

# metav1.Condition field patterns (copied from k8s.io/apimachinery so status matches the standard shape).
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with second precision and a ``Z``, like metav1.Time."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: A timestamp as Kubernetes writes it; naive datetimes are refused so no local time leaks in.
K8sTime = Annotated[AwareDatetime, PlainSerializer(format_time, return_type=str)]


def now() -> datetime:
    """The current time, truncated to what a K8sTime can hold."""
    return datetime.now(UTC).replace(microsecond=0)


#: Phase of the latest sync.
SyncPhase = StrEnum("SyncPhase", {"SYNCING": "Syncing", "COMPLETE": "Complete", "FAILED": "Failed"})


#: Phase of the registry API workload.
ApiPhase = StrEnum(
    "ApiPhase",
    {"NOT_STARTED": "NotStarted", "DEPLOYING": "Deploying", "READY": "Ready", "UNHEALTHY": "Unhealthy"},
)


class Phase(StrEnum):
    """Overall phase of the MCPRegistry, derived from the two above (``mcpreg_operator.phase``)."""

    PENDING = "Pending"
    SYNCING = "Syncing"
    READY = "Ready"
    FAILED = "Failed"
    TERMINATING = "Terminating"


class ConditionType(StrEnum):
    """Condition types the operator maintains (all of them, always)."""

    SOURCE_AVAILABLE = "SourceAvailable"
    DATA_VALID = "DataValid"
    SYNCED = "Synced"
    API_READY = "APIReady"
    READY = "Ready"


#: Status of a condition.
ConditionStatus = StrEnum("ConditionStatus", {"TRUE": "True", "FALSE": "False", "UNKNOWN": "Unknown"})


class Condition(ResourceModel):
    """One aspect of the MCPRegistry's state, in the standard metav1.Condition shape."""

    type: str = Field(
        max_length=316,
        pattern=CONDITION_TYPE_PATTERN,
        description="Type of condition: SourceAvailable, DataValid, Synced, APIReady or Ready.",
    )
    status: ConditionStatus = Field(description="Status of the condition: True, False or Unknown.")
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="metadata.generation of the spec this condition was computed from.",
        json_schema_extra={"format": "int64"},
    )
    last_transition_time: K8sTime = Field(description="When the condition's status last changed.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=CONDITION_REASON_PATTERN,
        description="Machine-readable CamelCase reason for the condition's status.",
    )
    message: str = Field(max_length=32768, description="Human-readable detail; may be empty.")


def _event_hash_field(of_what: str, event: str, unchanged: str) -> Any:
    """The hash of a set whose changes post a Warning Event, so that the same set is not reported again."""
    return Field(
        default=None,
        description=(
            f"Hash {of_what}: a Warning Event {event} is posted when it changes, not again while {unchanged}."
        ),
    )


class SyncStatus(ResourceModel):
    """State of syncing the catalogue from its source."""

    phase: SyncPhase | None = Field(default=None, description="Syncing, Complete or Failed.")
    message: str | None = Field(default=None, description="What happened in the latest sync, for people.")
    revision: str | None = Field(
        default=None,
        description="Source revision of the stored data: git commit SHA or ConfigMap resourceVersion.",
    )
    last_sync_hash: str | None = Field(
        default=None, description="Content hash (sha256:...) of the stored catalogue."
    )
    last_sync_time: K8sTime | None = Field(
        default=None, description="When the latest successful sync finished."
    )
    last_attempt: K8sTime | None = Field(default=None, description="When the latest sync attempt started.")
    attempt_count: int | None = Field(
        default=None,
        ge=0,
        description="Consecutive failed attempts since the last success (0 after a success).",
    )
    server_count: int | None = Field(
        default=None, ge=0, description="Number of servers in the stored catalogue."
    )
    skipped_count: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Entries of the source document left out of the stored catalogue because they cannot be "
            "served (spec.validation.onInvalidEntry Skip); the DataValid condition names the first few "
            "with their JSON paths."
        ),
    )
    warning_count: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Warnings about the stored catalogue's entries: legacy or unknown shapes that were normalised "
            "and are served (a missing tier defaulted, a timestamp form rewritten, ...)."
        ),
    )
    skipped_hash: str | None = _event_hash_field(
        "(sha256:...) of the set of skipped entries", "EntriesSkipped", "the same entries stay skipped"
    )
    spec_hash: str | None = Field(
        default=None,
        description=(
            "Hash of what shaped the stored data (the spec's source, filter, validation and storage, and "
            "the stored format); a change that alters it forces a full sync even when the source revision is "
            "unchanged, so an upgraded operator rewrites data an older one stored."
        ),
    )
    signing_key_id: str | None = Field(
        default=None,
        description=(
            "Key id (sha256: of the public key's DER) of the key that signed the stored catalogue; "
            "absent when it is not signed."
        ),
    )


class ApiStatus(ResourceModel):
    """State of the registry API workload."""

    phase: ApiPhase | None = Field(default=None, description="NotStarted, Deploying, Ready or Unhealthy.")
    endpoint: str | None = Field(
        default=None, description="In-cluster URL of the registry API; set only while it is ready."
    )
    ready_replicas: int | None = Field(default=None, ge=0, description="Number of ready API pods.")
    ready_since: K8sTime | None = Field(default=None, description="When the API last became ready.")
    message: str | None = Field(default=None, description="Why the API is not ready, for people.")


class S3StorageRef(ResourceModel):
    """Location of the catalogue in S3."""

    bucket: str = Field(description="Bucket holding the catalogue.")
    prefix: str | None = Field(default=None, description="Key prefix of this MCPRegistry's objects.")
    key: str | None = Field(
        default=None, description="Key of the pointer object naming the current generation."
    )
    endpoint: str | None = Field(default=None, description="Endpoint of the S3 service; absent for AWS.")
    region: str | None = Field(default=None, description="Region of the bucket, when one was set.")


class StorageRef(ResourceModel):
    """Where the current catalogue is stored."""

    type: StorageType = Field(description="configmap or s3.")
    config_maps: list[Annotated[str, Field(description="Name of a ConfigMap.")]] = Field(
        default_factory=list, description="Names of the ConfigMaps holding the catalogue, in order."
    )
    s3: S3StorageRef | None = Field(default=None, description="S3 location, when type is s3.")


class SourceState(StrEnum):
    """What the stored catalogue holds of a source."""

    CURRENT = "Current"  # its entries at the revision read in the latest sync
    LAST_GOOD = "LastGood"  # it failed; its entries of the last revision that worked are served
    MISSING = "Missing"  # it failed and never worked: nothing of it is served


class SourceStatus(ResourceModel):
    """One source of ``spec.sources``, as of the latest sync."""

    name: str = Field(max_length=63, description="The source's name in spec.sources.")
    # A string, not the enum: a status a newer operator wrote (a type this one does not know) still parses.
    type: str = Field(max_length=63, description="The source's type (git, configmap, url, ...).")
    state: SourceState = Field(
        description=(
            "Current: its entries at the revision just read are served. LastGood: it failed; the entries "
            "of its last good revision are served. Missing: it failed and never worked; nothing of it "
            "is served."
        )
    )
    revision: str | None = Field(
        default=None, description="Revision of the source whose entries are served (absent: none)."
    )
    entry_count: int | None = Field(
        default=None,
        ge=0,
        description="Entries (server versions) served from this source, after the merge and both filters.",
    )
    conflicts: int | None = Field(
        default=None,
        ge=0,
        description="Server names of this source left out because a source listed before it has them.",
    )
    last_success_time: K8sTime | None = Field(
        default=None, description="When the source was last read and its data used."
    )
    last_error: str | None = Field(
        default=None, max_length=4096, description="The latest failure of this source, for people."
    )
    last_error_reason: str | None = Field(
        default=None, max_length=128, description="Machine-readable reason of the latest failure."
    )
    last_error_time: K8sTime | None = Field(default=None, description="When the latest failure happened.")
    consecutive_failures: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Syncs in a row in which this source failed (absent while it works). While any source fails, "
            "the registry syncs again after 5 s, 10 s, 20 s, … doubling with the largest count, at most "
            "the sync interval apart (10 minutes without one), so a source that recovers is served again "
            "without waiting for the interval."
        ),
    )


class NameConflict(ResourceModel):
    """A server name found in several sources: the first source in spec.sources serves it."""

    name: str = Field(max_length=512, description="The server name.")
    source: str = Field(max_length=63, description="The source its entries are served from.")
    shadowed: str = Field(max_length=63, description="A later source that has it too, left out.")


class ConflictsStatus(ResourceModel):
    """Server names that several sources have."""

    count: int = Field(ge=0, description="How many (name, left-out source) pairs there are.")
    hash: str | None = _event_hash_field("of the whole set", "NameConflicts", "the same conflicts stay")
    items: list[NameConflict] = Field(
        default_factory=list, max_length=20, description="The first conflicts, in spec.sources order."
    )


class MCPRegistryStatus(ResourceModel):
    """Observed state of an MCPRegistry, written by the operator only."""

    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="metadata.generation last acted upon by the operator.",
        json_schema_extra={"format": "int64"},
    )
    phase: Phase | None = Field(
        default=None, description="Overall phase: Pending, Syncing, Ready, Failed or Terminating."
    )
    message: str | None = Field(default=None, description="Summary of the current state, for people.")
    sync_status: SyncStatus | None = Field(default=None, description="State of syncing from the source.")
    api_status: ApiStatus | None = Field(default=None, description="State of the registry API.")
    storage_ref: StorageRef | None = Field(default=None, description="Where the current catalogue is stored.")
    sources: list[SourceStatus] | None = Field(
        default=None,
        description="Each source of spec.sources, in order (absent for the one-source form, spec.source).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    conflicts: ConflictsStatus | None = Field(
        default=None, description="Server names several sources of spec.sources have (absent: none)."
    )
    last_manual_sync_trigger: str | None = Field(
        default=None,
        description=(
            "The last value of the mcpregistry.dev/sync-trigger annotation acted upon (whether that "
            "sync succeeded or failed). Setting the annotation to any other value triggers a sync."
        ),
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="SourceAvailable, DataValid, Synced, APIReady and Ready conditions.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )

    def condition(self, type_: ConditionType | str) -> Condition | None:
        """The condition of that type, if present."""
        return next((c for c in self.conditions if c.type == type_), None)

    def set_condition(
        self,
        type_: ConditionType | str,
        status: ConditionStatus,
        reason: str,
        message: str = "",
        *,
        observed_generation: int | None = None,
        at: datetime | None = None,
    ) -> bool:
        """Set a condition in place; returns True if anything changed.

        ``lastTransitionTime`` moves only when the status changes, as metav1 requires; a recovery
        (False -> True) is a transition like any other, so conditions never stay stale after it.
        """
        current = self.condition(type_)
        if (
            current is not None
            and current.status == status
            and current.reason == reason
            and current.message == message
            and current.observed_generation == observed_generation
        ):
            return False
        transition = current.last_transition_time if current and current.status == status else (at or now())
        new = Condition(
            type=str(type_),
            status=status,
            observed_generation=observed_generation,
            last_transition_time=transition,
            reason=reason,
            message=message,
        )
        self.conditions = [new if c.type == type_ else c for c in self.conditions]
        if current is None:
            self.conditions.append(new)
        return True
