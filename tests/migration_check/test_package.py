"""The package's entry point (`run_command`: the console script, `python -m migration_check`,
scripts/test_migrations.py) and its lazily imported public names."""

from __future__ import annotations

import importlib.abc
import subprocess
import sys
from pathlib import Path

import pytest

import migration_check
from migration_check import run_command

REPO_ROOT = Path(__file__).resolve().parents[2]


class InterruptedImport(importlib.abc.MetaPathFinder):
    """Ctrl-C arriving while `migration_check.cli` loads (the first ~0.2 s of a run)."""

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == "migration_check.cli":
            raise KeyboardInterrupt


def test_ctrl_c_while_the_command_line_loads_exits_130_with_one_line(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "migration_check.cli", raising=False)
    monkeypatch.setattr(sys, "meta_path", [InterruptedImport(), *sys.meta_path])
    assert run_command() == 130
    assert capsys.readouterr().err == "test_migrations: interrupted before the run started; nothing to remove\n"


def test_the_entry_points_all_go_through_run_command():
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    assert 'migration-check = "migration_check:run_command"' in pyproject
    for path in ("scripts/test_migrations.py", "migration_check/__main__.py"):
        assert "run_command(" in (REPO_ROOT / path).read_text(), path


def test_the_command_line_answers_through_run_command():
    result = subprocess.run([sys.executable, "-m", "migration_check", "--version"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip(), result


def test_an_unknown_public_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        migration_check.nothing_here  # noqa: B018 - the lookup is the test
