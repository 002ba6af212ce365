"""PhaseTimes: seconds and calls by phase, summed over threads, longest first (no database)."""

from __future__ import annotations

import threading

import pytest

from migration_check.timing import Phase, PhaseTimes


def test_calls_and_seconds_add_up_per_label_longest_first():
    times = PhaseTimes()
    times.add("migrate", 1.5)
    times.add("seed", 4.0)
    times.add("migrate", 2.0)
    assert list(times.phases().items()) == [("seed", Phase(1, 4.0)), ("migrate", Phase(2, 3.5))]


def test_a_measured_block_counts_even_when_it_raises():
    times = PhaseTimes()
    with pytest.raises(RuntimeError), times.measure("fingerprint"):
        raise RuntimeError("step failed")
    phase = times.phases()["fingerprint"]
    assert phase.calls == 1 and phase.seconds >= 0


def test_phases_is_a_copy():
    times = PhaseTimes()
    times.add("schema", 1.0)
    times.phases()["schema"].calls = 99
    assert times.phases()["schema"] == Phase(1, 1.0)


def test_threads_adding_at_once_lose_no_call():
    times = PhaseTimes()

    def add_many() -> None:
        for _ in range(2000):
            times.add("step", 0.001)

    threads = [threading.Thread(target=add_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert times.phases()["step"].calls == 8000
