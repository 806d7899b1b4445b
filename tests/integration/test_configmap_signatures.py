"""Issue 18, Deliver 1 for ConfigMap sources: a detached signature of the catalogue, made by the real
`cosign sign-blob --key` (offline), checked by the operator before parsing. Unsigned, changed after
signing, or signed by another key: refused with SourceVerificationFailed, the last good catalogue kept;
two keys in the Secret let a rotation overlap."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from fixtures.cosign import Cosign
from fixtures.kube import Kube
from fixtures.operator import Registries

pytestmark = pytest.mark.integration

SHARED = Path(os.environ.get("MCPREG_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
SNAPSHOT = SHARED / "toolhive" / "registry-2026-02-18.json"


def reason_of(status: dict[str, Any]) -> str | None:
    return next((c["reason"] for c in status.get("conditions", []) if c["type"] == "SourceAvailable"), None)


def message_of(status: dict[str, Any]) -> str:
    return next((c["message"] for c in status.get("conditions", []) if c["type"] == "SourceAvailable"), "")


def test_a_configmap_catalogue_is_synced_only_with_a_good_detached_signature(
    registries: Registries, kube: Kube, namespace: str, tmp_path: Path
) -> None:
    cosign = Cosign(tmp_path)
    key, public = cosign.key_pair("current")
    kube.core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="catalogue-keys"),
            string_data={"cosign.pub": public.read_text()},
        ),
    )
    catalogue = SNAPSHOT.read_bytes()
    kube.core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="catalogue"), data={"registry.json": catalogue.decode()}
        ),
    )
    source = {
        "type": "configmap",
        "configMap": {"name": "catalogue", "verify": {"secretRef": {"name": "catalogue-keys"}}},
    }
    registries.create("cm-signed", {"source": source, "api": {"enabled": False}})
    unsigned = registries.wait("cm-signed", lambda s: reason_of(s) == "SourceVerificationFailed", timeout=60)[
        "status"
    ]
    assert "is not signed: no signature under key 'registry.json.sig'" in message_of(unsigned)

    def patch(data: dict[str, str]) -> None:
        kube.core.patch_namespaced_config_map("catalogue", namespace, {"data": data})

    patch({"registry.json.sig": cosign.sign(key, catalogue)})
    count = len(json.loads(catalogue)["servers"]) + len(json.loads(catalogue).get("remote_servers", {}))
    ready = registries.wait(
        "cm-signed",
        lambda s: s.get("phase") == "Ready" and s.get("syncStatus", {}).get("serverCount") == count,
        timeout=60,
    )["status"]
    good_hash = ready["syncStatus"]["lastSyncHash"]

    # One server fewer, the old signature left in place: refused, the signed catalogue stays.
    document = json.loads(catalogue)
    document["servers"].pop(sorted(document["servers"])[0])
    changed = json.dumps(document).encode()
    patch({"registry.json": changed.decode()})
    refused = registries.wait(
        "cm-signed",
        lambda s: reason_of(s) == "SourceVerificationFailed" and "does not verify" in message_of(s),
        timeout=60,
    )["status"]
    assert "Secret " + namespace + "/catalogue-keys" in message_of(refused)
    assert refused["syncStatus"]["lastSyncHash"] == good_hash

    # Signed by a key the Secret does not hold: refused too; once the Secret lists it beside the old one
    # (a rotation), the next change of the ConfigMap syncs.
    new_key, new_public = cosign.key_pair("next")
    patch({"registry.json.sig": cosign.sign(new_key, changed)})
    registries.wait(
        "cm-signed",
        lambda s: (
            reason_of(s) == "SourceVerificationFailed"
            and "does not verify" in message_of(s)
            and s["syncStatus"].get("lastSyncHash") == good_hash
        ),
        timeout=60,
    )
    kube.core.patch_namespaced_secret(
        "catalogue-keys", namespace, {"stringData": {"next.pub": new_public.read_text()}}
    )
    patch({"registry.json.sig": cosign.sign(new_key, changed) + "\n"})
    registries.wait(
        "cm-signed",
        lambda s: s.get("phase") == "Ready" and s.get("syncStatus", {}).get("serverCount") == count - 1,
        timeout=60,
    )
