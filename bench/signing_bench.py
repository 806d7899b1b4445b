"""What signing costs per sync, and verifying per document, for a 10,000-server catalogue.

Per sync (the operator, `sync.sign_stored`): split the served document into the documents served
whole (`served_documents`: the ToolHive document decompressed, the upstream list joined) and sign each
(ECDSA P-256 and Ed25519), compared with the rest of the sync's CPU work on the same data (parse,
validate, render the served document, hash, compress for storage: `prepare`; the git fetch and the
storage requests come on top, so the share of a whole sync is smaller still). Per document (a
client, `mcpreg verify`): verify each document's signature. Per entry: what an API replica adds to
each build (every entry's digest and the entries manifest, `snapshot.entry_provenance`) and what a
host's check of one entry costs once fetched (`mcpreg verify --entry`'s `verify_entry`: the manifest's
signature, parsing it, the entry's canonical digest). Median of `--runs`, in this process.

    .venv/bin/python bench/signing_bench.py [--servers 10000] [--runs 5] [--json]
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import cmdline  # bench/ is the script's directory: sys.path[0]
from storage_bench import SHARED_DATA  # bench/ is the script's directory: sys.path[0]

SOURCE = SHARED_DATA / "toolhive" / "registry-2026-02-18.json"


def median_seconds(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(servers: int, runs: int) -> dict[str, Any]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    from mcpreg.catalog import parse_catalog
    from mcpreg.catalog.hashing import content_hash
    from mcpreg.catalog.provenance import with_provenance
    from mcpreg.catalog.served import read_served, render_served, served_documents
    from mcpreg.signing import PrivateKeySigner, load_public_key, sign_documents, verify_blob
    from mcpreg.storage.encoding import encode
    from mcpreg.storage.model import StoredCatalog
    from mcpreg_api.rendering import dump_json
    from mcpreg_api.snapshot import entry_provenance
    from mcpreg_cli.verify_entry import verify_entry
    from mcpreg_dev.samples import replicated_toolhive
    from mcpreg_operator.sync import sign_stored

    source = json.dumps(replicated_toolhive(json.loads(SOURCE.read_bytes()), servers)).encode()

    def prepare() -> bytes:
        data = render_served(parse_catalog(source))
        content_hash(data)
        encode(data)  # what the storage writer does with it before the first request (compress, split)
        return data

    prepare_s = median_seconds(max(1, runs // 2), prepare)
    data = prepare()
    stored = StoredCatalog.create(data, revision="bench", server_count=servers)
    documents = served_documents(data, stored.content_hash)
    result: dict[str, Any] = {
        "servers": servers,
        "document_bytes": {name: len(body) for name, body in documents.items()},
        "prepare_s": prepare_s,
        "split_s": median_seconds(runs, lambda: served_documents(data, stored.content_hash)),
    }
    entries = read_served(data).entries
    result["api_entry_provenance_s"] = median_seconds(
        runs, lambda: entry_provenance(entries, stored.content_hash)
    )
    one = entries[len(entries) // 2]
    keys: dict[str, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey] = {
        "ecdsa-p256": ec.generate_private_key(ec.SECP256R1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
    }
    for name, key in keys.items():
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        signer = PrivateKeySigner.from_pem(pem)
        sign_s = median_seconds(runs, partial(sign_stored, stored, signer))
        signatures = sign_documents(signer, documents)
        public = load_public_key(signatures.public_key)
        verify = {
            doc: median_seconds(runs, partial(verify_blob, public, signatures.documents[doc], documents[doc]))
            for doc in documents
        }
        # A host's check of one entry, the three answers already fetched (`fetch` serves them).
        block = {"manifest": "/m", "signature": "/s", "digest": "sha256:" + "0" * 64}
        block |= {"generation": stored.content_hash, "keyId": signer.key_id}
        answers = {
            "/e": with_provenance(one.body, dump_json(block)),
            "/m": documents["entries"],
            "/s": signatures.documents["entries"].encode(),
        }

        def fetch(url: str, timeout: float, limit: int | None, answers: dict[str, bytes] = answers) -> bytes:
            return answers["/e" if "/servers/" in url else url]

        check = partial(verify_entry, "", one.name, one.version, public, timeout=1, fetch=fetch)
        result[name] = {
            "verify_one_entry_s": median_seconds(runs, check),
            "sign_per_sync_s": sign_s,
            "share_of_prepare": sign_s / prepare_s,
            "verify_s": verify,
        }
    return result


def main() -> None:
    args = cmdline.parser(__doc__.split("\n\n")[0], servers=10_000, runs=5).parse_args()
    result = measure(args.servers, args.runs)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    sizes = ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in result["document_bytes"].items())
    print(f"{result['servers']} servers; documents signed: {sizes}")
    print(
        f"rest of the sync's CPU work (parse, validate, render, hash, compress): {result['prepare_s']:.2f} s"
    )
    print(f"split the served document into the signed documents: {result['split_s'] * 1000:.0f} ms")
    provenance_ms = result["api_entry_provenance_s"] * 1000
    print(f"API build: every entry's digest and the entries manifest: {provenance_ms:.0f} ms")
    for name in ("ecdsa-p256", "ed25519"):
        row = result[name]
        verify = ", ".join(f"{doc} {seconds * 1000:.1f} ms" for doc, seconds in row["verify_s"].items())
        print(
            f"{name}: signing per sync {row['sign_per_sync_s'] * 1000:.0f} ms "
            f"({row['share_of_prepare']:.1%} of the rest); verify per document: {verify}; "
            f"one entry: {row['verify_one_entry_s'] * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
