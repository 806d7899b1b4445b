"""The operator stores served documents, and rewrites what an older operator stored on its next pass.

An older operator stored canonical catalogue JSON and recorded in status that content's hash and a spec
hash without the stored format. Same source revision, same spec: before the stored format was part of
the spec hash, the cheap path would have confirmed the old generation and never rewritten it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mcpreg.catalog import parse_catalog
from mcpreg.catalog.served import is_served, read_served, render_served, served_documents
from mcpreg.signing import PrivateKeySigner, load_public_key, verify_blob
from mcpreg.storage.model import StorageLocation, StoredCatalog, WriteResult
from mcpreg_operator import decisions
from mcpreg_operator.spec.registry import MCPRegistrySpec
from mcpreg_operator.spec.status import MCPRegistryStatus, SyncPhase, SyncStatus
from mcpreg_operator.sync import LastGood, SourceSnapshot, SyncOptions, data_spec_hash, run_sync

REAL = "toolhive/registry-2026-02-18.json"
REVISION = "0123456789abcdef0123456789abcdef01234567"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
SPEC = MCPRegistrySpec.model_validate({"source": {"type": "configmap", "configMap": {"name": "data"}}})


def older_spec_hash(spec: MCPRegistrySpec) -> str:
    """`data_spec_hash` as the operator computed it before the stored format was part of it."""
    relevant = spec.model_dump(mode="json", by_alias=True, include={"source", "filter", "storage"})
    return (
        "sha256:"
        + hashlib.sha256(json.dumps(relevant, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    )


class Source:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.fetches = 0

    def describe(self) -> str:
        return "test source"

    async def revision(self) -> str:
        return REVISION

    async def fetch(self) -> SourceSnapshot:
        self.fetches += 1
        return SourceSnapshot(revision=REVISION, data=self.data, description="test source")


class Store:
    """Skips a write when the hash is unchanged, as both backends do."""

    def __init__(self, stored: StoredCatalog | None = None) -> None:
        self.stored = stored
        self.writes = 0

    async def current_hash(self) -> str | None:
        return self.stored.content_hash if self.stored else None

    async def location(self) -> StorageLocation | None:
        return StorageLocation(type="configmap", config_maps=("r-data",)) if self.stored else None

    async def write(self, catalog: StoredCatalog, *, before_publish: Any = None) -> WriteResult:
        previous = await self.current_hash()
        key = self.stored.signatures.key_id if self.stored and self.stored.signatures else None
        written = previous != catalog.content_hash or key != (
            catalog.signatures.key_id if catalog.signatures else None
        )
        if written:
            self.stored = catalog
            self.writes += 1
        return WriteResult(
            location=StorageLocation(type="configmap", config_maps=("r-data",)),
            written=written,
            content_hash=catalog.content_hash,
            previous_hash=previous,
            encoding="identity",
            stored_bytes=catalog.size,
        )

    async def delete(self) -> None:
        self.stored = None

    async def resource_names(self) -> tuple[str, ...]:
        return ("r-data",)


@pytest.fixture(scope="module")
def source_bytes(require_shared_data: Path) -> bytes:
    return (require_shared_data / REAL).read_bytes()


async def test_a_sync_stores_the_served_document(source_bytes: bytes) -> None:
    store = Store()
    outcome = await run_sync(
        spec=SPEC, source=Source(source_bytes), store=store, last_good=LastGood(None, None, None)
    )
    assert store.stored is not None and is_served(store.stored.data)
    assert store.stored.data == render_served(parse_catalog(source_bytes))
    assert outcome.content_hash == store.stored.content_hash and store.stored.verify()
    assert outcome.server_count == read_served(store.stored.data).server_count == 102


async def test_data_an_older_operator_stored_is_rewritten_on_the_next_pass(source_bytes: bytes) -> None:
    legacy = StoredCatalog.from_catalog(parse_catalog(source_bytes), revision=REVISION)
    store = Store(legacy)
    source = Source(source_bytes)
    last_good = LastGood(REVISION, legacy.content_hash, older_spec_hash(SPEC))
    outcome = await run_sync(spec=SPEC, source=source, store=store, last_good=last_good)
    assert source.fetches == 1 and store.writes == 1 and outcome.written
    assert store.stored is not None and is_served(store.stored.data)
    assert outcome.content_hash != legacy.content_hash

    # The pass after that takes the cheap path again: nothing fetched, nothing written.
    again = LastGood(REVISION, outcome.content_hash, data_spec_hash(SPEC))
    confirmed = await run_sync(spec=SPEC, source=source, store=store, last_good=again)
    assert (source.fetches, store.writes, confirmed.fetched) == (1, 1, False)


def new_signer() -> PrivateKeySigner:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return PrivateKeySigner.from_pem(pem)


async def test_a_signed_sync_stores_the_signatures_and_a_rotated_key_skips_the_cheap_path(
    source_bytes: bytes,
) -> None:
    signed_spec = MCPRegistrySpec.model_validate(
        {
            **SPEC.model_dump(mode="json", by_alias=True, exclude_none=True),
            "signing": {"secretRef": {"name": "k"}},
        }
    )
    assert data_spec_hash(signed_spec) != data_spec_hash(SPEC)  # adding a key forces a full sync
    store, source, first = Store(), Source(source_bytes), new_signer()
    outcome = await run_sync(
        spec=signed_spec,
        source=source,
        store=store,
        last_good=LastGood(None, None, None),
        options=SyncOptions(signer=first),
    )
    assert outcome.signing_key_id == first.key_id
    assert store.stored is not None and store.stored.signatures is not None
    public = load_public_key(store.stored.signatures.public_key)
    for name, document in served_documents(store.stored.data, store.stored.content_hash).items():
        verify_blob(public, store.stored.signatures.documents[name], document)

    # Same key: the cheap path. Another key (the Secret rotated): fetched, signed anew and written.
    last_good = LastGood(REVISION, outcome.content_hash, data_spec_hash(signed_spec), first.key_id)
    same = await run_sync(
        spec=signed_spec, source=source, store=store, last_good=last_good, options=SyncOptions(signer=first)
    )
    assert (same.fetched, same.signing_key_id, store.writes) == (False, first.key_id, 1)
    second = new_signer()
    rotated = await run_sync(
        spec=signed_spec, source=source, store=store, last_good=last_good, options=SyncOptions(signer=second)
    )
    assert (rotated.fetched, rotated.written, rotated.signing_key_id) == (True, True, second.key_id)
    assert store.stored.signatures is not None and store.stored.signatures.key_id == second.key_id


def test_a_status_written_by_an_older_operator_calls_for_a_sync() -> None:
    status = MCPRegistryStatus(
        observed_generation=1,
        sync_status=SyncStatus(phase=SyncPhase.COMPLETE, revision=REVISION, spec_hash=older_spec_hash(SPEC)),
    )
    observed = decisions.Observed(now=NOW, generation=1, trigger=None, first_pass=False)
    assert decisions.sync_reason(SPEC, status, observed) == "SpecChanged"
    assert status.sync_status is not None
    status.sync_status.spec_hash = data_spec_hash(SPEC)
    assert decisions.sync_reason(SPEC, status, observed) is None
