"""benchmarks/counts.py: the templates a run builds, worked out by hand for the sizes measured.

Synthetic apps are independent; each tests its newest 5 (d5) and has the rest below its window.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from counts import expected_processes, expected_steps, templates_of  # noqa: E402 - benchmarks/ is not a package


def test_the_root_when_it_saves_100_builds():
    assert templates_of([5] * 5, 75) == 1  # 4 x 75
    assert templates_of([2, 2], 6) == 0  # 1 x 6
    assert templates_of([4], 1) == 0  # one app: 2 chains of 2, 1 x 1


def test_a_half_when_it_saves_200():
    # 10 x 20: a half (5 chains) adds the other half's 5 windows: 4 x 25 = 100 < 200
    assert templates_of([5] * 10, 150) == 1
    # 20 x 50: a half (10 chains) adds 10 windows: 9 x 50 = 450; a quarter (5) adds 25: 4 x 25 = 100
    assert templates_of([5] * 20, 900) == 3


def test_the_counts_of_20_x_50():
    # 5 fixed + 3 templates + 20 chains + 3 x 100; fork: the head, 3 templates, 3 slots
    assert expected_steps([5] * 20, 900) == 5 + 3 + 20 + 300
    assert expected_processes([5] * 20, 900, "fork") == 1 + 3 + 3
