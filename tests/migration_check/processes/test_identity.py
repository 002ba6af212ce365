"""ProcessId and killing what a run started, on real child processes of this test (Linux /proc)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from migration_check.processes.identity import ProcessId, kill_processes_naming, processes_naming

SLEEPER = "import time; time.sleep(60)"


@pytest.fixture
def child(tmp_path: Path):
    """A sleeping child whose command line names tmp_path (as a server started on a folder does)."""
    process = subprocess.Popen([sys.executable, "-c", SLEEPER, str(tmp_path / "data")])
    yield process
    process.kill()
    process.wait()


def test_a_running_child_is_alive_and_gone_once_reaped(child):
    recorded = ProcessId.of(child.pid)
    assert recorded.started is not None
    assert recorded.alive()
    child.kill()
    child.wait()
    assert not recorded.alive()


def test_a_pid_with_another_start_time_is_not_the_recorded_process(child):
    """A recycled pid: the same number, started at another moment, is someone else."""
    recorded = ProcessId.of(child.pid)
    assert not ProcessId(child.pid, recorded.started + 1).alive()


def test_json_round_trip_and_what_is_refused():
    me = ProcessId.current()
    assert ProcessId.from_json(me.to_json()) == me
    assert ProcessId.from_json({"pid": 42}) == ProcessId(42, None)
    for bad in (None, [], {"pid": "42"}, {"pid": 0}, {"pid": -1}, {"started": 5}):
        assert ProcessId.from_json(bad) is None, bad


def named_within(folder: Path, seconds: float) -> list[int]:
    """processes_naming(folder), polled: a child just started (through an interpreter's wrapper,
    under load) may not show its final command line at once."""
    deadline = time.monotonic() + seconds
    while not (found := processes_naming(folder)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_processes_naming_a_folder_are_found_and_killed(child, tmp_path: Path):
    assert named_within(tmp_path, 10) == [child.pid]
    assert processes_naming(tmp_path.parent / (tmp_path.name + "-other")) == []
    assert kill_processes_naming(tmp_path) == [child.pid]
    assert child.wait(timeout=10) == -9
