"""The official MCP registry's OpenAPI document, fetched from its pinned Go module and cached by version.

The version is pinned in `tools/mcp-registry/go.mod` (with its checksum in go.sum). `go mod download`
fetches the module through the Go module proxy into the module cache; the document
(`docs/reference/api/openapi.yaml`) is copied to `$MCPREG_CACHE_DIR/contract/mcp-registry-<version>/`
(written to a temporary name and renamed, so an interrupted copy is never taken for the document). It
is someone else's text: it stays out of the repository. `MCPREG_OFFICIAL_OPENAPI` names a ready file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from mcpreg_dev.binaries import (
    TOOLS_DIR,
    BuildError,
    _find_go,
    _go_env,
    cache_dir,
    pinned_version,
    print_built,
)

MODULE = "github.com/modelcontextprotocol/registry"
MODULE_DIR = TOOLS_DIR / "mcp-registry"
DOCUMENT = Path("docs/reference/api/openapi.yaml")


def official_version() -> str:
    return pinned_version(MODULE_DIR / "go.mod", MODULE)


def ensure_official_openapi() -> Path:
    """Path of the official OpenAPI document of the pinned release, fetched on first use."""
    override = os.environ.get("MCPREG_OFFICIAL_OPENAPI")
    if override:
        if not Path(override).is_file():
            raise BuildError(
                f"MCPREG_OFFICIAL_OPENAPI={override} is not a file; unset it to fetch the document"
            )
        return Path(override)
    version = official_version()
    target = cache_dir() / "contract" / f"mcp-registry-{version}" / DOCUMENT.name
    if target.is_file():
        return target
    try:
        result = subprocess.run(
            [_find_go(), "mod", "download", "-json", MODULE],
            cwd=MODULE_DIR,
            env=_go_env(),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BuildError(
            f"go mod download {MODULE}@{version} took over 10 minutes; is the proxy reachable?"
        ) from None
    if result.returncode != 0:
        tail = " ".join((result.stdout + result.stderr).split())[-500:]
        raise BuildError(f"go mod download {MODULE}@{version} failed: {tail}")
    source = Path(json.loads(result.stdout)["Dir"]) / DOCUMENT
    if not source.is_file():
        raise BuildError(
            f"{MODULE}@{version} has no {DOCUMENT}; pin a release that does in {MODULE_DIR}/go.mod"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".partial-{os.getpid()}")
    shutil.copyfile(source, partial)
    partial.replace(target)
    return target


def main() -> int:
    """`python -m mcpreg_dev.officialspec`: fetch (or find) the document and print its path."""
    return print_built(ensure_official_openapi)


if __name__ == "__main__":
    sys.exit(main())
