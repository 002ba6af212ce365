"""migration_check: prove that a Django project's migrations deploy and roll back safely on
PostgreSQL. `scripts/test_migrations.py` is its command; README.md ("Architecture") maps it.

The tree is the design (the layers, top to bottom, are checked by the import-linter contracts
in pyproject.toml):

- `cli`, `config`, `run`: options and exit codes, the configuration of a run, a whole run;
- `reports/`: the console, JSON, JUnit and GitHub reports (and the shards' reports merged);
- `chain/`: how a migration is exercised: a chain's scratch database, the steps of each
  migration's test, the path through the migrations a squash replaces;
- `proofs/`: one unit per proof (`protocol.Proof`, listed in `registry.PROOFS`, called by the
  chain at each moment of a migration's test): `schema`, `data/` (seeding, literals,
  fingerprints, coverage, post-release rows), `compat/` (the previous release's queries),
  `deploy_safety/` (locks, hazards, squawk, --volume); `round_trip` judges the chain's steps;
- `project/`: what the project has and what to test (discovery, selection, windows, the
  project-wide checks);
- `cleanup/`: the watchdog and the sweep of what killed runs left;
- `postgres/`: where PostgreSQL lives (address, throwaway cluster, server, catalog);
- `processes/`: child processes (identity, the resources the watchdog is told of, the step
  runner and the step servers);
- `inside_django/`: the code that runs inside the project's Django process (imports nothing else
  of the tool);
- `results`, `verdicts`, `errors`, `log`, `timing`: what was found, the vocabulary of each
  verdict, how a run ends early, output, where the time goes; `verdict_table`: which verdicts
  fail the run, and the words for them.

The names in `__all__` are the public API (used by scripts/verify_backup.py and the
benchmarks); everything else may change. They are imported on first use, so the code that
runs inside Django loads none of the rest.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

__version__ = "0.1.0"  # the distribution's version too (pyproject.toml reads it)

# Public name -> the module that defines it.
PUBLIC = {
    "main": "cli", "build_parser": "cli", "config_from_args": "cli", "EXIT_OK": "cli", "EXIT_MIGRATION_PROBLEM": "cli",
    "EXIT_USAGE": "cli", "EXIT_INTERRUPTED": "cli", "default_manage": "cli", "parse_positive_int": "cli",
    "Config": "config", "DEFAULT_SETTINGS": "config",
    "UsageError": "errors", "Interrupted": "errors",
    "Log": "log", "mask_url": "log", "mask_passwords": "log", "error_line": "log",
    "ServerAddress": "postgres.address", "resolve_server_url": "postgres.address",
    "EphemeralCluster": "postgres.cluster", "find_postgres_bindir": "postgres.cluster",
    "PREFERRED_PG_MAJOR": "postgres.cluster",
    "Server": "postgres.server", "postgres_server": "postgres.server", "quote_ident": "postgres.server",
    "SCRATCH_PREFIX": "postgres.server",
    "USER_SCHEMAS": "postgres.catalog", "NOT_FROM_EXTENSION": "postgres.catalog", "user_tables": "postgres.catalog",
    "SchemaSnapshot": "proofs.schema", "snapshot_schema": "proofs.schema", "describe_change": "proofs.schema",
    "object_order": "proofs.schema",
    "Seeder": "proofs.data.seeding", "PRE_RELEASE_PROFILES": "proofs.data.seeding",
    "StepRunner": "processes.steps", "StepResult": "processes.steps",
    "settings_guard": "run", "probe_project": "run", "run_project": "run",
    "RunResult": "results",
}
__all__ = sorted(PUBLIC)


EXIT_INTERRUPTED_EARLY = 130  # cli.EXIT_INTERRUPTED, which is not imported yet when it is needed


def run_command(prog: str = "migration-check", manage_default: Path | None = None) -> int:
    """The console script, `python -m migration_check` and scripts/test_migrations.py: the
    command line's import is interruptible too (Ctrl-C while it loads exits 130 with one line,
    not a KeyboardInterrupt traceback; nothing has been started yet)."""
    try:
        from .cli import main
    except KeyboardInterrupt:
        print("test_migrations: interrupted before the run started; nothing to remove", file=sys.stderr)
        return EXIT_INTERRUPTED_EARLY
    return main(prog=prog, manage_default=manage_default)


def __getattr__(name: str) -> object:
    if name not in PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{PUBLIC[name]}"), name)


def __dir__() -> list[str]:
    return __all__
