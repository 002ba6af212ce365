"""Nothing is left behind, even after `kill -9`: the watchdog, and the clean-up of what earlier
hard-killed runs left.

The tool is run as a user runs it (a subprocess) and SIGKILLed at chosen moments: while its
throwaway cluster starts (initdb running; the server starting), during a window step that hangs
(`hanging_project`: the reverse of sleepy_reverse.0003 sleeps in the server) on a server and on a
throwaway cluster, from the one-file build (.pyz), and while it writes its reports. Then, within
a few seconds: no scratch database of the run's role, no session, no folder, no server, and no
process the run started (every descendant seen just before the kill is gone).

The start-up clean-up is tested on real leftovers: a cluster whose owner and watchdog were
killed (its server still running), and scratch databases whose run is gone, beside ones whose
run lives (its advisory lock held) or that are in use; and two runs side by side on one server
as one role never take each other's databases.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psycopg2
import pytest

from migration_check.cleanup.leftovers import drop_abandoned_scratch, remove_abandoned_clusters, run_of
from migration_check.log import Log
from migration_check.postgres.address import ServerAddress
from migration_check.postgres.cluster import OWNER_FILE, EphemeralCluster, OwnerRecord, find_postgres_bindir
from migration_check.postgres.server import Server, run_lock_key
from migration_check.processes.identity import ProcessId, processes_naming
from tests.migration_check.end_to_end.test_tiny_project import Account, build_tiny_project, child_env

REPO_ROOT = Path(__file__).resolve().parents[3]
TOOL = REPO_ROOT / "scripts" / "test_migrations.py"
HANGING = REPO_ROOT / "tests" / "fixtures" / "hanging_project" / "manage.py"
SETTLE_S = 10  # "within a few seconds"
Moment = Callable[[subprocess.Popen, str], bool]  # (the run, its output so far) -> kill now?
NO_SERVER_ENV = {"DATABASE_URL": None, "HELLO_TEST_PG_SERVER_URL": None, "TEST_DATABASE_URL": None}


def process_table() -> dict[int, int]:
    """pid -> parent pid, for every process."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        table[int(stat.parent.name)] = int(text[text.rfind(")") + 2:].split()[1])
    return table


def descendants(pid: int) -> set[int]:
    table = process_table()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in table.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    """The pids still running (zombies count as gone: they hold nothing)."""
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.add(pid)
    return running


def eventually(condition: Callable[[], object], seconds: float = SETTLE_S) -> object:
    """The condition's last value, once it is falsy or when `seconds` have passed."""
    deadline = time.monotonic() + seconds
    value = condition()
    while value and time.monotonic() < deadline:
        time.sleep(0.2)
        value = condition()
    return value


def folders_of(pid: int) -> list[Path]:
    """Throwaway cluster folders whose owner record names process `pid`."""
    found = []
    for folder in Path("/tmp").glob("tm-pg-*"):
        record = OwnerRecord.read(folder)
        if record is not None and record.owner.pid == pid:
            found.append(folder)
    return found


@dataclass
class Killed:
    """A tool run killed with SIGKILL, and what was running just before."""

    argv: list[str]
    output: str
    stderr: str
    family: set[int]  # descendants of the tool just before the kill
    folders: list[Path]  # its cluster folders just before the kill

    def context(self) -> str:
        return (f"\n--- command\n{' '.join(self.argv)}\n--- stdout (end)\n{self.output[-3000:]}"
                f"\n--- stderr\n{self.stderr[-3000:]}")


def collect(stream: IO[str]) -> tuple[list[str], threading.Thread]:
    """Read `stream` line by line in a thread (the output so far is in the list)."""
    lines: list[str] = []
    thread = threading.Thread(target=lambda: lines.extend(iter(stream.readline, "")), daemon=True)
    thread.start()
    return lines, thread


