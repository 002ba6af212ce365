"""Shared by the end-to-end tests of scripts/test_migrations.py on the fixture projects.

Each end-to-end test module runs the tool once per configuration as a user would (a subprocess,
cwd the repository root) in a module-scoped fixture, then asserts the report in many small
tests. Every run works as its own role (LOGIN CREATEDB, not a superuser) with a sentinel
database named in its URL, which makes two checks exact even when pytest-xdist runs other tool
runs on the same server at the same time:

- no scratch database is left: none that the run's role owns is named ``tm_scratch_%``;
- the database named in the URL is untouched: the sentinel rows are all there, and no
  ``django_migrations`` table appeared in it.

The configurations whose steps fail, crash, hang or reach other databases run in both isolations
(``--isolation fork`` and ``process``): ``run_both`` runs a configuration once in each, side by
side; each module's ``run`` fixture is parametrized over them, so every verdict test runs against
both reports, and ``assert_same_verdicts`` compares the two reports field by field. The others
run in fork only (``fixture_in_fork``; docs/tests.md says which and why).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar
from xml.etree import ElementTree

import psycopg2
import pytest

from tests.report_schema import assert_report_valid

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOL = REPO_ROOT / "scripts" / "test_migrations.py"
FIXTURES = REPO_ROOT / "tests" / "fixtures"
RUN_TIMEOUT_S = 900
# Never inherited by a tool run (on GitHub Actions they would write into the real job summary):
# a test that wants them passes them in ``env``.
SCRUBBED_ENV = ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "DJANGO_SETTINGS_MODULE")
SCRATCH_PATTERN = r"tm\_scratch\_%"
SENTINEL_ROWS = [(1, "first"), (2, "zweite – ünïcødé"), (3, "")]

ISOLATIONS = ("fork", "process")

PASSED = {"rollback": "passed", "reapply": "passed", "schema": "identical", "data": "preserved"}
NOT_ROLLED_BACK = {"reapply": "not_run", "schema": "not_checked", "data": "not_checked"}
# Behind a newer migration that cannot be rolled back, with the verdicts of its own test (issue 18;
# before, blocked hid them: apply not_run, reapply not_run, schema and data not_checked).
BLOCKED = {**PASSED, "rollback": "blocked", "rollback_alone": "passed", "apply": "passed"}


class PgAdmin:
    """A superuser connection to the test server, for setting up and inspecting tool runs."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.parts = urllib.parse.urlsplit(server_url)
        self.connection = psycopg2.connect(server_url)
        self.connection.autocommit = True

    def rows(self, sql: str, params: tuple = (), dbname: str | None = None) -> list[tuple]:
        if dbname is None:
            with self.connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall() if cursor.description else []
        connection = psycopg2.connect(self.url_for(dbname))
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()

    def url_for(self, dbname: str, user: str | None = None, password: str | None = None) -> str:
        netloc = self.parts.netloc
        if user is not None:
            host = netloc.rsplit("@", 1)[-1]
            netloc = f"{user}:{urllib.parse.quote(password or '', safe='')}@{host}"
        return urllib.parse.urlunsplit((self.parts.scheme, netloc, "/" + dbname, "", ""))

    def create_role(self, name: str, password: str, superuser: bool = False) -> None:
        self.rows(f'CREATE ROLE "{name}" LOGIN CREATEDB {"SUPERUSER" if superuser else ""} PASSWORD %s', (password,))

    def create_database(self, name: str, owner: str = "postgres") -> None:
        self.rows(f'CREATE DATABASE "{name}" OWNER "{owner}"')

    def drop_database(self, name: str) -> None:
        self.rows(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def databases_owned_by(self, role: str, pattern: str = SCRATCH_PATTERN) -> list[str]:
        return [row[0] for row in self.rows(
            "SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
            "WHERE r.rolname = %s AND datname LIKE %s ORDER BY 1", (role, pattern))]

    def backends_of(self, role: str, settle_s: float = 0) -> list[str]:
        """The role's sessions, after waiting up to settle_s for closing ones to go."""
        deadline = time.monotonic() + settle_s
        while True:
            backends = [row[0] for row in self.rows(
                "SELECT coalesce(datname, '') || ': ' || query FROM pg_stat_activity "
                "WHERE usename = %s", (role,))]
            if not backends or time.monotonic() >= deadline:
                return backends
            time.sleep(0.2)

    def drop_role(self, role: str) -> None:
        for name in self.databases_owned_by(role, "%"):
            self.drop_database(name)
        self.rows("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                  (role,))
        self.rows(f'DROP ROLE IF EXISTS "{role}"')

    def close(self) -> None:
        self.connection.close()


@pytest.fixture(scope="session")
def pg_admin(pg_server_url: str) -> Iterator[PgAdmin]:
    admin = PgAdmin(pg_server_url)
    yield admin
    admin.close()


@dataclass
class ToolRun:
    """One run of scripts/test_migrations.py and what was observed around it."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    report: dict | None
    leftover_scratch: list[str] = field(default_factory=list)
    leftover_backends: list[str] = field(default_factory=list)
    sentinel_rows: list[tuple] = field(default_factory=list)
    sentinel_tables: list[str] = field(default_factory=list)
    # What the forked children took from their step servers (inside_django/warm_states.py), a
    # line per use: graph, state, left. Every run checks each against Django's own.
    warm_state_uses: list[str] = field(default_factory=list)

    def context(self) -> str:
        """Labelled blocks for assertion messages: what ran and what it said."""
        return (f"\n--- command\n{' '.join(self.argv)}\n--- exit status\n{self.returncode}"
                f"\n--- stdout (end)\n{self.stdout[-6000:]}"
                f"\n--- stderr (end)\n{self.stderr[-4000:]}")

    def require_report(self) -> dict:
        """The report, checked against docs/report.schema.json (every end-to-end run's report)."""
        assert self.report is not None, "no JSON report was written" + self.context()
        assert_report_valid(self.report)
        return self.report

    def check(self, name: str) -> dict:
        checks = {check["name"]: check for check in self.require_report()["checks"]}
        assert name in checks, f"check {name!r} missing from the report: {sorted(checks)}"
        return checks[name]

    def app(self, label: str) -> list[dict]:
        apps = {entry["app"]: entry["migrations"] for entry in self.require_report()["apps"]}
        assert label in apps, f"app {label!r} not in the report: {sorted(apps)}" + self.context()
        return apps[label]

    def migration(self, label: str, name: str) -> dict:
        found = {m["name"]: m for m in self.app(label)}
        assert name in found, f"{label}.{name} missing from the window: {list(found)}"
        return found[name]

    def assert_verdicts(self, label: str, name: str, **expected: str) -> dict:
        """Assert the verdict fields given (rollback, reapply, schema, data) exactly."""
        migration = self.migration(label, name)
        actual = {key: migration.get(key) for key in expected}
        assert actual == expected, (
            f"{label}.{name}: verdicts\n--- expected\n{expected}\n--- reported\n{actual}"
            f"\n--- error\n{migration.get('error')}\n--- details\n{migration.get('details')}")
        return migration


def detail_text(migration: dict) -> str:
    """A migration's details as one string, whatever shape each entry has."""
    return "\n".join(
        item if isinstance(item, str) else json.dumps(item, sort_keys=True)
        for item in migration.get("details") or []
    )


@pytest.fixture(scope="session")
def run_tool(pg_admin: PgAdmin, tmp_path_factory: pytest.TempPathFactory):
    """Factory: run the tool on a fixture project as a fresh CREATEDB role; returns a ToolRun.

    ``project`` is a folder under tests/fixtures (or only a name, with ``manage`` the path of a
    manage.py elsewhere); ``settings`` defaults to ``<project>.settings``; ``extra`` are more
    command-line arguments; ``env`` is added to the environment (DATABASE_URL stays the pytest
    run's server: the tool must prefer the option); ``superuser`` makes the role a superuser
    (event triggers, for the lock observation, need one); ``command`` replaces
    ``python scripts/test_migrations.py`` (e.g. the one-file build), run in ``cwd``.
    """

    def run(project: str, *extra: str, settings: str | None = None,
            env: dict[str, str] | None = None, superuser: bool = False, manage: Path | None = None,
            command: list[str] | None = None, cwd: Path = REPO_ROOT) -> ToolRun:
        token = secrets.token_hex(4)
        role, password = f"tm_e2e_{token}", secrets.token_hex(12)
        sentinel_db = f"tm_e2e_sentinel_{token}"
        pg_admin.create_role(role, password, superuser)
        pg_admin.create_database(sentinel_db)
        pg_admin.rows("CREATE TABLE sentinel (id integer PRIMARY KEY, note text NOT NULL)",
                      dbname=sentinel_db)
        for row in SENTINEL_ROWS:
            pg_admin.rows("INSERT INTO sentinel VALUES (%s, %s)", row, dbname=sentinel_db)
        report_path = tmp_path_factory.mktemp(f"{project}-run") / "report.json"
        if "--junit-xml" not in extra:  # every run's JUnit file is compared with its other reports
            extra = (*extra, "--junit-xml", str(report_path.parent / "junit.xml"))
        junit_path = Path(extra[list(extra).index("--junit-xml") + 1])
        argv = [*(command or [sys.executable, str(TOOL.relative_to(REPO_ROOT))]),
                "--manage", str(manage or (FIXTURES / project / "manage.py").relative_to(REPO_ROOT)),
                "--settings", settings or f"{project}.settings",
                "--database-url", pg_admin.url_for(sentinel_db, role, password),
                "--report-json", str(report_path), *extra]
        child_env = {key: value for key, value in os.environ.items() if key not in SCRUBBED_ENV}
        uses = report_path.parent / "warm-states.log"
        child_env.update({"TM_WARM_STATES_CHECK": "1", "TM_WARM_STATES_LOG": str(uses)})
        child_env.update(env or {})
        started = time.monotonic()
        try:
            completed = subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                                       timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL,
                                       env=child_env)
            wall_s = time.monotonic() - started
            result = ToolRun(
                argv=[arg.replace(password, "***") for arg in argv],
                returncode=completed.returncode, stdout=completed.stdout,
                stderr=completed.stderr, wall_s=wall_s,
                report=json.loads(report_path.read_text()) if report_path.exists() else None,
                warm_state_uses=uses.read_text().split() if uses.exists() else [],
            )
            result.leftover_scratch = pg_admin.databases_owned_by(role)
            result.leftover_backends = pg_admin.backends_of(role, settle_s=5)
            result.sentinel_rows = pg_admin.rows("SELECT id, note FROM sentinel ORDER BY id",
                                                 dbname=sentinel_db)
            result.sentinel_tables = [row[0] for row in pg_admin.rows(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
                dbname=sentinel_db)]
            if result.report is not None and junit_path.is_file():
                assert_outputs_agree(result, ElementTree.parse(junit_path).getroot(),
                                     github=child_env.get("GITHUB_ACTIONS") == "true")
            return result
        finally:
            pg_admin.drop_database(sentinel_db)
            pg_admin.drop_role(role)

    return run


MIGRATION_LABEL = re.compile(r"^[A-Za-z_][\w]*\.\w+$")


def failed_list(stdout: str) -> list[str]:
    """What the console's FAILED list names first on each entry (`  - app.migration: ...`,
    `  - check_deploy failed: ...`), in order."""
    lines = stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(r"FAILED: \d+ problem", line)), None)
    if start is None:
        return []
    return [line[4:].split(": ", 1)[0] for line in lines[start + 1:] if line.startswith("  - ")]


