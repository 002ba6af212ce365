"""Infrastructure faults end a run with exit status 3, never a verdict, and nothing is left.

Each test starts a private PostgreSQL server of its own (the tool's EphemeralCluster on a TCP
port, password required) and a tiny project (test_lifecycle's, plus an app `nap` whose 0002
sleeps 3 s), runs the tool against it as a user does, and does to the server what a bad day
does: stops it mid-run, terminates the run's sessions, fills max_connections, ends one run's
lock-holding sessions while a second run starts. The waits are shortened through the
environment (TEST_MIGRATIONS_CONNECT_RETRY_S, TEST_MIGRATIONS_WATCHDOG_WAIT_S).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from xml.etree import ElementTree

import psycopg2
import pytest

from migration_check.postgres.cluster import EphemeralCluster, find_postgres_bindir
from migration_check.postgres.server import RUN_LOCK_CLASS
from tests.pg_plugin import free_tcp_port

from .test_tiny_project import INITIAL, MODELS, RUN_TIMEOUT_S, SETTINGS, build_tiny_project, child_env, tool_argv

FAST = {"TEST_MIGRATIONS_CONNECT_RETRY_S": "3", "TEST_MIGRATIONS_WATCHDOG_WAIT_S": "40"}
FAULT_LINE = re.compile(
    r"^test_migrations: the run could not finish: (?P<kind>[a-z ]+)(?: \(SQLSTATE \w+\))?: .+ \(.+\)$")
NAP = """\
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("nap", "0001_initial")]
    operations = [migrations.RunSQL("SELECT pg_sleep(3)", reverse_sql="SELECT pg_sleep(3)")]
"""


@pytest.fixture(scope="module")
def manage(tmp_path_factory) -> Path:
    manage = build_tiny_project(tmp_path_factory.mktemp("faults") / "project")
    root = manage.parent
    (root / "tinyproj" / "settings_nap.py").write_text(SETTINGS.format(app="nap"))
    (root / "nap" / "migrations").mkdir(parents=True)
    for path, text in {"__init__.py": "", "models.py": MODELS["ledger"], "migrations/__init__.py": "",
                       "migrations/0001_initial.py": INITIAL, "migrations/0002_nap.py": NAP}.items():
        (root / "nap" / path).write_text(text)
    return manage


class PrivateServer:
    """A server of the test's own, which the test may stop, restart and crowd."""

    def __init__(self, max_connections: int = 40) -> None:
        self.cluster = EphemeralCluster(find_postgres_bindir(), tcp_port=free_tcp_port(), password="pw-faults",
                                        settings={"max_connections": str(max_connections)})

    def __enter__(self) -> PrivateServer:
        self.cluster.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cluster.stop()

    @property
    def url(self) -> str:
        return self.cluster.url

    def connect(self) -> psycopg2.extensions.connection:
        connection = psycopg2.connect(**self.cluster.address.connect_kwargs())
        connection.autocommit = True
        return connection

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self.connect() as connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall() if cursor.description else []
        connection.close()
        return rows

    def scratch_left(self) -> list[str]:
        return [row[0] for row in self.rows("SELECT datname FROM pg_database WHERE datname LIKE 'tm\\_scratch\\_%%'")]

    def pg_ctl(self, *args: str) -> None:
        data = str(self.cluster.folder / "data")
        if args[0] == "start":
            args = ("-l", str(self.cluster.folder / "server.log"), "-o", self.cluster._server_options(
                self.cluster.folder), "-w", "start")
        result = self.cluster._run([str(self.cluster.bindir / "pg_ctl"), "-D", data, *args])
        assert result.returncode == 0, result.stderr

    def wait_for(self, where: str, timeout: float = 30) -> None:
        """Until a session matching `where` shows in pg_stat_activity."""
        deadline = time.monotonic() + timeout
        while not self.rows(f"SELECT 1 FROM pg_stat_activity WHERE {where}"):
            assert time.monotonic() < deadline, f"no session {where}"
            time.sleep(0.1)

    def terminate(self, where: str) -> int:
        return len(self.rows(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {where} "
                             "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"))


def start_run(manage: Path, settings: str, url: str, *extra: str) -> subprocess.Popen:
    argv = tool_argv(manage, settings, "--database-url", url, "-v", *extra)
    return subprocess.Popen(argv, cwd=manage.parent, env=child_env(**FAST), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)


def read_until(process: subprocess.Popen, pattern: str) -> list[str]:
    lines = []
    for line in process.stdout:
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError("never saw " + pattern + ":\n" + "".join(lines) + process.stderr.read())


