"""CORS preflights per second: wrk sending `OPTIONS /v0.1/servers` preflights to a real `mcpreg serve`.

The server serves the real 102-server catalogue (`mcpreg serve --file`, access log on, written to a
file) with the default CORS settings (`*`); wrk sends a browser's preflight (Origin,
Access-Control-Request-Method: GET, Access-Control-Request-Headers: authorization, content-type) at
64 connections, and, for comparison, the same page as a cross-origin GET. Server pinned to CPU 0, wrk
to CPU 1 (`taskset`, when present). Each figure is the median of --repeat runs of --duration seconds.

    .venv/bin/python bench/cors_bench.py [--duration 5] [--repeat 3] [--connections 64] [--json FILE]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from api_bench import (
    LATEST,
    ApiServer,
    WrkResult,
    get,
    median_run,
    run_wrk_once,
    wrk_arguments,
    wrk_report,
)

ORIGIN = "https://vscode.dev"
PREFLIGHT_SCRIPT = """\
wrk.method = "OPTIONS"
wrk.headers["Origin"] = "https://vscode.dev"
wrk.headers["Access-Control-Request-Method"] = "GET"
wrk.headers["Access-Control-Request-Headers"] = "authorization, content-type"
"""
PATH = "/v0.1/servers"


def wrk(
    name: str, url: str, args: argparse.Namespace, pid: int, script: Path | None, headers: dict[str, str]
) -> WrkResult:
    """The median of `args.repeat` runs of one wrk thread with `script` and `headers`."""
    return median_run(
        run_wrk_once(name, url, args, headers, pid, script=script, threads=1) for _ in range(args.repeat)
    )


def main() -> int:
    args = wrk_arguments(__doc__)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        server = ApiServer(LATEST, workdir)
        try:
            url = f"http://127.0.0.1:{server.port}{PATH}"
            # A preflight that is not answered 204 with the CORS headers would make the figure meaningless.
            status, _ = get(server.port, "/readiness")
            if status != 200:
                raise SystemExit(f"the server is not ready: {status}")
            preflight = [
                *("-X", "OPTIONS", "-H", f"Origin: {ORIGIN}"),
                "-H",
                "Access-Control-Request-Method: GET",
            ]
            check = subprocess.run(
                ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", *preflight, url],
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            ).stdout
            if check != "204":
                raise SystemExit(f"the preflight was answered {check}, not 204")
            script = workdir / "preflight.lua"
            script.write_text(PREFLIGHT_SCRIPT)
            pid = server.process.pid
            results = [
                wrk("preflight OPTIONS /v0.1/servers", url, args, pid, script, {}),
                wrk("cross-origin GET /v0.1/servers", url, args, pid, None, {"Origin": ORIGIN}),
            ]
        finally:
            server.stop()
    return wrk_report(args, results)


if __name__ == "__main__":
    sys.exit(main())
