#!/usr/bin/env python3
"""Prove that a Django project's migrations deploy and roll back safely on PostgreSQL.

The command CI and developers run here: `python scripts/test_migrations.py --verbose`, the same
as the installed `migration-check` except that it drives the `manage.py` of this repository's
root by default. The tool is the `migration_check` package beside this folder; docs/cli.md
lists the options, docs/report.md is the report's contract.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from migration_check import run_command  # noqa: E402 - importable once the repository root is on sys.path

REPOSITORY_MANAGE = Path(__file__).resolve().parent.parent / "manage.py"

if __name__ == "__main__":
    sys.exit(run_command(prog="test_migrations.py", manage_default=REPOSITORY_MANAGE))