def finish(process: subprocess.Popen, seen: list[str]) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    return process.returncode, "".join(seen) + stdout, stderr


def assert_fault(returncode: int, stdout: str, stderr: str, kinds: tuple[str, ...]) -> None:
    context = f"\n--- exit {returncode}\n--- stdout\n{stdout[-3000:]}\n--- stderr\n{stderr[-3000:]}"
    assert returncode == 3, context
    assert "Traceback" not in stderr, context  # (-v shows a failing step's output on stdout)
    last = stderr.strip().splitlines()[-1]
    match = FAULT_LINE.match(last)
    assert match and match.group("kind") in kinds, context
    assert "FAILED" not in stdout, context  # no migration is blamed


def assert_not_reached(report: Path) -> dict:
    data = json.loads(report.read_text())
    assert data["ok"] is False and data["fault"] is not None
    migrations = [m for app in data["apps"] for m in app["migrations"]]
    assert migrations and all(m["not_reached"] for m in migrations), migrations
    assert all("failed" not in (m["apply"], m["rollback"], m["reapply"]) for m in migrations), migrations
    return data


@pytest.mark.parametrize("isolation", ["fork", "process"])
def test_terminated_sessions_end_the_run_with_exit_3(manage, tmp_path, isolation):
    with PrivateServer() as server:
        report = tmp_path / "r.json"
        process = start_run(manage, "settings_sleepy", server.url, "--depth", "1", "--isolation", isolation,
                            "--report-json", str(report))
        seen = read_until(process, r"manage\.py migrate --noinput")
        server.wait_for("query LIKE 'SELECT pg_sleep%%' AND state = 'active'")
        assert server.terminate("usename = 'postgres'") >= 1
        returncode, stdout, stderr = finish(process, seen)
        # libpq reports a backend ended mid-query as 57P01 or as a closed connection, by timing.
        assert_fault(returncode, stdout, stderr, ("terminated", "connection lost"))
        assert json.loads(report.read_text())["fault"]["kind"] in ("terminated", "connection_lost")
        assert server.scratch_left() == []


def test_a_server_stopped_mid_run_ends_it_with_exit_3_and_nothing_is_left_once_it_is_back(manage, tmp_path):
    with PrivateServer() as server:
        process = start_run(manage, "settings_nap", server.url, "--depth", "1", "--no-compat",
                            "--report-json", str(tmp_path / "r.json"), "--junit-xml", str(tmp_path / "j.xml"))
        seen = read_until(process, r"manage\.py migrate nap 0002_nap")  # the window: a verdict was due
        time.sleep(1.0)
        server.pg_ctl("-m", "fast", "-w", "stop")
        time.sleep(6)  # longer than the run's retry: it gives up, its watchdog waits
        server.pg_ctl("start")
        returncode, stdout, stderr = finish(process, seen)
        assert_fault(returncode, stdout, stderr, ("terminated", "server shutdown", "connection lost",
                                                  "unreachable"))
        assert_not_reached(tmp_path / "r.json")
        failed = [case.get("classname") for case in ElementTree.parse(tmp_path / "j.xml").iter("testcase")
                  if case.find("failure") is not None]
        assert failed == ["run"]  # the fault, never a migration
        deadline = time.monotonic() + 30
        while server.scratch_left() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert server.scratch_left() == []


def fill_connections(server: PrivateServer, leave: int) -> list:
    """Open sessions until the server refuses one, then close `leave` of them."""
    held = []
    while True:
        try:
            held.append(server.connect())
        except psycopg2.OperationalError as error:
            assert "too many clients" in str(error) or "remaining connection slots" in str(error), error
            break
        assert len(held) < 100
    for connection in held[:leave]:
        connection.close()
    return held[leave:]


