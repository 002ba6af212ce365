"""--since REF and --shard I/N: which windows a run tests (migration_check/project/selection.py).

Unit tests of the pure parts (option parsing, the balanced shard assignment, formatting-only
edits, git's name-status output, the edited_migrations check), then --since end to end on a git
repository made here: `main` holds cross_app_project; branch `feature` adds
alpha.0004_region_name_idx, edits alpha.0002_country_iso_code after it was merged (it now also
creates an index) and only reformats beta.0001_initial; branch `docs` changes no migration.
The edit is first shown to be a real defect with plain `manage.py migrate` and a catalog query:
a database migrated on `main` never gets the new index, a fresh one does.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from migration_check.cli import build_parser, main
from migration_check.config import MARKER_ALLOW_EDITED
from migration_check.project.discovery import MigrationInfo
from migration_check.project.selection import (
    GitChanges,
    edited_check,
    parse_name_status,
    parse_shard,
    same_code,
    shard_windows,
)
from tests.migration_check.conftest import commit_all, git
from tests.migration_check.end_to_end.test_tiny_project import Account, child_env

REPO_ROOT = Path(__file__).resolve().parents[3]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
TOOL = REPO_ROOT / "scripts" / "test_migrations.py"
SETTINGS = "cross_app_project.settings"

INDEX_MIGRATION = """\
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("{app}", "{parent}")]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX {index} ON {table} ({column})",
            reverse_sql="DROP INDEX {index}",
        ),
    ]
