"""benchmarks/report.py: issue 20's size table and the growth exponents, on results written by
hand (the slow test_benchmark.py checks them on a real --quick run)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from report import exponent, growth_exponents, render_markdown, sizes, table, targets  # noqa: E402


def tool(wid: str, wall: float, tested: int, apps: int, per_app: int, depth: str, rss: float) -> dict:
    return {"id": f"{wid}/fork/all", "workload": wid, "isolation": "fork", "proofs": "all", "wall_s": wall,
            "cpu_s": wall, "tested_migrations": tested, "project": "synthetic", "apps": apps,
            "migrations_per_app": per_app, "migrations": apps * per_app, "depth": depth, "peak_rss_mb": rss,
            "processes": 1, "expected_processes": 1, "steps": 1, "expected_steps": 1,
            "steps_per_tested_migration": 3, "ok": True, "ratio_to_floor": None, "ratio_to_loop": None}


RESULTS = {
    "floors": {"synthetic-4x10-d5": {"wall_s": 8.0, "cpu_s": 8.0, "peak_rss_mb": 60.0},
               "synthetic-1x10-d5": {"wall_s": 1.0, "cpu_s": 1.0, "peak_rss_mb": 50.0}},
    "plain_loops": {"synthetic-4x10-d5": {"wall_s": 40.0, "cpu_s": 40.0, "processes": 41, "ratio_to_floor": 5.0},
                    "synthetic-1x10-d5": {"wall_s": 10.0, "cpu_s": 10.0, "processes": 11, "ratio_to_floor": 10.0}},
    "tool": [tool("synthetic-4x10-d5", 20.0, 20, 4, 10, "5", 70.5),
             tool("synthetic-1x10-d5", 2.5, 5, 1, 10, "5", 45.0)],
    "growth": {}, "startup": {},
}


def test_a_power_law_gives_its_exponent():
    assert exponent([(5, 2.0), (10, 8.0), (20, 32.0)]) == 2.0
    assert exponent([(5, 3.0), (10, 6.0)]) == 1.0


def test_one_size_has_no_exponent():
    assert exponent([(5, 2.0), (5, 3.0)]) is None


def test_the_size_table_row_by_row():
    rows = sizes(RESULTS)
    assert [(r["size"], r["tested"], r["loop_s"], r["tool_s"], r["floor_s"], r["tool_per_loop"], r["tool_per_floor"],
             r["peak_rss_mb"]) for r in rows] == [
        ("1 x 10 (d5)", 5, 10.0, 2.5, 1.0, 0.25, 2.5, 45.0),
        ("4 x 10 (d5)", 20, 40.0, 20.0, 8.0, 0.5, 2.5, 70.5)]
    # loop 10 -> 40 over tested 5 -> 20: tested^1; tool 2.5 -> 20: tested^1.5; floor 1 -> 8: tested^1.5
    assert [(r["cpu_tool_per_loop"], r["cpu_tool_per_floor"]) for r in rows] == [(0.25, 2.5), (0.5, 2.5)]
    # CPU: tool 2.5 -> 20 as above; the loop's and the floor's CPU equal their wall times here
    assert growth_exponents(rows) == {"over": ["synthetic-1x10-d5", "synthetic-4x10-d5"], "loop": 1.0,
                                      "tool": 1.5, "floor": 1.5, "cpu": {"loop": 1.0, "tool": 1.5, "floor": 1.5}}


def test_the_summary_starts_with_the_size_table():
    meta = {"quick": True, "machine": {"cpus": 2, "python": "3.12", "django": "5.2", "postgres": "15",
                                       "load_average": [1, 1, 1], "load_average_end": [1, 1, 1]}}
    rows = sizes(RESULTS)
    text = render_markdown(table(RESULTS), targets(RESULTS), meta, rows, growth_exponents(rows))
    assert ("| size | tested | loop | tool | floor | tool/loop | tool/floor | CPU tool/loop | CPU tool/floor "
            "| peak RSS MB (tool) |") in text
    assert "| 4 x 10 (d5) | 20 | 40.00 s | 20.00 s | 8.00 s | 0.50 | 2.5 | 0.50 | 2.5 | 70.5 |" in text
    assert "loop 1.00, tool 1.50, floor 1.50" in text
    assert text.index("| size |") < text.index("| measurement |")


@pytest.mark.parametrize("text", ["10x20", "10x20-d5", "20x50-d5"])
def test_size_option_accepts(text):
    from run import parse_size
    assert parse_size(text) == (int(text.split("x")[0]), int(text.split("x")[1].split("-")[0]), 5)
