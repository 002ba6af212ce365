"""The command line: build_parser, main(argv) exit codes, and a real run on GitHub Actions."""

from __future__ import annotations

import subprocess

import pytest

from migration_check.cli import build_parser, config_from_args, default_manage, main
from tests.migration_check.end_to_end.test_tiny_project import (
    REPO_ROOT,
    Account,
    build_tiny_project,
    child_env,
    tool_argv,
)


def test_help_has_examples_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as raised:
        build_parser().parse_args(["--help"])
    assert raised.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: migration-check ")
    assert "examples:\n  migration-check --verbose\n" in out
    assert "migration-check --app shop --depth all" in out
    assert "hello_world" not in out and "upstream" not in out  # no host-project default or example
    assert "exit status: 0 all passed, 1 a migration problem was found, 2 usage or configuration error," in out
    for option in ("--manage", "--settings", "--app", "--depth", "--database-url", "--report-json", "--junit-xml",
                   "--allow-data-loss", "--allow-irreversible", "--step-timeout", "--verbose"):
        assert option in out


def test_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    args = build_parser().parse_args([])
    assert (args.depth, args.apps, args.database_url, args.verbosity, args.step_timeout) == (5, [], None, 1, 600.0)
    assert args.settings is None and args.manage is None  # found later, from the project
    monkeypatch.chdir(tmp_path)
    assert default_manage() == tmp_path / "manage.py"
    assert args.check_schema is True and args.check_data is True


@pytest.mark.parametrize(("argv", "field", "value"), [
    (["--depth", "all"], "depth", None),
    (["--depth", "ALL"], "depth", None),
    (["--depth", "3"], "depth", 3),
    (["-v"], "verbosity", 2),
    (["-v", "2"], "verbosity", 2),  # as Django's manage.py takes it
    (["-v", "3"], "verbosity", 3),
    (["-v", "--depth", "3"], "verbosity", 2),
    (["-q"], "verbosity", 0),
    (["--verbosity", "3"], "verbosity", 3),
    (["--app", "a", "--app", "b"], "apps", ["a", "b"]),
    (["--allow-data-loss", "shop.0002_x"], "allow_data_loss", [("shop", "0002_x")]),
    (["--allow-irreversible", "shop.0002_x.y"], "allow_irreversible", [("shop", "0002_x.y")]),
    (["--step-timeout", "2.5"], "step_timeout", 2.5),
    (["--no-schema"], "check_schema", False),
    (["--no-data"], "check_data", False),
])
def test_options(argv, field, value):
    assert getattr(build_parser().parse_args(argv), field) == value