def kill_when(argv: list[str], env: dict[str, str], ready: Moment,
              cwd: Path = REPO_ROOT, timeout: float = 180) -> Killed:
    """Start the tool; SIGKILL it once `ready(process, output so far)`; wait for its output to
    end (the watchdog holds the tool's stderr until it is done)."""
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, bufsize=1)
    (out, out_thread), (err, err_thread) = collect(process.stdout), collect(process.stderr)
    deadline = time.monotonic() + timeout
    try:
        while not ready(process, "".join(out)):
            assert process.poll() is None, f"the run ended before the moment came:\n{''.join(out + err)}"
            assert time.monotonic() < deadline, f"the moment never came:\n{''.join(out)}"
            time.sleep(0.05)
        family, folders = descendants(process.pid), folders_of(process.pid)
        process.kill()
        process.wait()
        out_thread.join(120)
        err_thread.join(120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return Killed(argv, "".join(out), "".join(err), family, folders)


def after(condition: Moment, then_wait_s: float) -> Moment:
    """Ready `then_wait_s` seconds after `condition` first held."""
    seen: list[float] = []

    def ready(process: subprocess.Popen, output: str) -> bool:
        if not seen and condition(process, output):
            seen.append(time.monotonic())
        return bool(seen) and time.monotonic() - seen[0] >= then_wait_s

    return ready


def printed(pattern: str, then_wait_s: float = 0.0) -> Moment:
    """Ready once the output matched `pattern`, and `then_wait_s` more seconds passed."""
    return after(lambda process, output: re.search(pattern, output) is not None, then_wait_s)


def hanging_argv(*extra: str) -> list[str]:
    return [sys.executable, str(TOOL), "--manage", str(HANGING), "--settings", "hanging_project.settings",
            "-v", "--depth", "2", *extra]


def in_the_hanging_step() -> Moment:
    """Once the rollback of sleepy_reverse.0003 has started: its reverse sleeps in the server."""
    return printed(r"manage\.py migrate sleepy_reverse 0002_job_done", then_wait_s=1.5)


def assert_nothing_left_of(killed: Killed) -> None:
    """No process of the run, no cluster folder, no server on it, within a few seconds."""
    assert killed.family, "the run had started nothing?" + killed.context()
    assert eventually(lambda: alive(killed.family)) == set(), "processes of the run are left" + killed.context()
    for folder in killed.folders:
        assert eventually(folder.exists) is False, f"{folder} is left" + killed.context()
        assert eventually(lambda f=folder: processes_naming(f)) == [], f"a server on {folder} runs" + killed.context()
    assert "Traceback" not in killed.stderr, killed.context()


# ------------------------------------------------------------------------------------------------
# SIGKILL at several points of a run
# ------------------------------------------------------------------------------------------------


def folder_reached(state: str) -> Moment:
    """Ready when the run's cluster folder exists and initdb runs in it (`initdb`), or once the
    server writes its pid file (`server starting`)."""
    def ready(process: subprocess.Popen, output: str) -> bool:
        folders = folders_of(process.pid)
        if not folders:
            return False
        data = folders[0] / "data"
        return data.exists() if state == "initdb" else (data / "postmaster.pid").exists()
    return ready


@pytest.mark.parametrize("moment", ["initdb", "server starting"])
def test_sigkill_while_the_throwaway_cluster_starts_leaves_nothing(tmp_path, moment):
    manage = build_tiny_project(tmp_path / "project")
    argv = [sys.executable, str(TOOL), "--manage", str(manage), "--settings", "tinyproj.settings", "-v"]
    killed = kill_when(argv, child_env(**NO_SERVER_ENV), folder_reached(moment), cwd=manage.parent)
    assert len(killed.folders) == 1, killed.context()
    assert_nothing_left_of(killed)
    assert "watchdog: the run ended without removing what it created" in killed.stderr, killed.context()


def test_sigkill_during_a_window_step_on_a_server_leaves_nothing(pg_admin):
    account = Account(pg_admin).create()
    try:
        killed = kill_when(hanging_argv("--database-url", account.url), child_env(), in_the_hanging_step())
        assert_nothing_left_of(killed)
        assert eventually(account.scratch_left) == [], killed.context()
        assert account.sessions(settle_s=SETTLE_S) == [], killed.context()
        assert account.sentinel_rows() and account.sentinel_tables() == ["sentinel"]
        # the chain's database, under a slot's name (chain/slots.py)
        assert re.search(r"removed .*scratch database tm_scratch_[0-9a-f]{8}_\d+_worker1\b", killed.stderr), (
            killed.context())
        for secret in account.secrets():
            assert secret not in killed.output + killed.stderr
    finally:
        account.drop()


def test_sigkill_during_a_window_step_on_a_throwaway_cluster_leaves_nothing():
    killed = kill_when(hanging_argv(), child_env(**NO_SERVER_ENV), in_the_hanging_step(), cwd=HANGING.parent)
    assert len(killed.folders) == 1, killed.context()
    assert_nothing_left_of(killed)


def test_sigkill_while_writing_the_reports_leaves_nothing(pg_admin, tmp_path):
    """The JUnit file is a FIFO: the run blocks opening it, after the JSON report is written."""
    junit = tmp_path / "junit.xml"
    os.mkfifo(junit)
    report = tmp_path / "report.json"
    account = Account(pg_admin).create()
    manage = build_tiny_project(tmp_path / "project")
    argv = [sys.executable, str(TOOL), "--manage", str(manage), "--settings", "tinyproj.settings", "--depth", "1",
            "--database-url", account.url, "--report-json", str(report), "--junit-xml", str(junit)]
    try:
        # Half a second after the JSON report appeared, the run is blocked opening the FIFO.
        killed = kill_when(argv, child_env(), after(lambda process, output: report.exists(), 0.5))
        assert json.loads(report.read_text())["ok"] is True
        # Everything was removed before the reports: the run had no child left, not even its watchdog.
        assert alive(killed.family) == set(), killed.context()
        assert account.scratch_left() == [] and account.sessions() == []
    finally:
        account.drop()


def test_sigkill_of_the_one_file_build_leaves_nothing(pg_admin, tmp_path):
    """From a .pyz the watchdog imports the package from the zip (the path the children get)."""
    pyz = tmp_path / "test_migrations.pyz"
    built = subprocess.run([sys.executable, "scripts/build_pyz.py", "--output", str(pyz)], cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    account = Account(pg_admin).create()
    try:
        argv = [sys.executable, str(pyz), *hanging_argv("--database-url", account.url)[2:]]
        killed = kill_when(argv, child_env(), in_the_hanging_step())
        assert_nothing_left_of(killed)
        assert eventually(account.scratch_left) == [], killed.context()
        assert "watchdog: the run ended without removing what it created" in killed.stderr, killed.context()
    finally:
        account.drop()


# ------------------------------------------------------------------------------------------------
# What earlier hard-killed runs left: cluster folders
# ------------------------------------------------------------------------------------------------


ABANDON_CLUSTER = """\
import sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
import migration_check.postgres.cluster as cluster
cluster.cluster_parent = lambda: Path({parent!r})
started = cluster.EphemeralCluster(cluster.find_postgres_bindir()).start()
print(started.folder, flush=True)
time.sleep(600)
"""


def abandoned_cluster(parent: Path) -> Path:
    """A cluster whose owner was killed (no watchdog): its folder and running server remain."""
    script = ABANDON_CLUSTER.format(repo=str(REPO_ROOT), parent=str(parent))
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    folder = Path(owner.stdout.readline().strip())
    owner.kill()
    owner.wait()
    assert (folder / "data" / "postmaster.pid").exists() and processes_naming(folder)
    return folder


@pytest.fixture
def short_parent():
    """A folder for clusters with a path short enough for a Unix socket (pytest's tmp_path is not)."""
    parent = Path(tempfile.mkdtemp(prefix="tmw-", dir="/tmp"))
    parent.chmod(0o755)  # the server runs as postgres when the tests run as root
    yield parent
    for folder in parent.glob("tm-pg-*"):
        EphemeralCluster.abandoned_in(folder, find_postgres_bindir()).stop()
    shutil.rmtree(parent, ignore_errors=True)


def test_a_cluster_whose_owner_was_killed_is_stopped_and_removed(short_parent):
    folder = abandoned_cluster(short_parent)
    removed = remove_abandoned_clusters(Log(0), short_parent)
    assert removed == [folder]
    assert not folder.exists()
    assert eventually(lambda: processes_naming(folder)) == []


def test_clusters_of_live_runs_and_folders_without_a_record_are_left_alone(short_parent):
    bindir = find_postgres_bindir()
    live = short_parent / "tm-pg-live"
    live.mkdir()
    OwnerRecord(ProcessId.current(), None, bindir).write(live)  # this test's process is alive
    guarded = short_parent / "tm-pg-guarded"
    guarded.mkdir()  # owner gone, but its watchdog (this process) still cleaning up
    OwnerRecord(ProcessId(2 ** 22 + 1, 1), ProcessId.current(), bindir).write(guarded)
    unknown = short_parent / "tm-pg-unknown"
    unknown.mkdir()  # no record: nothing proves whose it is
    foreign = short_parent / "tm-pg-foreign"
    foreign.mkdir()
    (foreign / OWNER_FILE).write_text("not json")
    assert remove_abandoned_clusters(Log(0), short_parent) == []
    assert all(path.is_dir() for path in (live, guarded, unknown, foreign))


def test_a_recycled_pid_does_not_keep_a_folder_alive(short_parent):
    """The record names pid and start time: this process's pid with another start time is not it."""
    folder = short_parent / "tm-pg-recycled"
    folder.mkdir()
    me = ProcessId.current()
    OwnerRecord(ProcessId(me.pid, (me.started or 0) + 12345), None, find_postgres_bindir()).write(folder)
    assert remove_abandoned_clusters(Log(0), short_parent) == [folder]


def test_a_run_removes_clusters_killed_runs_left_in_tmp(tmp_path):
    """The tool's start-up: here a run that then stops at once (the server is unreachable)."""
    folder = abandoned_cluster(Path("/tmp"))
    manage = build_tiny_project(tmp_path / "project")
    completed = subprocess.run(
        [sys.executable, str(TOOL), "--manage", str(manage), "--settings", "tinyproj.settings",
         "--database-url", "postgres://postgres:x@127.0.0.1:1/postgres"],
        capture_output=True, text=True, timeout=120, env=child_env(), cwd=REPO_ROOT)
    assert completed.returncode == 2, completed.stdout + completed.stderr
    # Another test's run may get there first; either way it is gone once a run has started.
    assert not folder.exists(), completed.stdout
    assert eventually(lambda: processes_naming(folder)) == []


# ------------------------------------------------------------------------------------------------
# What earlier hard-killed runs left: scratch databases on a shared server
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def role_server(pg_admin):
    """A Server logged in as a fresh CREATEDB role (only that role's databases are its own)."""
    account = Account(pg_admin).create()
    server = Server(ServerAddress.from_url(account.url), ephemeral=False)
    try:
        yield account, server
    finally:
        server.close()
        account.drop()


def create_as(account: Account, name: str) -> None:
    connection = psycopg2.connect(account.url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()


def test_only_scratch_databases_of_runs_that_are_gone_are_dropped(role_server, pg_admin):
    account, server = role_server
    gone, locked, busy = (f"tm_scratch_{run}_0_head" for run in ("00000abc", "fffffffe", "00000def"))
    others = "tm_scratch_00000123_0_head"  # a run of another role that is gone: not ours to drop
    odd = "tm_scratch_notarun_0_head"  # not a name the tool makes
    for name in (gone, locked, busy, odd):
        create_as(account, name)
    pg_admin.create_database(others)
    holder = psycopg2.connect(account.url)  # a live run of this role: it holds its lock
    holder.autocommit = True
    user = psycopg2.connect(pg_admin.url_for(busy, account.role, account.password))  # in use
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", run_lock_key("fffffffe"))
        assert drop_abandoned_scratch(server, Log(0)) == [gone]
        assert account.scratch_left() == sorted([busy, locked, odd])
        assert pg_admin.rows("SELECT 1 FROM pg_database WHERE datname IN (%s, %s)", (others, odd)) == [(1,), (1,)]
        holder.close()  # the run that held the lock is gone now; its database too, at the next start
        assert eventually(lambda: drop_abandoned_scratch(server, Log(0)) != [locked], 5) is False
        assert account.scratch_left() == sorted([busy, odd])
    finally:
        user.close()
        holder.close()
        pg_admin.drop_database(others)


def test_a_run_id_is_locked_for_the_life_of_its_server(role_server, pg_admin):
    account, server = role_server
    assert run_of(server.new_database_name("head")) == server.run_id
    holders = pg_admin.rows("SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.objsubid = 2 "
                            "AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.granted "
                            "AND l.mode = 'ShareLock' ORDER BY 1",
                            (run_lock_key(server.run_id)[0], int(server.run_id, 16)))
    # Two sessions hold it (shared): one of them may be lost and replaced while the other holds.
    assert holders == sorted([(server.scalar("SELECT pg_backend_pid()"),), (server.keeper.info.backend_pid,)])


def test_a_live_run_keeps_its_idle_databases_while_another_run_starts(pg_admin, tmp_path):
    """Run A hangs in a window step, so its head database sits idle with no session; run B, as
    the same role on the same server, starts and ends beside it: A's databases are all there."""
    account = Account(pg_admin).create()
    argv_a = hanging_argv("--database-url", account.url, "--step-timeout", "600")
    process = subprocess.Popen(argv_a, cwd=REPO_ROOT, env=child_env(), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    try:
        for line in process.stdout:
            if re.search(r"manage\.py migrate sleepy_reverse 0002_job_done", line):
                break
        time.sleep(1.0)
        before = account.scratch_left()
        assert any(name.endswith("_head") for name in before), before
        idle = [row[0] for row in pg_admin.rows(
            "SELECT datname FROM pg_database d WHERE datname = ANY(%s) AND NOT EXISTS "
            "(SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)", (before,))]
        assert idle, "expected one of A's databases to have no session (the case a wrong clean-up drops)"
        run_b = subprocess.run(
            [sys.executable, str(TOOL), "--manage", str(build_tiny_project(tmp_path / "project")),
             "--settings", "tinyproj.settings", "--database-url", account.url],
            cwd=REPO_ROOT, env=child_env(), capture_output=True, text=True, timeout=300)
        assert run_b.returncode == 0, run_b.stdout + run_b.stderr
        assert "Dropped" not in run_b.stdout, run_b.stdout
        assert set(before) <= set(account.scratch_left()), "run B dropped databases of run A"
        assert process.poll() is None, "run A died"
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=120)
        assert eventually(account.scratch_left) == []
        account.drop()


def test_two_runs_side_by_side_on_one_server_both_pass(pg_admin, tmp_path):
    account = Account(pg_admin).create()
    manage = build_tiny_project(tmp_path / "project")
    argv = [sys.executable, str(TOOL), "--manage", str(manage), "--settings", "tinyproj.settings",
            "--database-url", account.url]
    try:
        runs = [subprocess.Popen([*argv, "--report-json", str(tmp_path / f"{n}.json")], cwd=REPO_ROOT,
                                 env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for n in (1, 2)]
        outputs = [run.communicate(timeout=300) for run in runs]
        for run, (stdout, stderr) in zip(runs, outputs, strict=True):
            assert run.returncode == 0, stdout + stderr
            assert "Dropped" not in stdout
        for n in (1, 2):
            assert json.loads((tmp_path / f"{n}.json").read_text())["ok"] is True
        assert account.scratch_left() == []
    finally:
        account.drop()
