"""benchmarks/run.py --quick, once: the JSON's structure and the deterministic process counts.

Timings are not asserted (targets are reported, never enforced); the number of manage.py
processes the tool starts is exact, so a design change that adds processes shows up here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN = REPO_ROOT / "benchmarks" / "run.py"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    output = tmp_path_factory.mktemp("bench") / "quick.json"
    summary = output.with_name("summary.md")
    done = subprocess.run([sys.executable, str(RUN), "--quick", "--output", str(output), "--summary", str(summary)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads(output.read_text())
    data["_summary"] = summary.read_text()
    data["_stdout"] = done.stdout
    return data


def test_structure(results):
    assert results["schema"] == 1 and results["quick"] is True
    assert results["failures"] == []
    for key in ("tool", "floors", "plain_loop", "startup", "growth", "targets", "machine", "formula"):
        assert key in results
    assert {k: results["formula"][k] for k in ("fixed", "per_chain", "per_migration", "jobs")} == {
        "fixed": 5, "per_chain": 1, "per_migration": 3, "jobs": 2}
    assert set(results["growth"]) == {"migrations/all", "migrations/none", "apps/all", "apps/none"}
    for target in results["targets"]:
        assert {"target", "value", "cpu_value", "limit", "met"} <= set(target)
    for name in ("upstream", "bare_startproject", "synthetic"):
        assert results["startup"][name]["wall_s"] > 0
    assert results["plain_loop"]["processes"] == 1 + 2 * 5
    assert "| measurement |" in results["_summary"]
    assert "deterministic: " in results["_stdout"]


def test_every_measurement_has_a_floor_ratio(results):
    assert len(results["tool"]) == 2 * len(results["floors"])
    for m in results["tool"]:
        assert m["floor_s"] > 0 and m["ratio_to_floor"] > 0
        assert m["peak_rss_mb"] > 0 and m["wall_s"] > 0


# Quick sizes (benchmarks/run.py plan()) and the manage.py processes each tool run must start,
# worked out by hand from the design: 5 fixed (probe `shell -c`, `migrate` on the head database,
# `showmigrations --plan`, `makemigrations --check`, `check --deploy`); per chain 1 (`shell -c`
# building the state before its migrations); 3 per tested migration (apply, roll back, re-apply).
# With --jobs 2 and one app, a window of 4 or more migrations is split into 2 chains (runs of at
# least 2 migrations); with 2 apps, each window is one chain. The synthetic apps are independent
# and reversible: no cross-app migrate, no restore step.
SYNTHETIC = {
    "synthetic-1x5-d2": ([2], 5 + 1 + 3 * 2),  # 12
    "synthetic-1x5-d4": ([4], 5 + 2 + 3 * 4),  # 19: two chains of 2
    "synthetic-1x3-d2": ([2], 5 + 1 + 3 * 2),  # 12
    "synthetic-2x3-d2": ([2, 2], 5 + 2 * (1 + 3 * 2)),  # 19
}
UPSTREAM_D5 = 5 + 2 + 3 * 5  # 22: upstream's newest 5, two chains (of 3 and 2)


@pytest.mark.parametrize("workload", sorted(SYNTHETIC))
@pytest.mark.parametrize("proofs", ["all", "none"])
def test_synthetic_process_counts_are_exact(results, workload, proofs):
    m = next(m for m in results["tool"] if m["id"] == f"{workload}/{proofs}")
    tested, processes = SYNTHETIC[workload]
    assert m["ok"] is True, m["problems"]
    assert m["tested_per_app"] == tested
    assert m["processes"] == processes
    assert m["expected_processes"] == processes  # the benchmark's own formula agrees
    assert m["processes_per_tested_migration"] == 3


@pytest.mark.parametrize("proofs", ["all", "none"])
def test_upstream_default_depth_process_count(results, proofs):
    m = next(m for m in results["tool"] if m["id"] == f"upstream-d5/{proofs}")
    assert m["tested_per_app"] == [5]
    assert m["processes"] == UPSTREAM_D5 == m["expected_processes"]
