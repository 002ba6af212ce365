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

from tests.pg_plugin import load_tool_module

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


def chains(tested: int, apps: int) -> int:
    # The benchmark runs the tool with --jobs 2. A tool that splits windows (AppWindow.split) tests
    # an app's window as consecutive runs ("chains") side by side when there are fewer apps than
    # jobs, each chain on a database of its own; otherwise a window is one chain.
    split = getattr(getattr(load_tool_module(), "AppWindow", None), "split", None)
    return 1 if split is None else len(split(list(range(tested)), max(1, 2 // apps)))


def expected(tested_per_app: list[int]) -> int:
    # 5 fixed processes (probe `shell -c`, `migrate` on the head database, `showmigrations --plan`,
    # `makemigrations --check`, `check --deploy`), then per chain 1 (`shell -c` building the state
    # before the chain) plus 3 per tested migration (apply, roll back, re-apply). The synthetic
    # apps are independent and reversible: no cross-app migrate, no restore step.
    return 5 + sum(chains(n, len(tested_per_app)) + 3 * n for n in tested_per_app)


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


# Quick sizes (benchmarks/run.py plan()): one app of 5 migrations at depth 2 and 4; 1 and 2 apps
# of 3 migrations at depth 2; upstream at the default depth 5.
# Without window splitting: 12, 18, 12, 19 and upstream 21; with it (runs of >= 2 migrations,
# 2 // apps chains at most): 1x5-d4 and upstream-d5 become 2 chains, 19 and 22.
SYNTHETIC = {
    "synthetic-1x5-d2": [2],  # 5 + (1 + 3*2) = 12
    "synthetic-1x5-d4": [4],  # 5 + (1 + 3*4) = 18, split: 5 + (2 + 3*4) = 19
    "synthetic-1x3-d2": [2],  # 12
    "synthetic-2x3-d2": [2, 2],  # 5 + 2 * (1 + 3*2) = 19
}


@pytest.mark.parametrize("workload", sorted(SYNTHETIC))
@pytest.mark.parametrize("proofs", ["all", "none"])
def test_synthetic_process_counts_are_exact(results, workload, proofs):
    m = next(m for m in results["tool"] if m["id"] == f"{workload}/{proofs}")
    assert m["ok"] is True, m["problems"]
    assert m["tested_per_app"] == SYNTHETIC[workload]
    assert m["processes"] == expected(SYNTHETIC[workload]) == m["expected_processes"]
    assert m["processes_per_tested_migration"] == 3


@pytest.mark.parametrize("proofs", ["all", "none"])
def test_upstream_default_depth_process_count(results, proofs):
    m = next(m for m in results["tool"] if m["id"] == f"upstream-d5/{proofs}")
    assert m["tested_per_app"] == [5]
    assert m["processes"] == expected([5]) in (21, 22)  # 22: split into 2 chains
