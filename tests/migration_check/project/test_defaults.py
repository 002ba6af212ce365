"""Defaults found in the project (manage.py, settings) and `[tool.migration_check]` in its
pyproject.toml: command-line options override it, unknown keys are one line, exit 2; bad
settings are refused before any server is started."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytest

from migration_check.cli import apply_project_config, build_parser, explicit_options, main
from migration_check.errors import UsageError
from migration_check.project.defaults import find_settings, settings_from_manage

STARTPROJECT_MANAGE = '''#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""
import os
import sys


def main():
    """Run administrative tasks."""
    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)


if __name__ == '__main__':
    main()
'''


def make_project(tmp_path: Path, pyproject: str | None = None) -> Path:
    (tmp_path / "manage.py").write_text(STARTPROJECT_MANAGE)
    (tmp_path / "mysite").mkdir()
    (tmp_path / "mysite" / "__init__.py").write_text("")
    (tmp_path / "mysite" / "settings.py").write_text("")
    if pyproject is not None:
        (tmp_path / "pyproject.toml").write_text(pyproject)
    return tmp_path / "manage.py"


def test_settings_from_a_startproject_manage_py():
    assert settings_from_manage(STARTPROJECT_MANAGE) == "mysite.settings"
    assert settings_from_manage("import os\n") is None
    assert settings_from_manage("def (:\n") is None


def test_settings_order_option_then_environment_then_manage_py(tmp_path):
    manage = make_project(tmp_path)
    assert find_settings("a.settings", {"DJANGO_SETTINGS_MODULE": "b.settings"}, manage) == "a.settings"
    assert find_settings(None, {"DJANGO_SETTINGS_MODULE": "b.settings"}, manage) == "b.settings"
    assert find_settings(None, {}, manage) == "mysite.settings"
    manage.write_text("print('no settings here')\n")
    with pytest.raises(UsageError, match="does not set DJANGO_SETTINGS_MODULE"):
        find_settings(None, {}, manage)


def run_main(argv, monkeypatch, capsys) -> tuple[int, str, float]:
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    started = time.monotonic()
    status = main(argv)
    return status, capsys.readouterr().err, time.monotonic() - started


def test_a_missing_settings_module_is_refused_before_any_server(tmp_path, monkeypatch, capsys):
    manage = make_project(tmp_path)
    status, err, seconds = run_main(["--manage", str(manage), "--settings", "nope.settings"], monkeypatch, capsys)
    assert status == 2
    assert err.strip().splitlines() == [f"test_migrations: error: settings module nope.settings not found in "
                                        f"{tmp_path} (pass --settings MODULE, or set DJANGO_SETTINGS_MODULE)"]
    assert seconds < 2  # no cluster was started (that takes seconds)


def test_without_manage_the_current_folder_is_used(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    status, err, _ = run_main([], monkeypatch, capsys)
    assert status == 2
    assert f"manage.py not found at {tmp_path / 'manage.py'}" in err


def resolved(manage: Path, argv: list[str]) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    apply_project_config(args, explicit_options(parser, argv), manage.parent / "pyproject.toml")
    return args


def test_pyproject_sets_options_and_the_command_line_wins(tmp_path):
    manage = make_project(tmp_path, '[tool.migration_check]\napps = ["shop"]\ndepth = 3\nfail-on-hazards = true\n'
                                    'step_timeout = 120\nschema = false\nallow-data-loss = ["shop.0002_x"]\n')
    args = resolved(manage, [])
    assert (args.apps, args.depth, args.fail_on_hazards, args.step_timeout, args.check_schema) == (
        ["shop"], 3, True, 120.0, False)
    assert args.allow_data_loss == [("shop", "0002_x")]
    args = resolved(manage, ["--depth", "5", "--app", "billing"])
    assert (args.apps, args.depth) == (["billing"], 5)  # 5 is also the default: still the command line's


@pytest.mark.parametrize(("table", "message"), [
    ("deph = 3", "unknown key 'deph'"),
    ("depth = 0", "argument --depth: expected a positive number or 'all', got '0'"),
    ("apps = 'shop'", "apps must be a list of strings, got 'shop'"),
    ("fail-on-hazards = 'yes'", "fail-on-hazards must be true or false"),
])
def test_bad_pyproject_keys_are_one_line_exit_2(tmp_path, monkeypatch, capsys, table, message):
    manage = make_project(tmp_path, f"[tool.migration_check]\n{table}\n")
    status, err, _ = run_main(["--manage", str(manage)], monkeypatch, capsys)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path / "pyproject.toml") in lines[0] and message in lines[0], err
