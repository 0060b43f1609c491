"""A smoke run of the benchmark harness with tiny counts, so it cannot rot.

Benchmarks are not tests: nothing here checks a time. It checks that the harness runs end to
end on a real stack, produces its tables, and that no message was lost or ran twice.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--interruptions=3",
    "--per-block=3",
    "--sessions=2",
    "--channels=8",
    "--ack-rates=20,40",
    "--ack-seconds=1",
    "--scale-sessions=8",
    "--scale-seconds=2",
    "--kills=2",
    "--step-runs=1",
    "--busy=2",
    "--busy-replies=3",
    "--all-at-once=3",
]


def test_a_tiny_benchmark_run_writes_its_tables_and_loses_nothing(tmp_path: Path) -> None:
    report, raw = tmp_path / "benchmarks.md", tmp_path / "results.json"
    argv = [sys.executable, "-m", "bench", *TINY, f"--output={report}", f"--json={raw}"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]

    text = report.read_text()
    headings = ("## Machine", "## Interruption latency", "## One busy channel", "## Tools")
    headings += ("## Ack latency", "## Scale")
    for heading in headings:
        assert heading in text
    results = json.loads(raw.read_text())
    assert len(results["interrupts"]["product"]) == 3
    for rate in results["acks"]:
        assert (rate["lost"], rate["duplicated"], rate["non_2xx"]) == (0, 0, 0)
        assert rate["min_tasks"] == rate["max_tasks"] == 1
    assert results["scale"]["interruptions"] > 0
    assert results["tools"]["kill_ms"]["n"] == 2
    for case in results["busy"]:
        assert case["during_retry_after"] == 0
        assert case["shown"]["answers_right"] == case["shown"]["threads"]
        # One notice per run cut after its first model call, never two.
        assert 0 < case["shown"]["notices"] <= case["shown"]["interrupted"]
        assert case["shown"]["notice_below_answer"] == 0
        assert case["shown"]["left_working"] == 0
