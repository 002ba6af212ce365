"""`python -m migration_check` and the one-file build (`python test_migrations.pyz`)."""

import sys

from migration_check import run_command

sys.exit(run_command())