ANNOTATIONS_SHOWN = 10  # GitHub shows the first 10 errors of a step; the tool prints no more


def assert_outputs_agree(run: ToolRun, junit: ElementTree.Element, github: bool) -> None:
    """Issue 18: the run's problems (the FAILED list), the JUnit failures and the error
    annotations name the same migrations, and `ok` says the same as the exit status. The
    annotations are the ones the run printed on GitHub Actions, else the ones the reporters make
    of the JSON report."""
    report = run.require_report()
    labels = {f"{app['app']}.{m['name']}" for app in report["apps"] for m in app["migrations"]}
    listed = failed_list(run.stdout)
    problems = [label for label in listed if label in labels]
    junit_failed = {case.get("classname") for case in junit.findall("testcase")
                    if case.find("failure") is not None and case.get("classname") in labels}
    if github:
        texts = [line.split("::", 2)[2] for line in run.stdout.splitlines() if line.startswith("::error")]
    else:
        from migration_check.reports import github_annotations
        from migration_check.reports.merge import result_from_json
        texts = [line.split("::", 2)[2] for line in github_annotations(result_from_json(report, None))
                 if line.startswith("::error")]
    annotated = [label for label in (text.split(": ", 1)[0] for text in texts) if label in labels]
    context = (f"\n--- FAILED list\n{problems}\n--- JUnit failures\n{sorted(junit_failed)}"
               f"\n--- annotations\n{annotated}" + run.context())
    assert set(problems) == junit_failed, "the FAILED list and the JUnit failures name different migrations" + context
    assert annotated == [label for label in listed[:ANNOTATIONS_SHOWN] if label in labels], (
        "the annotations and the FAILED list name different migrations" + context)
    assert report["ok"] is (run.returncode == 0), "JSON ok disagrees with the exit status" + context
    assert not problems or report["ok"] is False, "migrations are listed as FAILED but the report says ok" + context


