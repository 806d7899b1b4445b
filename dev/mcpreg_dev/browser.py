"""What the catalogue page's browser tests and benchmark need: Debian's Chromium and axe-core from npm.

Chromium comes from Debian (`scripts/install-host-deps` installs it, as `make test` does before the
tests; `MCPREG_CHROMIUM` names another executable). Playwright drives it through its
`executable_path`: Playwright's own browser downloads are never used (no internet beyond the package
registries). axe-core is installed with npm, at the exact version pinned here, into
`$MCPREG_CACHE_DIR/npm/axe-core-<version>/` outside the repository, once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from mcpreg_dev.binaries import BuildError, cache_dir, print_built

AXE_CORE_VERSION = "4.14.1"
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")


def chromium_executable() -> Path:
    """Debian's Chromium; BuildError saying how to install it when it is missing."""
    override = os.environ.get("MCPREG_CHROMIUM")
    if override:
        if not os.access(override, os.X_OK):
            raise BuildError(f"MCPREG_CHROMIUM={override} is not an executable")
        return Path(override)
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return Path(found)
    raise BuildError(
        "chromium not installed: run scripts/install-host-deps as root (Debian package chromium)"
    )


def axe_script() -> Path:
    """`axe.min.js` of the pinned axe-core, installed with npm on first use."""
    prefix = cache_dir() / "npm" / f"axe-core-{AXE_CORE_VERSION}"
    script = prefix / "node_modules" / "axe-core" / "axe.min.js"
    if script.is_file():
        return script
    npm = shutil.which("npm")
    if npm is None:
        raise BuildError(
            "npm not found: it installs axe-core for the accessibility scan (Debian package npm)"
        )
    prefix.mkdir(parents=True, exist_ok=True)
    command = [
        npm,
        "install",
        "--prefix",
        str(prefix),
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        "--no-save",
        f"axe-core@{AXE_CORE_VERSION}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0 or not script.is_file():
        raise BuildError(
            f"npm could not install axe-core@{AXE_CORE_VERSION}: {result.stderr.strip()[-2000:]}"
        )
    return script


def main() -> int:
    """`python -m mcpreg_dev.browser`: find Chromium, install axe-core, print both paths."""
    return print_built(chromium_executable, axe_script)


if __name__ == "__main__":
    sys.exit(main())
