"""End to end: steps whose process dies, and a step server that dies.

- crash_project: crash_exit.0002's reverse calls os._exit(3), crash_segv.0002's reverse dies of
  SIGSEGV, crash_free.0002 is their clean twin. In both isolations each crash is that step
  failing (rollback failed, the exit status or signal named, the older migration blocked), the
  run goes on to the other apps, exits 1 and leaves nothing behind.
- A step server killed while its child runs a step (hanging_project, whose rollback sleeps):
  the tool says so in one line (exit 2), kills the orphaned step, and leaves no scratch
  database, no session and no process.

fixture_sanity/test_defect_corpus.py shows the crashes with plain manage.py.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.migration_check.conftest import (
    BLOCKED,
    FIXTURES,
    NOT_ROLLED_BACK,
    PASSED,
    REPO_ROOT,
    TOOL,
    PgAdmin,
    assert_cleaned_up,
    assert_report_shape,
    assert_same_verdicts,
    fixtures_in_both_isolations,
)
from tests.migration_check.end_to_end.test_tiny_project import Account

pytestmark = pytest.mark.slow

WINDOWS = {app: ["0002_add_counter", "0001_initial"] for app in ("crash_exit", "crash_segv", "crash_free")}
DEATH_TIMEOUT_S = 120


run_runs, run = fixtures_in_both_isolations("crash_project")


def test_same_verdicts_in_both_isolations(run_runs):
    assert_same_verdicts(run_runs)


def test_crashes_fail_the_run_and_nothing_is_left(run):
    assert run.returncode == 1, run.context()
    assert "Traceback" not in run.stderr, run.context()
    assert_report_shape(run, WINDOWS)
    assert_cleaned_up(run)
    assert run.leftover_backends == [], "sessions left running on the server"


@pytest.mark.parametrize(("app", "how"), [("crash_exit", "exit status 3"), ("crash_segv", "killed by SIGSEGV")])
def test_a_step_that_dies_is_a_failed_rollback(run, app, how):
    migration = run.assert_verdicts(app, "0002_add_counter", apply="passed", rollback="failed", **NOT_ROLLED_BACK)
    assert migration["error"].startswith(f"{how} after: "), migration
    assert f"Unapplying {app}.0002_add_counter" in migration["error"], migration
    run.assert_verdicts(app, "0001_initial", **BLOCKED)


def test_the_clean_twin_passes_in_the_same_run(run):
    for name in WINDOWS["crash_free"]:
        run.assert_verdicts("crash_free", name, apply="passed", **PASSED)


# -- a step server that dies ----------------------------------------------------------------------


def children_of(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(line) for line in found.stdout.split()]


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")


def kill_step_server_during_rollback(argv: list[str]) -> dict:
    """Start the tool; once the hanging rollback runs, SIGKILL its step server; wait for the end."""
    env = {key: value for key, value in os.environ.items() if key not in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY")}
    tool = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)
    lines: list[str] = []
    try:
        for line in tool.stdout:
            lines.append(line)
            if re.search(r"manage\.py migrate sleepy_reverse 0002_job_done", line):
                break
        time.sleep(1.5)  # the step's child is now inside pg_sleep
        servers = [pid for pid in children_of(tool.pid) if "fork_server" in command_line(pid)]
        steps = [child for pid in servers for child in children_of(pid)]
        for pid in servers:
            os.kill(pid, signal.SIGKILL)
        stdout, stderr = tool.communicate(timeout=DEATH_TIMEOUT_S)
    finally:
        if tool.poll() is None:
            tool.kill()
            tool.wait()
    return {"returncode": tool.returncode, "stdout": "".join(lines) + stdout, "stderr": stderr,
            "servers": servers, "steps": steps}


@pytest.fixture(scope="module")
def server_death(pg_admin: PgAdmin) -> dict:
    """The tool on hanging_project (fork isolation) with its step server killed mid-rollback:
    what it said, the pids involved, and what was left on the server."""
    account = Account(pg_admin).create()
    argv = [sys.executable, str(TOOL), "--manage", str(FIXTURES / "hanging_project" / "manage.py"),
            "--settings", "hanging_project.settings", "--database-url", account.url, "--depth", "2",
            "--isolation", "fork", "-v"]
    try:
        observed = kill_step_server_during_rollback(argv)
        observed.update(scratch=account.scratch_left(), sessions=account.sessions())
    finally:
        account.drop()
    return observed


def test_a_dead_step_server_ends_the_run_in_one_line(server_death):
    assert len(server_death["servers"]) == 1 and len(server_death["steps"]) == 1, server_death
    assert server_death["returncode"] == 2, server_death
    lines = server_death["stderr"].strip().splitlines()
    assert len(lines) == 1, server_death["stderr"]
    assert re.fullmatch(
        r"test_migrations: error: the step server of database tm_scratch_[0-9a-f]{8}_\d+_worker1 "  # a slot's
        rf"\(pid {server_death['servers'][0]}\) ended \(killed by SIGKILL\) while running "
        r"`manage\.py migrate sleepy_reverse 0002_job_done \.\.\.`; the run stops here \(rerun with --isolation "
        r"process to run every step as a process of its own\)", lines[0]), lines[0]
    assert "Traceback" not in server_death["stdout"] + server_death["stderr"]


def test_a_dead_step_server_leaves_nothing(server_death):
    assert server_death["scratch"] == [], server_death
    assert server_death["sessions"] == [], server_death
    deadline = time.monotonic() + 10  # a killed process takes a moment to be gone
    while any(alive(pid) for pid in server_death["servers"] + server_death["steps"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in server_death["servers"] + server_death["steps"]:
        assert not alive(pid), f"process {pid} ({command_line(pid)}) is still running"