def git(cwd: Path, *args: str) -> str:
    """git in `cwd`, with an author of its own (a test machine may have none configured)."""
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout


def commit_all(cwd: Path, message: str) -> None:
    git(cwd, "add", "-A")
    git(cwd, "commit", "-q", "-m", message)


def assert_cleaned_up(run: ToolRun) -> None:
    """No scratch database of the run's role left, and the URL's database untouched."""
    assert run.leftover_scratch == [], "scratch databases left behind" + run.context()
    assert run.sentinel_rows == SENTINEL_ROWS, "the database named in the URL was changed"
    assert run.sentinel_tables == ["sentinel"], "tables appeared in the database named in the URL"


def assert_report_shape(run: ToolRun, windows: dict[str, list[str]]) -> None:
    """The JSON report per CONTRACT.md: top-level keys, checks, and each app's window newest
    first with its file, a duration per step, and no unknown verdict values."""
    report = run.require_report()
    assert report["schema"] == 1
    assert report["ok"] is (run.returncode == 0)
    assert isinstance(report["duration_s"], (int, float))
    assert report["database"]["vendor"] == "postgresql"
    assert str(report["database"]["server_version"]).startswith("15")
    assert report["database"]["ephemeral"] is False
    assert [check["name"] for check in report["checks"]] == [
        "forward", "check_deploy", "missing_migrations", "sequences"]
    for check in report["checks"]:
        assert check["status"] in {"passed", "failed", "skipped"}
    assert sorted(entry["app"] for entry in report["apps"]) == sorted(windows)
    for label, names in windows.items():
        migrations = run.app(label)
        assert [m["name"] for m in migrations] == names, f"{label}: window, newest first"
        for migration in migrations:
            assert migration["file"] == f"{label}/migrations/{migration['name']}.py"
            assert not Path(migration["file"]).is_absolute()
            assert migration["rollback"] in {"passed", "failed", "irreversible", "blocked"}
            assert migration["reapply"] in {"passed", "failed", "not_run"}
            assert migration["schema"] in {"identical", "differs", "not_checked"}
            assert migration["data"] in {"preserved", "lost", "not_checked"}
            assert isinstance(migration["details"], list)
            assert set(migration["duration_s"]) >= {"rollback", "reapply"}


