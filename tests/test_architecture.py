"""The architecture is checked, not described: the import-linter contracts in pyproject.toml (what
may import what) and the type checker (mypy, configured there too) both pass on the package. Each
tool runs from the virtualenv that runs the tests, on the repository as it is; its output is
printed when it fails, so the broken contract or the type error is in the test log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# The tools installed beside the interpreter running the tests (.venv/bin, .venv-py311/bin).
VENV_BIN = Path(sys.executable).parent


def run_tool(*argv: str, timeout: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV_BIN / argv[0]), *argv[1:]], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_import_contracts_are_kept():
    # --no-cache: judge the files as they are now, and leave no cache folder behind.
    linted = run_tool("lint-imports", "--no-cache", timeout=300)
    assert linted.returncode == 0, f"lint-imports failed:\n{linted.stdout}\n{linted.stderr}"
    assert "0 broken" in linted.stdout, linted.stdout


def test_mypy_passes():
    # The settings are pyproject.toml's [tool.mypy]; the cache stays in .mypy_cache (git-ignored by mypy).
    checked = run_tool("mypy", "migration_check", timeout=600)
    assert checked.returncode == 0, f"mypy failed:\n{checked.stdout}\n{checked.stderr}"
    assert "Success: no issues found" in checked.stdout, checked.stdout
