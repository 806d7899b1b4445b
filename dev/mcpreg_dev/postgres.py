"""A throw-away PostgreSQL cluster from the Debian packages, for peers that need a database (the
official MCP Registry's server, mcpreg_dev.official_registry).

    cluster = PostgresCluster.create(log_dir)   # initdb into a fresh temporary directory
    cluster.start()                             # a child process; unix socket only, no TCP port
    url = cluster.url(cluster.create_database("registry"))
    cluster.remove()                            # stop it and delete every file it wrote

The cluster listens on no TCP address at all, only on a unix socket in its own directory, so it can
neither clash with another cluster's port nor be reached from outside the machine. It trusts one
throw-away user and runs with fsync off: its data is gone at teardown anyway. PostgreSQL refuses to
run as root; as root the cluster runs as the `postgres` user the Debian package creates (else
`nobody`) through `setpriv`, and its directory is made under /tmp, because a test's temporary
directory (mode 0700, owned by root) is not one that user can enter.

The binaries come from `MCPREG_PG_BINDIR`, else the newest `/usr/lib/postgresql/<major>/bin`
(scripts/install-host-deps installs `postgresql`), else `initdb` on PATH.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from mcpreg_dev.processes import ChildServer, spawn_logged, wait_ready

USER = "mcpreg"  # the cluster's only role (superuser, trusted on the unix socket)


class PostgresError(RuntimeError):
    """The cluster could not be created or started; the message names what to do or which log to read."""


def bin_dir() -> Path:
    """The directory of this machine's PostgreSQL server binaries (initdb, postgres, createdb)."""
    override = os.environ.get("MCPREG_PG_BINDIR")
    if override:
        if not os.access(Path(override) / "initdb", os.X_OK):
            raise PostgresError(
                f"MCPREG_PG_BINDIR={override} holds no initdb; unset it to use the Debian one"
            )
        return Path(override)
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise PostgresError(
        "PostgreSQL's server binaries are not installed (no /usr/lib/postgresql/*/bin/initdb): run "
        "scripts/install-host-deps as root, or set MCPREG_PG_BINDIR"
    )


def _unprivileged_account() -> pwd.struct_passwd | None:
    """As root, the account the server runs as (it refuses root); None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresError("running as root and neither a `postgres` nor a `nobody` account exists")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class PostgresCluster(ChildServer):
    """One PostgreSQL server over a data directory of its own, reachable on a unix socket in `root`."""

    STOP_SIGNAL = signal.SIGINT  # fast shutdown: connections cut, no waiting for clients

    bin_dir: Path
    root: Path  # the cluster's own directory: data/ and the socket
    log_path: Path
    account: pwd.struct_passwd | None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @classmethod
    def create(cls, log_dir: Path) -> PostgresCluster:
        """initdb a fresh cluster (about a second); its log goes to `log_dir/postgres.log`."""
        binaries = bin_dir()
        account = _unprivileged_account()
        # Short and enterable by `account`: a unix socket path must fit in 107 bytes.
        root = Path(tempfile.mkdtemp(prefix="mcpreg-pg-", dir="/tmp" if account else None))  # noqa: S108 (mkdtemp: private)
        log_dir.mkdir(parents=True, exist_ok=True)
        cluster = cls(bin_dir=binaries, root=root, log_path=log_dir / "postgres.log", account=account)
        if account is not None:
            os.chown(root, account.pw_uid, account.pw_gid)
        command = [
            str(binaries / "initdb"),
            "--pgdata",
            str(cluster.data_dir),
            "--username",
            USER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
            "--no-instructions",
        ]
        with cluster.log_path.open("ab") as log:
            result = subprocess.run(
                cluster._as_account(command),
                cwd=root,  # the account may not be able to enter ours
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=120,
            )
        if result.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            raise PostgresError(
                f"initdb exited with {result.returncode}; see {cluster.log_path}:\n{_tail(cluster.log_path)}"
            )
        return cluster

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root

    def _as_account(self, command: list[str]) -> list[str]:
        if self.account is None:
            return command
        return [
            "setpriv",
            f"--reuid={self.account.pw_uid}",
            f"--regid={self.account.pw_gid}",
            "--init-groups",
            "--",
            *command,
        ]

    def url(self, database: str = "postgres") -> str:
        """A libpq/pgx URL of `database` over the unix socket."""
        return f"postgres://{USER}@/{database}?host={self.socket_dir}&sslmode=disable"

    def start(self, timeout: float = 60.0) -> None:
        """Start the server as our child (its own process group) and wait until it accepts connections."""
        if self.running():
            return
        settings = {
            "listen_addresses": "",  # no TCP at all
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
            "shared_buffers": "32MB",
        }
        command = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        self.process = spawn_logged(self._as_account(command), self.log_path, cwd=self.root)
        failure = wait_ready(self.process, self.ready, timeout)
        if failure:
            raise PostgresError(f"postgres {failure}; see {self.log_path}:\n{_tail(self.log_path)}")

    def ready(self) -> bool:
        result = subprocess.run(
            [str(self.bin_dir / "pg_isready"), "--host", str(self.socket_dir), "--username", USER, "--quiet"],
            check=False,
            timeout=10,
        )
        return result.returncode == 0

    def create_database(self, name: str) -> str:
        """Create an empty database and return its name."""
        result = subprocess.run(
            [str(self.bin_dir / "createdb"), "--host", str(self.socket_dir), "--username", USER, name],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if result.returncode != 0:
            raise PostgresError(f"createdb {name} failed: {result.stderr.strip()}")
        return name

    def remove(self) -> None:
        """Stop the server and delete its directory (the log, kept elsewhere, stays)."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