def side_by_side(calls: dict[str, Callable[[], T]]) -> dict[str, T]:
    """Each call in a thread of its own, all at once; returns {name: its result} (the first
    exception raised, if any)."""
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = {name: pool.submit(call) for name, call in calls.items()}
        return {name: future.result() for name, future in futures.items()}


def run_variants(run_tool, project: str, variants: dict[str, tuple[tuple[str, ...], dict[str, str]]],
                 *extra: str, **options) -> dict[str, ToolRun]:
    """`run_tool` once per variant, side by side: {name: (its own arguments, its own
    environment)}; `extra` and `options` are common to all. Returns {name: ToolRun}."""
    return side_by_side({name: partial(run_tool, project, *extra, *arguments, env=env, **options)
                         for name, (arguments, env) in variants.items()})


def fork_variant_runs(run_tool, configuration: tuple[str, tuple[str, ...], dict],
                      variants: dict[str, tuple[tuple[str, ...], dict[str, str]]]) -> dict[str, ToolRun]:
    """One configuration, (fixture project, its arguments, run_tool options), run once per
    variant side by side in fork isolation with -v (the comparison modules' shortcuts show there)."""
    project, arguments, options = configuration
    return run_variants(run_tool, project, variants, *arguments, "--isolation", "fork", "-v", **options)


def ran_on(run: ToolRun, project: str) -> bool:
    """Whether `run` tested the fixture project `project`."""
    return any(arg.endswith(f"{project}/manage.py") for arg in run.argv)


