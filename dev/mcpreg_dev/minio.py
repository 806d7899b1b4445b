"""A real MinIO server on loopback, built from Go modules once and cached, for the S3 tests,
benchmarks and `make up`.

The version is pinned in `tools/minio/go.mod` (a small module requiring github.com/minio/minio, whose
releases Go knows by pseudo-version). The binary lands in `$MCPREG_CACHE_DIR/bin/minio-<version>/minio`
like the control-plane binaries; `MCPREG_MINIO` names a ready binary instead.

    server = MinioServer.create(tmp_dir)       # free port, fresh data dir, generated root credentials
    server.start()                             # waits for /minio/health/ready
    server.create_bucket("catalogues")
    server.stop(); server.start()              # same port and data: "the service went away and came back"

`kms=True` gives the server a static KMS key, so server-side encryption (AES256 and aws:kms with key
`MinioServer.KMS_KEY_ID`) works; without it MinIO refuses encrypted writes, as a misconfigured
service would. `python -m mcpreg_dev.minio` builds (or finds) the binary and prints its path;
`python -m mcpreg_dev.minio serve --data-dir DIR --port N` runs a server in the foreground.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcpreg.storage.s3_config import S3Credentials, S3Settings, make_client
from mcpreg_dev.binaries import GoComponent, ensure_command, print_or_exec, serve_cli, stderr_progress
from mcpreg_dev.controlplane import free_port
from mcpreg_dev.processes import ChildServer, answers_ok

MINIO = GoComponent("minio", "github.com/minio/minio", ("github.com/minio/minio",))


def ensure_minio(progress: Callable[[str], None] = stderr_progress) -> Path:
    """Path of the `minio` binary, built from Go modules on first use (several minutes on 2 cores)."""
    return ensure_command(MINIO, "MCPREG_MINIO", "MinIO", progress)


class MinioError(RuntimeError):
    """The server did not start (or stop) as asked; the message says where its log is."""


@dataclass
class MinioServer(ChildServer):
    """One MinIO process serving `data_dir` on `host`:`port` (loopback, or the local node's bridge
    address so pods reach it), restartable on the same port: `stop()` keeps the data and the port."""

    KMS_KEY_ID = "mcpreg-test-key"

    binary: Path
    data_dir: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    access_key: str = field(default_factory=lambda: "mcpreg-" + secrets.token_hex(6), repr=False)
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    kms: bool = False
    host: str = "127.0.0.1"
    _kms_secret: str = field(
        default_factory=lambda: base64.b64encode(secrets.token_bytes(32)).decode(), repr=False
    )
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @classmethod
    def create(
        cls, base_dir: Path, *, kms: bool = False, binary: Path | None = None, host: str = "127.0.0.1"
    ) -> MinioServer:
        base_dir.mkdir(parents=True, exist_ok=True)
        data_dir = base_dir / "data"
        data_dir.mkdir(exist_ok=True)
        return cls(
            binary=binary or ensure_minio(),
            data_dir=data_dir,
            log_path=base_dir / "minio.log",
            kms=kms,
            host=host,
            port=free_port(host),
        )

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def credentials(self) -> S3Credentials:
        return S3Credentials(self.access_key, self.secret_key)

    def settings(self, bucket: str, **overrides: Any) -> S3Settings:
        """S3 settings for a bucket of this server (path-style, short timeouts for tests)."""
        values: dict[str, Any] = {
            "bucket": bucket,
            "endpoint": self.endpoint,
            "region": "us-east-1",
            "force_path_style": True,
            "connect_timeout": 2.0,
            "read_timeout": 10.0,
            "max_attempts": 2,
        }
        values.update(overrides)
        return S3Settings(**values)

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "MINIO_ROOT_USER": self.access_key,
            "MINIO_ROOT_PASSWORD": self.secret_key,
            "MINIO_BROWSER": "off",
            "MINIO_UPDATE": "off",
            "MINIO_CI_CD": "on",  # no interactive niceties, no checks for a newer release
        }
        if self.kms:
            env["MINIO_KMS_SECRET_KEY"] = f"{self.KMS_KEY_ID}:{self._kms_secret}"
        return env

    def start(self, timeout: float = 60.0) -> None:
        if self.running():
            return
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.binary),
                    "server",
                    str(self.data_dir),
                    "--address",
                    f"{self.host}:{self.port}",
                    "--quiet",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(),
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise MinioError(
                    f"minio exited with {self.process.returncode} at start-up; see {self.log_path}"
                )
            if self.ready():
                return
            time.sleep(0.1)
        self.kill()
        raise MinioError(f"minio did not become ready within {timeout:.0f}s; see {self.log_path}")

    def ready(self) -> bool:
        return answers_ok(f"{self.endpoint}/minio/health/ready")

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self) -> Any:
        """A boto3 client with the root credentials (tests set buckets up with it)."""
        return make_client(self.settings("unused"), self.credentials)

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def delete_bucket(self, name: str) -> None:
        """Empty and remove a bucket."""
        client = self.client()
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=name):
            keys = [{"Key": item["Key"]} for item in page.get("Contents") or []]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        client.delete_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        client = self.client()
        found: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.extend(str(item["Key"]) for item in page.get("Contents") or [])
        return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser, serve = serve_cli(
        "python -m mcpreg_dev.minio", "run MinIO in the foreground (root credentials from the environment)"
    )
    serve.add_argument("--data-dir", required=True, type=Path)
    serve.add_argument("--port", type=int, default=9000)
    serve.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)

    def server_argv(binary: Path) -> list[str]:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        return [str(binary), "server", str(args.data_dir), "--address", f"{args.host}:{args.port}", "--quiet"]

    return print_or_exec(ensure_minio, args.command == "serve", server_argv)


def temporary_server(*, kms: bool = False) -> MinioServer:
    """A server in a fresh temporary directory (not started); remove `data_dir.parent` when done."""
    return MinioServer.create(Path(tempfile.mkdtemp(prefix="mcpreg-minio-")), kms=kms)


def remove(server: MinioServer) -> None:
    server.kill()
    shutil.rmtree(server.data_dir.parent, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
