"""The pure pieces the benchmarks share (bench/cmdline.py, bench/timings.py, bench/procstat.py)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import cmdline
import procstat
import timings


def test_parser_adds_integer_options_and_json() -> None:
    parser = cmdline.parser("what it measures", servers=10_000, poll_interval=1)
    assert vars(parser.parse_args([])) == {"servers": 10_000, "poll_interval": 1, "json": False}
    args = parser.parse_args(["--servers", "200", "--poll-interval", "3", "--json"])
    assert (args.servers, args.poll_interval, args.json) == (200, 3, True)
    with pytest.raises(SystemExit):
        parser.parse_args(["--servers", "many"])


def test_print_figures_as_aligned_lines_or_json(capsys: pytest.CaptureFixture[str]) -> None:
    report = {"fill_s": 0.1, "operator_peak_rss_mib": 115.1}
    assert cmdline.print_figures(report, as_json=False) == 0
    assert capsys.readouterr().out.splitlines() == [
        "fill_s                0.1",
        "operator_peak_rss_mib 115.1",
    ]
    cmdline.print_figures(report, as_json=True)
    assert json.loads(capsys.readouterr().out) == report


def test_spread_of_timings() -> None:
    # p90 of ten rounds: the sorted value at index int(0.9 * 9) = 8, not interpolated.
    rounds = [1.0, 0.2, 0.9, 0.3, 0.8, 0.4, 0.7, 0.5, 0.6, 0.1]
    assert timings.spread(rounds) == {"rounds": 10, "median": 0.55, "p90": 0.9, "max": 1.0}
    assert timings.spread([0.12345]) == {"rounds": 1, "median": 0.123, "p90": 0.123, "max": 0.123}


def test_peak_sampler_follows_a_live_process() -> None:
    sampler = procstat.PeakSampler(lambda: os.getpid(), interval=0.01)
    sampler.start()
    try:
        deadline = time.monotonic() + 5
        while (sampler.peak_kib == 0 or sampler.cpu_s == 0) and time.monotonic() < deadline:
            sum(range(10_000))  # some CPU time for the sampler to see
    finally:
        sampler.stop()
    assert sampler.peak_kib >= procstat.rss_kib(os.getpid()) // 2 > 0
    assert sampler.cpu_s > 0


def test_peak_sampler_waits_for_a_process() -> None:
    sampler = procstat.PeakSampler(lambda: None, interval=0.01)
    sampler.start()
    time.sleep(0.05)
    sampler.stop()
    assert (sampler.peak_kib, sampler.cpu_s) == (0, 0.0)