@pytest.fixture(scope="session")
def run_both(run_tool):
    """Factory: ``run_tool`` once per isolation, side by side; returns {isolation: ToolRun}.

    ``envs`` gives an isolation's own extra environment (e.g. its own step summary file).
    """

    def both(project: str, *extra: str, settings: str | None = None, env: dict[str, str] | None = None,
             envs: dict[str, dict[str, str]] | None = None) -> dict[str, ToolRun]:
        variants = {isolation: (("--isolation", isolation), {**(env or {}), **(envs or {}).get(isolation, {})})
                    for isolation in ISOLATIONS}
        return run_variants(run_tool, project, variants, *extra, settings=settings)

    return both


# A moment printed in a finding (e.g. an index predicate on now()) differs from run to run, and
# so does where the excerpt around it starts ("...ned_at > '2026-...'", "...pened_at > ...").
MOMENT = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d(?::?\d\d)?)?")
EXCERPT_START = re.compile(r"\.\.\.\w*")


def without_moments(value: object) -> object:
    return json.loads(EXCERPT_START.sub("...", MOMENT.sub("<moment>", json.dumps(value))))


def fixtures_in_both_isolations(project: str, *extra: str, name: str = "run", **options):
    """A module's two fixtures for one configuration: `<name>_runs` ({isolation: ToolRun}, run
    once per module) and `<name>`, parametrized over the isolations, so that every test using it
    asserts both reports. Assign both to module names: `run_runs, run = fixtures_in_both_isolations(...)`."""

    @pytest.fixture(scope="module", name=f"{name}_runs")
    def runs(run_both) -> dict[str, ToolRun]:
        return run_both(project, *extra, **options)

    @pytest.fixture(scope="module", name=name, params=ISOLATIONS)
    def one(request) -> ToolRun:
        return request.getfixturevalue(f"{name}_runs")[request.param]

    return runs, one


def fixture_in_fork(project: str, *extra: str, name: str = "run", **options):
    """A module's fixture `<name>`: one run of a configuration in fork isolation only (run once
    per module). For the configurations whose steps all end as the ones of a configuration
    compared in both isolations do (docs/tests.md says which): the isolation changes how a step
    runs, never how its result is judged."""

    @pytest.fixture(scope="module", name=name)
    def one(run_tool) -> ToolRun:
        return run_tool(project, *extra, "--isolation", "fork", **options)

    return one


def verdict_view(run: ToolRun) -> dict:
    """What a run found, without what may differ between isolations or between two runs
    (durations, step counts, moments in messages)."""
    report = without_moments(run.report or {})
    return {
        "returncode": run.returncode,
        "ok": report.get("ok"),
        "checks": [(c["name"], c["status"], c["detail"]) for c in report.get("checks", [])],
        "apps": {app["app"]: {"error": app["error"], "migrations": [
            {key: value for key, value in m.items() if key != "duration_s"} for m in app["migrations"]]}
            for app in report.get("apps", [])},
        "skipped_apps": report.get("skipped_apps"),
        "stderr": run.stderr if run.report is None else None,  # a usage error's one line
    }


def assert_same_findings(runs: dict[str, ToolRun], first: str, second: str) -> None:
    """Runs `first` and `second` of `runs` found the same (`verdict_view`: exit status, checks,
    every migration's every field but durations)."""
    one, other = verdict_view(runs[first]), verdict_view(runs[second])
    for key in one:
        assert one[key] == other[key], (
            f"{key} differs between {first} and {second}\n--- {first}\n{one[key]}\n--- {second}\n"
            f"{other[key]}" + runs[first].context() + runs[second].context())


def assert_same_verdicts(runs: dict[str, ToolRun]) -> None:
    """Both isolations found the same: exit status, checks, every migration's every field
    (verdicts, errors, details) but durations; and ran the same Django commands."""
    assert_same_findings(runs, "fork", "process")
    if runs["fork"].report is not None and runs["process"].report is not None:
        reports = {isolation: run.report for isolation, run in runs.items()}
        assert {isolation: report["isolation"] for isolation, report in reports.items()} == {
            "fork": "fork", "process": "process"}
        # One process per step in process isolation; the same steps, forked, in fork isolation.
        assert reports["process"]["processes"] == reports["process"]["steps"] == reports["fork"]["steps"]
        assert reports["fork"]["processes"] < reports["fork"]["steps"]
