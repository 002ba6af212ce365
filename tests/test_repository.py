"""The repository itself: nothing it tells git to ignore is tracked (a committed `.venv` symlink
once replaced the virtualenv of every checkout that pulled it, and loops on a clean clone)."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_nothing_that_gitignore_ignores_is_tracked():
    listed = subprocess.run(["git", "ls-files", "--cached", "--ignored", "--exclude-standard"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == []
