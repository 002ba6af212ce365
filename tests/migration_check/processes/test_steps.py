"""The step runner in both isolations, on a real scratch database of the test server.

A forked step must end like the `python manage.py ...` process it replaces (exit status,
stdout and stderr, written at the file-descriptor level), start from the pristine server (no
state or connection shared with a sibling), be killed with its process group on a time-out,
and fail on its own when it crashes. A step server that dies ends the run with one line; one
whose Django start leaves threads running hands every step to a process of its own.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from migration_check.errors import Interrupted
from migration_check.log import Log
from migration_check.processes.step_server import StepServerDied
from migration_check.processes.steps import StepResult, StepRunner
from tests.migration_check.conftest import FIXTURES, ISOLATIONS, PgAdmin

MANAGE = FIXTURES / "crash_project" / "manage.py"
SETTINGS = "crash_project.settings"
TIMEOUT_S = 120


@pytest.fixture(scope="module")
def database(pg_admin: PgAdmin) -> Iterator[tuple[str, str]]:
    name = f"tm_steps_{secrets.token_hex(4)}"
    pg_admin.create_database(name)
    yield name, pg_admin.url_for(name)
    pg_admin.drop_database(name)


@pytest.fixture
def runners() -> Iterator[dict[str, StepRunner]]:
    made = {isolation: StepRunner(MANAGE, SETTINGS, TIMEOUT_S, Log(0), isolation=isolation) for isolation in ISOLATIONS}
    yield made
    for runner in made.values():
        runner.kill_all()


def shell(code: str) -> list[str]:
    return ["shell", "-v", "0", "-c", code]  # -v 0: without the line on automatic imports


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z"))


def all_gone(pids: list[int], within_s: float = 10) -> bool:
    """True once none of `pids` runs (a killed process takes a moment to be gone)."""
    deadline = time.monotonic() + within_s
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def server_pid(runner: StepRunner, url: str) -> int:
    server = runner.servers._servers[url]
    assert server.pid is not None
    return server.pid


# The same command must end the same way in both isolations.
SAME_END = {
    "output at the fd level and an exit status": shell(
        "import os, sys; print('printed'); sys.stdout.flush(); os.write(1, b'raw out\\n'); "
        "os.write(2, b'raw err\\n'); sys.stderr.write('written\\n'); sys.exit(4)"),
    "sys.exit with a message": shell("import sys; sys.exit('giving up: no invoices')"),
    "os._exit": shell("import os; print('before', flush=True); os._exit(7)"),
    "a Django CommandError": ["migrate", "no_such_app", "--noinput"],
    "an unknown command": ["no_such_command"],
    "showmigrations": ["showmigrations", "--plan", "--no-color"],
}


@pytest.mark.parametrize("case", sorted(SAME_END))
def test_a_forked_step_ends_like_the_process(runners, database, case):
    _, url = database
    ended = {isolation: runner.run(SAME_END[case], url) for isolation, runner in runners.items()}
    fork, process = ended["fork"], ended["process"]
    assert (fork.returncode, fork.stdout, fork.stderr) == (process.returncode, process.stdout, process.stderr)
    assert fork.command == process.command
    assert runners["fork"].steps == runners["process"].steps == runners["process"].started == 1
    assert runners["fork"].started == 1  # the step server


def test_output_and_exit_status_values(runners, database):
    """The expected values, written down (the comparison above could pass on two wrong ends)."""
    _, url = database
    result = runners["fork"].run(SAME_END["output at the fd level and an exit status"], url)
    assert (result.returncode, result.stdout, result.stderr) == (4, "printed\nraw out\n", "raw err\nwritten\n")
    result = runners["fork"].run(SAME_END["sys.exit with a message"], url)
    assert (result.returncode, result.stderr) == (1, "giving up: no invoices\n")
    result = runners["fork"].run(SAME_END["a Django CommandError"], url)
    assert result.returncode == 1 and "No installed app with label 'no_such_app'" in result.stderr


def test_an_uncaught_exception_is_exit_1_with_its_traceback(runners, database):
    _, url = database
    for runner in runners.values():
        result = runner.run(shell("raise LookupError('no such invoice')"), url)
        assert result.returncode == 1
        assert result.stderr.startswith("Traceback (most recent call last):")
        assert result.error_summary() == "LookupError: no such invoice"


def test_each_child_starts_from_the_pristine_server(runners, database):
    _, url = database
    runner = runners["fork"]
    changed = runner.run(shell("import os, django; os.environ['TM_LEFT'] = '1'; django.tm_left = 1; "
                               "from django.conf import settings; settings.TM_LEFT = 1"), url)
    assert changed.ok, changed.stderr
    seen = runner.run(shell("import os, django; from django.conf import settings; "
                            "print(os.environ.get('TM_LEFT'), hasattr(django, 'tm_left'), "
                            "hasattr(settings, 'TM_LEFT'))"), url)
    assert seen.stdout.split() == ["None", "False", "False"]


def test_each_child_has_its_own_connection_and_the_server_none(runners, database, pg_admin):
    name, url = database
    runner = runners["fork"]
    backend = shell("from django.db import connection; c = connection.cursor(); "
                    "c.execute('SELECT pg_backend_pid()'); print(c.fetchone()[0])")
    first, second = (runner.run(backend, url) for _ in range(2))
    assert first.ok and second.ok, first.stderr + second.stderr
    assert int(first.stdout) != int(second.stdout)
    deadline = time.monotonic() + 10
    while pg_admin.rows("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pg_admin.rows("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)) == []
    assert alive(server_pid(runner, url))


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_hanging_step_is_killed_with_its_process_group(database, isolation):
    _, url = database
    runner = StepRunner(MANAGE, SETTINGS, 3, Log(0), isolation=isolation)
    try:
        result = runner.run(shell("import subprocess, time; child = subprocess.Popen(['sleep', '300']); "
                                  "print('GRANDCHILD', child.pid, flush=True); time.sleep(300)"), url)
        assert result.timed_out and not result.ok
        assert result.error_summary() == "timed out after 3s (raise --step-timeout if it is only slow)"
        grandchild = int(re.search(r"GRANDCHILD (\d+)", result.stdout).group(1))
        assert all_gone([grandchild])
        assert runner.run(["check"], url).ok  # the server still serves
    finally:
        runner.kill_all()


@pytest.mark.parametrize(("code", "returncode", "summary"), [
    ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", -11, "killed by SIGSEGV"),
    ("import os; print('half way', flush=True); os._exit(3)", 3, "exit status 3 after: half way"),
])
def test_a_crashing_step_fails_alone(runners, database, code, returncode, summary):
    _, url = database
    for runner in runners.values():
        result = runner.run(shell(code), url)
        assert (result.returncode, result.error_summary()) == (returncode, summary)
        assert runner.run(["check"], url).ok
    assert runners["fork"].started == 1


def test_steps_on_one_server_run_side_by_side(runners, database):
    _, url = database
    runner = runners["fork"]
    results: dict[int, object] = {}

    def step(number: int) -> None:
        results[number] = runner.run(shell(f"import time; time.sleep(1); print('step {number}')"), url)

    threads = [threading.Thread(target=step, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT_S)
    assert {n: r.stdout for n, r in results.items()} == {n: f"step {n}\n" for n in range(3)}
    assert runner.started == 1 and runner.steps == 3


def test_a_dead_step_server_ends_the_run_in_one_line(runners, database):
    name, url = database
    runner = runners["fork"]
    assert runner.run(["check"], url).ok
    pid = server_pid(runner, url)
    outcome: dict[str, object] = {}

    def hang() -> None:
        try:
            runner.run(shell("import time; print('CHILD', __import__('os').getpid(), flush=True); "
                             "time.sleep(300)"), url)
        except StepServerDied as error:
            outcome["error"] = error

    thread = threading.Thread(target=hang)
    thread.start()
    time.sleep(2)
    child_pids = [int(p) for p in os.popen(f"pgrep -P {pid}").read().split()]
    os.kill(pid, 9)
    thread.join(TIMEOUT_S)
    message = str(outcome["error"])
    assert message == (f"the step server of database {name} (pid {pid}) ended (killed by SIGKILL) while running "
                       "`manage.py shell -v 0 ...`; the run stops here (rerun with --isolation process to run "
                       "every step as a process of its own)")
    assert "\n" not in message
    assert child_pids and all_gone(child_pids)
    with pytest.raises(StepServerDied):  # the run is over: every later step says why
        runner.run(["check"], url)


def test_a_step_server_dead_while_idle_does_not_blame_the_next_step(runners, database):
    name, url = database
    runner = runners["fork"]
    assert runner.run(["check"], url).ok
    pid = server_pid(runner, url)
    os.kill(pid, 9)  # between two steps: nothing of the project runs
    assert all_gone([pid])
    with pytest.raises(StepServerDied) as raised:
        runner.run(["showmigrations"], url)
    assert str(raised.value) == (
        f"the step server of database {name} (pid {pid}) ended (killed by SIGKILL) before it could run "
        "`manage.py showmigrations`; the run stops here (rerun with --isolation process to run every step as a "
        "process of its own)")


def test_kill_all_interrupts_a_waiting_step_and_leaves_no_process(runners, database):
    _, url = database
    runner = runners["fork"]
    outcome: dict[str, object] = {}

    def hang() -> None:
        try:
            runner.run(shell("import time; time.sleep(300)"), url)
        except Interrupted as interrupted:
            outcome["interrupted"] = interrupted

    thread = threading.Thread(target=hang)
    thread.start()
    time.sleep(2)
    pid = server_pid(runner, url)
    children = [int(p) for p in os.popen(f"pgrep -P {pid}").read().split()]
    runner.kill_all()
    thread.join(TIMEOUT_S)
    assert "interrupted" in outcome
    assert children and all_gone([pid, *children])


def test_release_stops_the_server(runners, database):
    _, url = database
    runner = runners["fork"]
    assert runner.run(["check"], url).ok
    pid = server_pid(runner, url)
    runner.release(url)
    assert all_gone([pid], within_s=0)
    assert runner.run(["check"], url).ok  # a later step starts a new one
    assert runner.started == 2


def test_threads_in_djangos_start_mean_processes(database):
    _, url = database
    stream = io.StringIO()
    runner = StepRunner(MANAGE, "crash_project.settings_thread", TIMEOUT_S, Log(1, stream), isolation="fork")
    try:
        first, second = runner.run(["check"], url), runner.run(["check"], url)
        assert first.ok and second.ok, first.stderr
        assert runner.isolation == "process"
        assert (runner.started, runner.steps) == (3, 2)  # the server that refused, then two processes
        assert stream.getvalue() == ("step server: threads running after Django started: metrics-flusher; "
                                     "forking would copy them half-way, so every step runs as a process of "
                                     "its own (--isolation process)\n")
    finally:
        runner.kill_all()


@pytest.mark.parametrize(("last_line", "hinted"), [
    # django-oscar's customer.0006 applied alone (survey 4): every later migrate says this
    ("ValueError: The field order.CommunicationEvent.event_type was declared with a lazy reference to "
     "'customer.communicationeventtype', but app 'customer' doesn't provide model 'communicationeventtype'.", True),
    ("ValueError: The field holders.Holder.kind was declared with a lazy reference to 'kinds.kind', but app "
     "'kinds' isn't installed.", True),
    ("ValueError: Related model 'kinds.kind' cannot be resolved", True),
    ("ValueError: Cannot query \"Permission object (255)\": Must be \"Permission\" instance.", False),
])
def test_a_state_django_cannot_render_is_explained(last_line, hinted):
    stderr = f"Traceback (most recent call last):\n  File \"manage.py\", line 22, in <module>\n{last_line}\n"
    summary = StepResult(["migrate", "customer", "0005"], 1, "", stderr, 0.1).error_summary()
    assert summary.startswith(last_line.rstrip("."))
    assert ("add the missing dependency" in summary) is hinted, summary
