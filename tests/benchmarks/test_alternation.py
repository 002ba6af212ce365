"""benchmarks/run.py measures a workload's floor, loop and tool runs in alternated rounds, so
that a load from other work weighs on each alike; per measurement the median run is kept."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import run  # noqa: E402


class FakeBench:
    """What Runner.alternated reads of a Bench: the rounds asked for and where failures go."""

    def __init__(self, repeat: int) -> None:
        self.repeat = repeat
        self.failures: list[str] = []


def timed(name: str, walls: list[float], order: list[str]):
    """A measurement whose k-th run takes walls[k] seconds and notes its name in `order`."""
    runs = iter(walls)

    def once() -> dict:
        order.append(name)
        return {"wall_s": next(runs), "name": name}
    return once


def test_rounds_alternate_the_measurements_and_keep_each_ones_median():
    order: list[str] = []
    runner = run.Runner(FakeBench(repeat=3), log=lambda text: None)
    chosen = runner.alternated({"loop": timed("loop", [30.0, 10.0, 20.0], order),
                                "tool": timed("tool", [9.0, 3.0, 5.0], order)})
    assert order == ["loop", "tool", "loop", "tool", "loop", "tool"]
    assert chosen["loop"]["wall_s"] == 20.0 and chosen["loop"]["wall_s_all"] == [30.0, 10.0, 20.0]
    assert chosen["tool"]["wall_s"] == 5.0 and chosen["tool"]["wall_s_all"] == [9.0, 3.0, 5.0]


def test_one_round_keeps_the_run_as_it_is():
    order: list[str] = []
    chosen = run.Runner(FakeBench(repeat=1), log=lambda text: None).alternated(
        {"floor": timed("floor", [2.0], order)})
    assert order == ["floor"] and chosen == {"floor": {"wall_s": 2.0, "name": "floor"}}


def test_a_measurement_that_fails_is_recorded_and_not_run_again():
    order: list[str] = []

    def broken() -> dict:
        order.append("broken")
        raise run.Failure("the tool exited 2")

    bench = FakeBench(repeat=2)
    chosen = run.Runner(bench, log=lambda text: None).alternated(
        {"broken": broken, "loop": timed("loop", [4.0, 6.0], order)})
    assert order == ["broken", "loop", "loop"]
    assert chosen["broken"] is None and chosen["loop"]["wall_s"] == 6.0
    assert bench.failures == ["broken (round 1 of 2): the tool exited 2"]