@pytest.mark.parametrize("free", [2, 1], ids=["after-the-start", "before-any-result"])
def test_no_free_connections_ends_the_run_with_exit_3_after_retrying(manage, tmp_path, free):
    with PrivateServer(max_connections=12) as server:
        held = fill_connections(server, leave=free)  # 2: the run's two lock-holding sessions; 1: one of them
        try:
            process = start_run(manage, "settings", server.url, "--depth", "1", "--report-json",
                                str(tmp_path / "r.json"), "--junit-xml", str(tmp_path / "j.xml"))
            returncode, stdout, stderr = finish(process, [])
        finally:
            for connection in held:
                connection.close()
        assert_fault(returncode, stdout, stderr, ("too many connections",))
        if free == 2:  # a step's connection was retried before giving up (the run's own sessions retry silently)
            assert "trying again in" in stdout
        # Wherever the fault came (with one free connection: before the project was probed), the
        # reports say why and blame no migration.
        report = json.loads((tmp_path / "r.json").read_text())
        assert (report["ok"], report["fault"]["kind"]) == (False, "too_many_connections"), report
        migrations = [m for app in report["apps"] for m in app["migrations"]]
        assert bool(migrations) == (free == 2), report
        assert all(m["not_reached"] for m in migrations), migrations
        failed = [case.get("classname") for case in ElementTree.parse(tmp_path / "j.xml").iter("testcase")
                  if case.find("failure") is not None]
        assert failed == ["run"], failed
        assert server.scratch_left() == []


def test_a_full_server_at_the_start_is_refused_with_what_to_do(manage, tmp_path):
    with PrivateServer(max_connections=12) as server:
        held = fill_connections(server, leave=0)
        try:
            returncode, stdout, stderr = finish(start_run(manage, "settings", server.url, "--depth", "1"), [])
        finally:
            for connection in held:
                connection.close()
    context = f"exit {returncode}\n{stdout}\n{stderr}"
    assert returncode == 2 and "Traceback" not in stderr, context  # nothing started yet: the URL's server is unusable
    assert stderr.strip().splitlines()[-1].endswith(
        "too many clients already (the server has no free connection: end idle sessions or raise "
        "max_connections, then run again)"), context


def test_connections_that_free_up_while_retrying_let_the_run_pass(manage):
    with PrivateServer(max_connections=12) as server:
        held = fill_connections(server, leave=2)
        try:
            process = start_run(manage, "settings", server.url, "--depth", "1")
            seen = read_until(process, r"trying again in")
        finally:
            for connection in held:
                connection.close()
        returncode, stdout, stderr = finish(process, seen)
        assert returncode == 0, stdout + stderr
        assert server.scratch_left() == []


def test_a_run_that_loses_its_lock_sessions_keeps_its_databases_while_another_run_starts(manage):
    """Run A's lock-holding sessions are terminated mid-run, while its head database is idle; run
    B (same role) starts at once and sweeps leftovers. Neither loses a database: both pass."""
    with PrivateServer() as server:
        a = start_run(manage, "settings_nap", server.url, "--depth", "1", "--no-compat")
        # The re-apply naps 3 s; A's head database sits idle by then (its checks are done).
        seen = read_until(a, r"nap\.0002_nap: rollback \.\.\. OK")
        holders = server.rows("SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'advisory' "
                              "AND classid::bigint = %s", (RUN_LOCK_CLASS,))
        assert len(holders) == 2, holders
        assert server.terminate(f"pid IN ({', '.join(str(pid) for (pid,) in holders)})") == 2
        b = start_run(manage, "settings", server.url, "--depth", "1")
        b_code, b_out, b_err = finish(b, [])
        a_code, a_out, a_err = finish(a, seen)
        assert "Dropped" not in b_out, b_out
        assert (a_code, b_code) == (0, 0), a_out[-3000:] + a_err + b_out[-2000:] + b_err
        assert server.scratch_left() == []


def lock_holders(admin: psycopg2.extensions.connection, run_id: str) -> list[int]:
    with admin.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = %s "
                       "AND objid::bigint = %s AND granted ORDER BY 1", (RUN_LOCK_CLASS, int(run_id, 16)))
        return [row[0] for row in cursor.fetchall()]


def test_a_lost_admin_session_is_replaced_and_the_lock_taken_again(pg_server_url):
    from migration_check.postgres.address import ServerAddress
    from migration_check.postgres.server import Server

    server = Server(ServerAddress.from_url(pg_server_url), ephemeral=False)
    admin = psycopg2.connect(pg_server_url)
    admin.autocommit = True
    try:
        name = server.create_database("lost")
        old_pid = server.scalar("SELECT pg_backend_pid()")
        with admin.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", (old_pid,))
        assert server.scalar("SELECT 1") == 1  # sent again on a new session
        assert server.scalar("SELECT pg_backend_pid()") != old_pid
        deadline = time.monotonic() + 10
        while len(lock_holders(admin, server.run_id)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        holders = lock_holders(admin, server.run_id)
        assert len(holders) == 2 and old_pid not in holders
        server.drop_database(name)
    finally:
        server.drop_all_scratch()
        server.close()
        admin.close()
