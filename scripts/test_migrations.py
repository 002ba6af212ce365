#!/usr/bin/env python3
"""Prove that a Django project's migrations deploy and roll back safely on PostgreSQL.

The command CI and developers run: `python scripts/test_migrations.py --verbose`. The tool is
the `migration_check` package beside this folder; README.md ("Migration tests") documents the
options, exit codes and reports, ../shared/CONTRACT.md is the interface contract.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from migration_check import main  # noqa: E402 - importable once the repository root is on sys.path

if __name__ == "__main__":
    sys.exit(main())
