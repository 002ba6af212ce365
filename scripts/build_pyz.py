#!/usr/bin/env python3
"""Build the one-file migration tool: dist/test_migrations.pyz (`make dist`).

The archive holds the `migration_check` package and a `__main__.py` that runs its `main()`
(with its exit status), made with the standard library's zipapp. Another project needs only
Django and psycopg2 to run it: `python test_migrations.pyz --manage path/to/manage.py`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import zipapp
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = REPO_ROOT / "migration_check"
DEFAULT_TARGET = REPO_ROOT / "dist" / "test_migrations.pyz"
MAIN = '''"""The one-file build of migration_check (scripts/build_pyz.py)."""
import sys

from migration_check.cli import main

sys.exit(main())
'''


def build(target: Path) -> Path:
    """Write the archive to `target` and return it."""
    with tempfile.TemporaryDirectory(prefix="tm-pyz-") as staging:
        shutil.copytree(PACKAGE, Path(staging) / PACKAGE.name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (Path(staging) / "__main__.py").write_text(MAIN, encoding="utf-8")
        target.parent.mkdir(parents=True, exist_ok=True)
        zipapp.create_archive(staging, target, interpreter="/usr/bin/env python3", compressed=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_TARGET, help="default: %(default)s")
    args = parser.parse_args(argv)
    print(build(args.output.resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
