"""benchmarks/run.py --quick, once: the JSON's structure and the deterministic counts.

Timings are not asserted (targets are reported, never enforced); the number of Django commands
(steps) and of Python processes the tool starts is exact, in both isolations, so a design change
that adds either shows up here.
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
    for key in ("tool", "floors", "plain_loop", "plain_loops", "startup", "growth", "targets", "machine", "formula"):
        assert key in results
    assert {k: results["formula"][k] for k in ("fixed_steps", "per_chain_steps", "per_migration_steps",
                                                 "fork_fixed_processes", "fork_per_chain_processes", "jobs")} == {
        "fixed_steps": 5, "per_chain_steps": 1, "per_migration_steps": 3, "fork_fixed_processes": 1,
        "fork_per_chain_processes": 1, "jobs": 2}
    assert {k: results["formula"][k] for k in ("template_steps", "fork_template_processes", "template_min_saved")} == {
        "template_steps": 1, "fork_template_processes": 1, "template_min_saved": 100}
    assert set(results["growth"]) == {"migrations/all", "migrations/none", "apps/all", "apps/none"}
    for target in results["targets"]:
        assert {"target", "value", "cpu_value", "limit", "met"} <= set(target)
    for name in ("upstream", "bare_startproject", "synthetic"):
        assert results["startup"][name]["wall_s"] > 0
    assert "| measurement |" in results["_summary"]
    assert "deterministic: " in results["_stdout"]
    assert len(results["machine"]["load_average"]) == 3


def test_the_size_table_and_growth_exponents(results):
    """Issue 20's table: a row per workload (quick: upstream at depth 5 and three synthetic sizes,
    the one-app size at depth 2 serving both growths), printed and in the summary, and an
    exponent of each of loop, tool and floor."""
    assert [row["workload"] for row in results["sizes"]] == [
        "synthetic-1x5-d2", "synthetic-1x5-d4", "synthetic-2x5-d2", "upstream-d5"]
    assert [row["tested"] for row in results["sizes"]] == [2, 4, 4, 5]
    for row in results["sizes"]:
        assert row["loop_s"] > 0 and row["tool_s"] > 0 and row["floor_s"] > 0 and row["peak_rss_mb"] > 0
    assert "| size | tested | loop | tool | floor | tool/loop | tool/floor |" in results["_summary"]
    assert results["growth_exponents"]["over"] == [row["workload"] for row in results["sizes"][:3]]
    for name in ("loop", "tool", "floor"):
        assert isinstance(results["growth_exponents"][name], float)
    assert "growth exponents (time ~ tested^k" in results["_stdout"]


def test_growth_pairs(results):
    """By migrations: one app at depth 2 and 4; by apps: one and two apps of 5 at depth 2 (the
    one-app workload is the same measurement as the first)."""
    pairs = {kind: (growth["small"], growth["large"]) for kind, growth in results["growth"].items()}
    assert pairs == {"migrations/all": ("synthetic-1x5-d2", "synthetic-1x5-d4"),
                     "migrations/none": ("synthetic-1x5-d2", "synthetic-1x5-d4"),
                     "apps/all": ("synthetic-1x5-d2", "synthetic-2x5-d2"),
                     "apps/none": ("synthetic-1x5-d2", "synthetic-2x5-d2")}


def test_every_measurement_has_a_floor_and_a_loop_ratio(results):
    # fork all and fork none everywhere; process all (the reference) on REFERENCE only, each once
    assert sorted(m["id"] for m in results["tool"]) == sorted(
        [f"{w}/fork/{p}" for w in SYNTHETIC for p in ("all", "none")] + [f"{w}/process/all" for w in REFERENCE])
    assert sorted(results["floors"]) == sorted(SYNTHETIC)
    assert set(results["plain_loops"]) == set(results["floors"])
    for m in results["tool"]:
        assert m["floor_s"] > 0 and m["ratio_to_floor"] > 0
        assert m["loop_s"] > 0 and m["ratio_to_loop"] > 0
        assert m["peak_rss_mb"] > 0 and m["wall_s"] > 0


def test_loop_targets_for_every_size(results):
    names = {t["target"] for t in results["targets"]}
    for wid in results["floors"]:
        assert f"{wid}: tool (--isolation fork) vs its plain loop" in names
        assert (f"{wid}: tool (--isolation process) vs its plain loop (reference)" in names) is (wid in REFERENCE)


# Quick sizes (benchmarks/run.py plan()) and what each tool run must do, worked out by hand from
# the design (--quick measures --isolation process only on REFERENCE: the two-app size). Steps
# (Django commands), the same in both isolations: 5 fixed (probe `shell -c`, `migrate` on the head
# database, `showmigrations --plan`, `makemigrations --check`,
# `check --deploy`); per chain 1 (`shell -c` building the state before its migrations); 3 per
# tested migration (apply, roll back, re-apply). With --jobs 2 and one app, a window of 4 or more
# migrations is split into 2 chains (runs of at least 2 migrations); with 2 apps, each window is
# one chain. The synthetic apps are independent and reversible: no cross-app migrate, no restore.
# Processes: one per step with --isolation process; with --isolation fork one step server per
# database: the head database's and one per chain. No quick size builds a template (by default
# one must save 100 migration builds: (chains - 1) x migrations below the windows; upstream's
# two chains over 37 migrations save 37).
SYNTHETIC = {  # workload: (tested per app, steps, fork processes)
    "synthetic-1x5-d2": ([2], 5 + 1 + 3 * 2, 1 + 1),  # 12 steps
    "synthetic-1x5-d4": ([4], 5 + 2 + 3 * 4, 1 + 2),  # 19: two chains of 2
    "synthetic-2x5-d2": ([2, 2], 5 + 2 * (1 + 3 * 2), 1 + 2),  # 19
    "upstream-d5": ([5], 5 + 2 + 3 * 5, 1 + 2),  # 22: upstream's newest 5, two chains (of 3 and 2)
}
REFERENCE = ("synthetic-2x5-d2",)
# The plain loop: `migrate`, then 2 per tested migration.
PLAIN_LOOP = {"synthetic-1x5-d2": 1 + 2 * 2, "synthetic-1x5-d4": 1 + 2 * 4,
              "synthetic-2x5-d2": 1 + 2 * (2 + 2), "upstream-d5": 1 + 2 * 5}
RUNS = [(workload, "fork", proofs) for workload in sorted(SYNTHETIC) for proofs in ("all", "none")] + [
    (workload, "process", "all") for workload in REFERENCE]


@pytest.mark.parametrize(("workload", "isolation", "proofs"), RUNS)
def test_step_and_process_counts_are_exact(results, workload, isolation, proofs):
    m = next(m for m in results["tool"] if m["id"] == f"{workload}/{isolation}/{proofs}")
    tested, steps, fork_processes = SYNTHETIC[workload]
    assert m["ok"] is True, m["problems"]
    assert m["isolation"] == isolation
    assert m["tested_per_app"] == tested
    assert m["steps"] == steps
    assert m["processes"] == (fork_processes if isolation == "fork" else steps)
    # the benchmark's own formulas agree
    assert (m["expected_steps"], m["expected_processes"]) == (m["steps"], m["processes"])
    assert m["steps_per_tested_migration"] == 3
    assert m["template"] == 0


@pytest.mark.parametrize("workload", sorted(PLAIN_LOOP))
def test_plain_loop_process_counts(results, workload):
    assert results["plain_loops"][workload]["processes"] == PLAIN_LOOP[workload]
    assert results["plain_loop"] == results["plain_loops"]["upstream-d5"]


def test_the_cost_of_traffic_is_measured(results):
    """upstream at depth 5 with --volume: the same run with --no-traffic and with --traffic."""
    traffic = results["traffic"]
    assert (traffic["workload"], traffic["volume"]) == ("upstream-d5", 1_000)
    assert traffic["without"]["rehearsed_migrations"] == 0 and traffic["without"]["traffic_queries"] == 0
    assert traffic["with"]["rehearsed_migrations"] == traffic["with"]["migrations"] == 5
    assert traffic["with"]["traffic_queries"] > 0
    assert traffic["ratio"] == round(traffic["with"]["wall_s"] / traffic["without"]["wall_s"], 2)
    assert "--volume 1,000 --traffic (" in results["_summary"]