@pytest.mark.parametrize(("argv", "message"), [
    (["--depth", "0"], "argument --depth: expected a positive number or 'all', got '0'"),
    (["--depth", "x"], "argument --depth: expected a positive number or 'all', got 'x'"),
    (["--step-timeout", "-1"], "argument --step-timeout: expected a positive number of seconds, got '-1'"),
    (["--allow-data-loss", "shop"], "argument --allow-data-loss: expected APP.MIGRATION "
                                    "(e.g. upstream.0018_remove_invoice_paid_on), got 'shop'"),
    (["--allow-irreversible", ".x"], "argument --allow-irreversible: expected APP.MIGRATION "
                                     "(e.g. upstream.0018_remove_invoice_paid_on), got '.x'"),
    (["-v", "-q"], "argument -q/--quiet: not allowed with argument -v/--verbose"),
    (["--verbosity", "4"], "argument --verbosity: invalid choice: 4 (choose from 0, 1, 2, 3)"),
    (["-v", "4"], "argument -v/--verbose: invalid choice: 4 (choose from 0, 1, 2, 3)"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_options_exit_2_with_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert err == f"migration-check: error: {message} (see migration-check --help)\n"


def test_main_missing_manage_py(tmp_path, capsys):
    assert main(["--manage", str(tmp_path / "manage.py")]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"test_migrations: error: manage.py not found at {tmp_path / 'manage.py'} " \
                           "(pass --manage PATH/TO/manage.py)\n"
    assert captured.out == ""


def test_main_jobs_must_be_positive(capsys):
    assert main(["--jobs", "0"]) == 2
    assert capsys.readouterr().err == "test_migrations: error: --jobs must be at least 1\n"


def test_main_non_postgres_url(capsys):
    assert main(["--database-url", "mysql://root:hunter2pw@h/db"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("test_migrations: error: the database URL mysql://root:***@h/db is not PostgreSQL")
    assert "hunter2pw" not in err


def test_config_from_args(tmp_path):
    (tmp_path / "manage.py").write_text("")
    args = build_parser().parse_args(["--manage", str(tmp_path / "manage.py"), "--app", "a", "--app", "a",
                                           "--allow-data-loss", "a.0001_x", "--settings", "s.settings"])
    config = config_from_args(args)
    assert config.manage == (tmp_path / "manage.py").resolve()
    assert config.project_dir == tmp_path.resolve()
    assert config.apps == ("a",)
    assert config.allow_data_loss == frozenset({("a", "0001_x")})
    assert config.settings == "s.settings"


@pytest.fixture(scope="module")
def github_run(tmp_path_factory, pg_admin):
    """The real script once on the tiny project, as on GitHub Actions."""
    manage = build_tiny_project(tmp_path_factory.mktemp("tiny-cli") / "project")
    summary = tmp_path_factory.mktemp("gh") / "step_summary.md"
    account = Account(pg_admin).create()
    try:
        completed = subprocess.run(
            tool_argv(manage, "settings", "--depth", "1", "--database-url", account.url),
            env=child_env(GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary)),
            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, cwd=REPO_ROOT)
        left = account.scratch_left()
    finally:
        account.drop()
    return completed, summary, left, account


def test_github_run_passes_without_annotations(github_run):
    completed, _, left, account = github_run
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "::error" not in completed.stdout + completed.stderr
    assert left == []
    assert all(secret not in completed.stdout + completed.stderr for secret in account.secrets())


def test_github_step_summary(github_run):
    _, summary, _, account = github_run
    lines = summary.read_text().splitlines()
    assert lines[0] == "## Migration tests passed"
    assert lines[2].startswith("PostgreSQL 15.")
    assert lines[2].endswith(" manage.py processes")
    assert lines[4:10] == ["| check | status | detail |", "| --- | --- | --- |", "| forward | passed |  |",
                          lines[7], "| missing_migrations | passed |  |", "| sequences | passed |  |"]
    assert lines[7].startswith("| check_deploy | passed | 4 warning(s): ?: (security.W001)")
    assert lines[11:] == ["| migration | apply | rollback | re-apply | schema | data | compat | retry | notes |",
                          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
                          "| `shop.0002_second` | passed | passed | passed | identical | preserved | compatible "
                          "| passed |  |"]
    assert all(secret not in summary.read_text() for secret in account.secrets())


@pytest.mark.parametrize(("argv", "sessions", "long_query"), [
    ([], 0, None),
    (["--volume", "100"], 4, None),  # traffic is on by default with --volume
    (["--volume", "100", "--no-traffic"], 0, None),
    (["--traffic", "--traffic-sessions", "2"], 2, None),
    (["--long-query", "1.5"], 4, 1.5),
])
def test_rehearsal_options(tmp_path, argv, sessions, long_query):
    (tmp_path / "manage.py").write_text("")
    config = config_from_args(build_parser().parse_args(["--manage", str(tmp_path / "manage.py"), *argv]))
    assert (config.traffic_sessions, config.long_query) == (sessions, long_query)
    assert (config.table_sizes, config.volume_max, config.max_blocking) == (None, 20_000, None)


def test_table_sizes_are_read_and_bad_ones_exit_2(tmp_path, capsys):
    (tmp_path / "manage.py").write_text("")
    sizes = tmp_path / "sizes.json"
    sizes.write_text('{"shop_tag": 2000000}')
    argv = ["--manage", str(tmp_path / "manage.py"), "--table-sizes", str(sizes), "--max-blocking", "1"]
    config = config_from_args(build_parser().parse_args(argv))
    assert (config.table_sizes, config.max_blocking) == ({"shop_tag": 2_000_000}, 1.0)
    sizes.write_text('{"shop_tag": "lots"}')
    assert main(argv) == 2
    assert capsys.readouterr().err == (f"test_migrations: error: --table-sizes: {sizes}: rows of 'shop_tag' must be "
                                       "a number >= 0, got 'lots'\n")


@pytest.mark.parametrize(("argv", "message"), [
    (["--traffic-sessions", "0"], "argument --traffic-sessions: expected 1 to 64 sessions, got '0'"),
    (["--traffic", "--no-traffic"], "argument --no-traffic: not allowed with argument --traffic"),
    (["--max-blocking", "-2"], "argument --max-blocking: expected a positive number of seconds, got '-2'"),
])
def test_bad_rehearsal_options_exit_2(capsys, argv, message):
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    assert capsys.readouterr().err.rstrip().splitlines()[-1] == (f"migration-check: error: {message} "
                                                                 "(see migration-check --help)")
