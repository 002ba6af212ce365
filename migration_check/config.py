"""The configuration of a run: what the user asked for, validated, and the defaults.

Owns: `Config`, the `MigrationKey` shape used everywhere, defaults and the marker comments a
migration file may carry. Built by `cli.config_from_args`; read by every later stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MigrationKey = tuple[str, str]  # (app_label, migration_name)

DEFAULT_DEPTH = 5
DEFAULT_STEP_TIMEOUT_S = 600.0
DEFAULT_SETTINGS = "hello_world.settings"
DEFAULT_TRAFFIC_SESSIONS = 4  # the rehearsal's concurrent sessions of the previous release
DEFAULT_VOLUME_MAX = 20_000  # the largest --table-sizes measurement: about 4 s for a row-by-row backfill

# Markers a migration file may carry to accept a finding on purpose (see README).
MARKER_ALLOW_DATA_LOSS = "test_migrations: allow-data-loss"
MARKER_ALLOW_IRREVERSIBLE = "test_migrations: allow-irreversible"
MARKER_ALLOW_BREAKING = "test_migrations: allow-breaking-change"
MARKER_ALLOW_EDITED = "test_migrations: allow-edited"
MARKER_ALLOW_UNSAFE_RETRY = "test_migrations: allow-unsafe-retry"


@dataclass(frozen=True)
class Config:
    """What the user asked for, validated. Field by field:

    manage: the manage.py to run; project_dir: its folder (apps inside it are "project apps");
    settings: DJANGO_SETTINGS_MODULE for every child; apps: explicit app labels (empty: project
    apps); depth: newest migrations per app, None for all; database_url: --database-url;
    report_json / junit_xml: where to write those reports; allow_data_loss /
    allow_irreversible: accepted findings; check_schema / check_data: the two proofs;
    step_timeout: seconds per manage.py call; jobs: databases tested in parallel; verbosity:
    0-3 as in Django; observe_locks: watch each apply's locks and rewrites on the server
    (--no-locks: off); fail_on_hazards: hazards fail the run instead of warning; volume: rows
    added to each existing table of the app before each apply, to measure how long locks are held;
    check_compat: the compat check (the code beside the schema during the deploy);
    allow_breaking: accepted `breaks_old_code` verdicts. check_retry: the retry proof (a non-atomic
    migration cut off part-way, then run again); allow_unsafe_retry: accepted `retry: failed` verdicts.
    since: --since REF (the windows become the migrations added or modified since then); shard:
    --shard I/N as (I, N); allow_edited: migrations accepted although edited after they were merged.
    0-3 as in Django; isolation: how a step runs, `fork` (a child of the database's step
    server) or `process` (a fresh `manage.py` process). clone: `auto` (chains' databases are clones
    of a template built once per run when that saves enough), `always` or `never` (--no-clone: each
    is built from an empty database).
    The deploy rehearsal (docs/rehearsal.md): traffic_sessions (0: no traffic), long_query
    (--long-query seconds), table_sizes (--table-sizes {table: rows}), volume_max (the largest
    volume measured), max_blocking (--max-blocking seconds: longer write-blocking locks fail the run).
    """

    manage: Path
    project_dir: Path
    settings: str
    apps: tuple[str, ...]
    depth: int | None
    database_url: str | None
    report_json: Path | None
    junit_xml: Path | None
    allow_data_loss: frozenset[MigrationKey]
    allow_irreversible: frozenset[MigrationKey]
    check_schema: bool
    check_data: bool
    step_timeout: float
    jobs: int
    verbosity: int
    check_compat: bool = True
    allow_breaking: frozenset[MigrationKey] = frozenset()
    observe_locks: bool = True
    fail_on_hazards: bool = False
    volume: int | None = None
    since: str | None = None
    shard: tuple[int, int] | None = None
    allow_edited: frozenset[MigrationKey] = frozenset()
    isolation: str = "process"
    check_retry: bool = True
    allow_unsafe_retry: frozenset[MigrationKey] = frozenset()
    clone: str = "auto"
    traffic_sessions: int = 0
    long_query: float | None = None
    table_sizes: dict[str, int] | None = None
    volume_max: int = DEFAULT_VOLUME_MAX
    max_blocking: float | None = None


