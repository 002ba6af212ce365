"""migration_check: prove that a Django project's migrations deploy and roll back safely on
PostgreSQL. `scripts/test_migrations.py` is its command; README.md ("Architecture") maps it.

Modules, in the order of a run:

- `cli`, `config`: options, their validation, exit codes, `main()`;
- `watchdog`, `resources`, `processes`, `leftovers`: the process that removes what a killed run
  created, what the run tells it, which process is which, and what earlier killed runs left;
- `discovery`: the project as the probe saw it, app selection, windows, graph arithmetic;
- `selection`: `--since` (what changed since a git revision) and `--shard`;
- `address`, `cluster`, `server`: where the server is, a throwaway cluster, scratch databases;
- `steps`, `step_server`: the step runner, through which every `manage.py` call goes, and the
  step servers it forks steps from (`--isolation fork`);
- `inside_django`: the code that runs inside the project's Django process (probe, prepare, the
  step server's loop);
- `catalog`, `schema`, `seeding`, `literals`, `data`: catalog reads, schema snapshots and diffs,
  seeded rows and the value of each type, fingerprints;
- `window`, `scratch`, `chain`, `verdicts`, `post_release`, `coverage`, `squash_path`: one app's
  window, a chain's database, the steps of one migration's test, the pure functions that judge
  them, and the path through the migrations a squash replaces;
- `locks`, `volume`, `squawk`, `hazards`, `deploy_safety`: watching each apply on the server
  (event triggers), --volume rows, squawk on what ran, the pure hazard rules, and the chain's hook;
- `compat`, `compat_sql`, `compat_check`: the compat check (the previous release's queries on
  the new schema): statements and pure verdict, running them rolled back, the chain's hook;
- `checks`, `run`: the project-wide checks, and a whole run;
- `results`, `reports`: what was found, and the console, JSON, JUnit and GitHub reports
  (`reports.merge`: the shards' reports merged).

The names in `__all__` are the public API (used by scripts/verify_backup.py and the
benchmarks); everything else may change. They are imported on first use, so the code that
runs inside Django loads none of the rest.
"""

from __future__ import annotations

import importlib

# Public name -> the module that defines it.
PUBLIC = {
    "main": "cli", "build_parser": "cli", "config_from_args": "cli", "EXIT_OK": "cli", "EXIT_MIGRATION_PROBLEM": "cli",
    "EXIT_USAGE": "cli", "EXIT_INTERRUPTED": "cli", "default_manage": "cli", "parse_positive_int": "cli",
    "Config": "config", "DEFAULT_SETTINGS": "config",
    "UsageError": "errors", "Interrupted": "errors",
    "Log": "log", "mask_url": "log", "mask_passwords": "log", "error_line": "log",
    "ServerAddress": "address", "resolve_server_url": "address",
    "EphemeralCluster": "cluster", "find_postgres_bindir": "cluster", "PREFERRED_PG_MAJOR": "cluster",
    "Server": "server", "postgres_server": "server", "quote_ident": "server", "SCRATCH_PREFIX": "server",
    "USER_SCHEMAS": "catalog", "NOT_FROM_EXTENSION": "catalog", "user_tables": "catalog",
    "SchemaSnapshot": "schema", "snapshot_schema": "schema", "describe_change": "schema",
    "object_order": "schema",
    "Seeder": "seeding", "PRE_RELEASE_PROFILES": "seeding",
    "StepRunner": "steps", "StepResult": "steps",
    "settings_guard": "run", "probe_project": "run", "run_project": "run",
    "RunResult": "results",
}
__all__ = sorted(PUBLIC)


def __getattr__(name: str) -> object:
    if name not in PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{PUBLIC[name]}"), name)


def __dir__() -> list[str]:
    return __all__
