"""ToolHive's `thv` client, built from Go modules once and cached, for the registry API's compatibility tests.

The version is pinned in `tools/thv/go.mod` (a small module requiring github.com/stacklok/toolhive;
see its comments for why that release and the two adjustments it needs). The binary lands in
`$MCPREG_CACHE_DIR/bin/thv-<version>/thv` like the control-plane binaries, and `MCPREG_THV` names a
ready binary instead.

`thv_env(home)` is the environment to run it in without touching the user's configuration: HOME and
the XDG directories point into `home`, update checks are off, and `thv_config_env` adds what the
non-informational `thv config` commands need on a machine without Docker (they check for a container
runtime before anything else; declaring the Kubernetes runtime satisfies the check without using it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from mcpreg_dev.binaries import GoComponent, ensure_command, print_built, stderr_progress

THV = GoComponent("thv", "github.com/stacklok/toolhive", ("github.com/stacklok/toolhive/cmd/thv",))


def ensure_thv(progress: Callable[[str], None] = stderr_progress) -> Path:
    """Path of the `thv` binary, built from Go modules on first use (several minutes on 2 cores)."""
    return ensure_command(THV, "MCPREG_THV", "thv", progress)


def thv_env(home: Path) -> dict[str, str]:
    """Environment for running `thv` with all its state under `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOOLHIVE_", "XDG_"))}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        XDG_CACHE_HOME=str(home / ".cache"),
        TOOLHIVE_SKIP_UPDATE_CHECK="true",
        NO_COLOR="1",
    )
    return env


def thv_config_env(home: Path) -> dict[str, str]:
    """`thv_env` for `thv config ...`, which refuses to start without a container runtime."""
    return {**thv_env(home), "TOOLHIVE_RUNTIME": "kubernetes"}


def main() -> int:
    """`python -m mcpreg_dev.thv`: build (or find) thv and print its path."""
    return print_built(ensure_thv)


if __name__ == "__main__":
    sys.exit(main())