"""


def index_migration(app: str, parent: str, table: str, column: str) -> str:
    """A migration a pull request adds: an index in RunSQL (no model change, so
    makemigrations --check stays clean), with its reverse."""
    return INDEX_MIGRATION.format(app=app, parent=parent, table=table, column=column, index=f"{table}_{column}_idx")


ADDED = index_migration("alpha", "0003_region", "alpha_region", "name")
# Appended to alpha.0002's operations on `feature`: an edit of a migration already merged.
EDIT = """\
        migrations.RunSQL(
            "CREATE INDEX alpha_country_iso_code_idx ON alpha_country (iso_code)",
            reverse_sql="DROP INDEX alpha_country_iso_code_idx",
        ),
    ]"""
ALPHA_0002 = "alpha/migrations/0002_country_iso_code.py"
ALPHA_0004 = "alpha/migrations/0004_region_name_idx.py"
BETA_0001 = "beta/migrations/0001_initial.py"


# ------------------------------------------------------------------------------------------------
# Pure parts
# ------------------------------------------------------------------------------------------------


def migration(app: str, number: int) -> MigrationInfo:
    return MigrationInfo(app, f"{number:04d}_m", None, (), (), ())


def windows_of(sizes: dict[str, int]) -> dict[str, list[MigrationInfo]]:
    return {app: [migration(app, n) for n in range(1, size + 1)] for app, size in sizes.items()}


@pytest.mark.parametrize(("value", "expected"), [("1/1", (1, 1)), ("2/4", (2, 4)), ("4/4", (4, 4))])
def test_parse_shard(value, expected):
    assert parse_shard(value) == expected


@pytest.mark.parametrize("value", ["0/4", "5/4", "2", "a/b", "2/0", "-1/2", "1/2/3", ""])
def test_parse_shard_refuses(value):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_shard(value)


@pytest.mark.parametrize(("argv", "message"), [
    (["--shard", "3/2"], "argument --shard: expected I/N with 1 <= I <= N (e.g. 2/4), got '3/2'"),
    (["--since=-x"], "argument --since: expected a git revision such as origin/main, got '-x'"),
    (["--allow-edited", "alpha"], "argument --allow-edited: expected APP.MIGRATION "
                                  "(e.g. upstream.0018_remove_invoice_paid_on), got 'alpha'"),
])
def test_bad_selection_options_exit_2_with_usage(capsys, argv, message):
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    assert capsys.readouterr().err == f"migration-check: error: {message} (see migration-check --help)\n"


def test_selection_options_parse():
    args = build_parser().parse_args(["--since", "origin/main", "--shard", "2/3", "--allow-edited", "a.0002_x",
                                      "--merge-reports", "a.json", "b.json"])
    assert (args.since, args.shard, args.allow_edited) == ("origin/main", (2, 3), [("a", "0002_x")])
    assert args.merge_reports == [Path("a.json"), Path("b.json")]


def test_shards_are_balanced_by_migration_count():
    # Largest first, each to the lightest shard: a(5) -> 1; b(4) -> 2; c(4) -> 2 (4 < 5); d(3) -> 1.
    windows = windows_of({"d": 3, "c": 4, "a": 5, "b": 4})
    assert list(shard_windows(windows, (1, 2))) == ["d", "a"]
    assert list(shard_windows(windows, (2, 2))) == ["c", "b"]


def test_shards_do_not_depend_on_the_order_of_the_apps():
    sizes = {f"app{n:02d}": (n * 7) % 5 + 1 for n in range(23)}
    reordered = dict(reversed(list(sizes.items())))
    for index in range(1, 5):
        assert set(shard_windows(windows_of(sizes), (index, 4))) == set(shard_windows(windows_of(reordered),
                                                                                       (index, 4)))


def test_every_window_is_in_exactly_one_shard_and_loads_are_close():
    sizes = {f"app{n:02d}": (n * 7) % 5 + 1 for n in range(23)}  # 1..5 migrations each
    shards = [shard_windows(windows_of(sizes), (index, 4)) for index in range(1, 5)]
    assert sorted(app for shard in shards for app in shard) == sorted(sizes)
    loads = [sum(len(window) for window in shard.values()) for shard in shards]
    assert sum(loads) == sum(sizes.values())
    assert max(loads) - min(loads) <= max(sizes.values())


def test_more_shards_than_windows_leaves_some_empty():
    windows = windows_of({"a": 2, "b": 1})
    assert [list(shard_windows(windows, (i, 3))) for i in (1, 2, 3)] == [["a"], ["b"], []]


@pytest.mark.parametrize(("old", "new", "same"), [
    ("x = [1, 2]\n", "# a comment\nx = [\n    1,\n    2,\n]\n", True),
    ("x = 'a'\n", 'x = "a"\n', True),
    ("x = [1, 2]\n", "x = [1, 2, 3]\n", False),
    ("x = 1\n", "x = (\n", False),
])
def test_same_code_ignores_formatting_and_comments_only(old, new, same):
    assert same_code(old, new) is same


def test_parse_name_status(tmp_path):
    output = "A\0app/migrations/0002_a.py\0M\0app/migrations/0001_initial.py\0D\0gone.py\0"
    added, modified = parse_name_status(output, tmp_path)
    assert added == {tmp_path / "app/migrations/0002_a.py"}
    assert modified == {tmp_path / "app/migrations/0001_initial.py"}


def test_edited_check_fails_unless_acknowledged(tmp_path):
    plain, marked = tmp_path / "a" / "0002_x.py", tmp_path / "a" / "0003_y.py"
    plain.parent.mkdir()
    plain.write_text("x = 1\n")
    marked.write_text(f"# {MARKER_ALLOW_EDITED}: the index was missing everywhere\nx = 1\n")
    changes = GitChanges("main", "0" * 40, tmp_path, frozenset(), frozenset({plain, marked}))
    edited = [MigrationInfo("a", "0002_x", plain, (), (), ()), MigrationInfo("a", "0003_y", marked, (), (), ())]
    check = edited_check(edited, changes, frozenset(), tmp_path)
    assert (check.name, check.status) == ("edited_migrations", "failed")
    assert check.detail.startswith("a/0002_x.py changed since main although already merged")
    assert "--allow-edited a.0002_x" in check.detail and check.detail.endswith("acknowledged: a/0003_y.py")
    accepted = edited_check(edited, changes, frozenset({("a", "0002_x")}), tmp_path)
    assert (accepted.status, accepted.detail) == ("passed", "acknowledged: a/0002_x.py, a/0003_y.py")
    assert edited_check([], changes, frozenset(), tmp_path).status == "passed"


# ------------------------------------------------------------------------------------------------
# A git repository with a pull request's branches
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> dict[str, Path]:
    """Worktrees of the branches: branch name -> its manage.py."""
    root = tmp_path_factory.mktemp("since")
    main_tree = root / "main"
    main_tree.mkdir()
    for name in ("fixture_manage.py", "fixture_settings_base.py"):
        shutil.copy(FIXTURES / name, main_tree / name)
    shutil.copytree(FIXTURES / "cross_app_project", main_tree / "cross_app_project",
                    ignore=shutil.ignore_patterns("__pycache__"))
    git(main_tree, "init", "-q", "-b", "main")
    commit_all(main_tree, "the project as merged")
    trees = {"main": main_tree}
    for branch in ("feature", "docs"):
        trees[branch] = root / branch
        git(main_tree, "worktree", "add", "-q", "-b", branch, str(trees[branch]), "main")
    project = trees["feature"] / "cross_app_project"
    (project / ALPHA_0004).write_text(ADDED)
    edited = project / ALPHA_0002
    edited.write_text(edited.read_text().replace("        ),\n    ]", "        ),\n" + EDIT, 1))
    assert "alpha_country_iso_code_idx" in edited.read_text()
    reformatted = project / BETA_0001
    reformatted.write_text("# Reformatted: double quotes.\n" + reformatted.read_text().replace("'", '"'))
    commit_all(trees["feature"], "a pull request")
    (trees["docs"] / "NOTES.txt").write_text("no migration here\n")
    commit_all(trees["docs"], "documentation only")
    return {branch: tree / "cross_app_project" / "manage.py" for branch, tree in trees.items()}


def manage_py(manage: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(manage), *args], capture_output=True, text=True, timeout=120,
                          env={**child_env(), "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": SETTINGS})


def indexes(url: str) -> set[str]:
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename LIKE 'alpha_%'")
            return {row[0] for row in cursor.fetchall()}
    finally:
        connection.close()


def test_an_edited_migration_never_reaches_databases_that_applied_it(repo, pg_admin):
    """The defect, with plain manage.py: migrate on main, then on the branch; compare with a
    database migrated from scratch on the branch."""
    upgraded, fresh = "tm_since_upgraded", "tm_since_fresh"
    for name in (upgraded, fresh):
        pg_admin.drop_database(name)
        pg_admin.create_database(name)
    try:
        assert manage_py(repo["main"], pg_admin.url_for(upgraded), "migrate").returncode == 0
        second = manage_py(repo["feature"], pg_admin.url_for(upgraded), "migrate")
        assert second.returncode == 0, second.stderr
        assert "Applying alpha.0004_region_name_idx... OK" in second.stdout
        assert "alpha.0002" not in second.stdout  # already recorded: its new version never runs
        assert manage_py(repo["feature"], pg_admin.url_for(fresh), "migrate").returncode == 0
        assert "alpha_country_iso_code_idx" in indexes(pg_admin.url_for(fresh))
        assert "alpha_country_iso_code_idx" not in indexes(pg_admin.url_for(upgraded))
        assert "alpha_region_name_idx" in indexes(pg_admin.url_for(upgraded))  # the added one does
    finally:
        for name in (upgraded, fresh):
            pg_admin.drop_database(name)


@pytest.fixture(scope="module")
def runs(repo, pg_admin, tmp_path_factory):
    """The tool with --since main on each branch (side by side, each as a role of its own)."""
    reports = tmp_path_factory.mktemp("since-reports")
    plans = {
        "feature": (repo["feature"], []),
        "acknowledged": (repo["feature"], ["--allow-edited", "alpha.0002_country_iso_code"]),
        "docs": (repo["docs"], []),
    }
    accounts = {name: Account(pg_admin).create() for name in plans}
    try:
        started = {}
        for name, (manage, extra) in plans.items():
            argv = [sys.executable, str(TOOL), "--manage", str(manage), "--settings", SETTINGS, "--since", "main",
                    "--database-url", accounts[name].url, "--report-json", str(reports / f"{name}.json"), *extra]
            started[name] = subprocess.Popen(argv, cwd=REPO_ROOT, env=child_env(), stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, text=True)
        results = {}
        for name, process in started.items():
            stdout, stderr = process.communicate(timeout=600)
            report_path = reports / f"{name}.json"
            results[name] = {"returncode": process.returncode, "stdout": stdout, "stderr": stderr,
                             "report": json.loads(report_path.read_text()) if report_path.exists() else None,
                             "left": accounts[name].scratch_left()}
        yield results
    finally:
        for account in accounts.values():
            account.drop()


def verdicts(report: dict) -> dict[str, list[tuple]]:
    return {app["app"]: [(m["name"], m["rollback"], m["reapply"], m["schema"], m["data"]) for m in app["migrations"]]
            for app in report["apps"]}


def checks(report: dict) -> dict[str, str]:
    return {check["name"]: check["status"] for check in report["checks"]}


PASSED = ("passed", "passed", "identical", "preserved")


def test_since_tests_exactly_what_the_branch_added_or_modified(runs):
    run = runs["feature"]
    report = run["report"]
    assert report is not None, run["stderr"]
    assert verdicts(report) == {
        "alpha": [("0004_region_name_idx", *PASSED), ("0002_country_iso_code", *PASSED)],
        "beta": [("0001_initial", *PASSED)],
    }, run["stdout"]
    assert report["selection"]["since"] == "main"
    assert report["selection"]["changed_migrations"] == [ALPHA_0002, ALPHA_0004, BETA_0001]
    assert "--since main: 3 migration(s) added or modified" in run["stdout"]
    assert "alpha: testing 2 migration(s), 0002_country_iso_code, 0004_region_name_idx" in run["stdout"]


def test_a_migration_edited_after_it_was_merged_is_a_finding(runs):
    run = runs["feature"]
    report = run["report"]
    assert run["returncode"] == 1, run["stdout"] + run["stderr"]
    assert report["ok"] is False
    assert checks(report) == {"forward": "passed", "check_deploy": "passed", "missing_migrations": "passed",
                              "sequences": "passed", "edited_migrations": "failed"}
    detail = next(c["detail"] for c in report["checks"] if c["name"] == "edited_migrations")
    assert detail.startswith(f"{ALPHA_0002} changed since main although already merged")
    assert BETA_0001 not in detail  # formatting and comments only: not an edit
    assert report["selection"]["edited_migrations"] == [ALPHA_0002]
    assert "FAILED: 1 problem(s)" in run["stdout"]
    assert "edited_migrations failed: " + ALPHA_0002 in run["stdout"]


def test_an_acknowledged_edit_passes(runs):
    run = runs["acknowledged"]
    assert run["returncode"] == 0, run["stdout"] + run["stderr"]
    check = next(c for c in run["report"]["checks"] if c["name"] == "edited_migrations")
    assert (check["status"], check["detail"]) == ("passed", f"acknowledged: {ALPHA_0002}")


def test_no_migration_changed_runs_the_project_checks_and_says_the_window_is_empty(runs):
    run = runs["docs"]
    assert run["returncode"] == 0, run["stdout"] + run["stderr"]
    assert run["report"]["apps"] == []
    assert checks(run["report"]) == {"forward": "passed", "check_deploy": "passed", "missing_migrations": "passed",
                                     "sequences": "passed", "edited_migrations": "passed"}
    assert run["report"]["selection"]["changed_migrations"] == []
    assert ("The window is empty: no migration was added or modified since main; only the project checks ran."
            in run["stdout"])


@pytest.mark.parametrize("name", ["feature", "acknowledged", "docs"])
def test_since_runs_leave_nothing(runs, name):
    assert runs[name]["left"] == []
    assert "Traceback" not in runs[name]["stderr"]


@pytest.mark.parametrize(("where", "ref", "message"), [
    ("feature", "nope", r"--since nope: no such revision in the git repository at \S+/feature \(fetch it first, "
                        r"e\.g\. git fetch origin main; on GitHub Actions check out with fetch-depth: 0\)"),
    ("outside", "main", r"--since needs a git repository, and \S+ is not in one"),
])
def test_bad_revision_or_no_repository_is_one_line_exit_2(repo, tmp_path, where, ref, message):
    manage = repo["feature"]
    if where == "outside":
        shutil.copytree(manage.parent.parent, tmp_path / "copy", ignore=shutil.ignore_patterns(".git"))
        manage = tmp_path / "copy" / "cross_app_project" / "manage.py"
    completed = subprocess.run([sys.executable, str(TOOL), "--manage", str(manage), "--settings", SETTINGS,
                                "--since", ref], capture_output=True, text=True, timeout=60, env=child_env(),
                               cwd=REPO_ROOT)
    assert completed.returncode == 2
    assert completed.stdout == ""
    lines = completed.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("test_migrations: error: "), completed.stderr
    assert re.fullmatch(message, lines[0][len("test_migrations: error: "):]), lines[0]
