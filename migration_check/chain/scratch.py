"""A chain's scratch database: created, built forward to a state, observed, migrated, dropped.

Owns: `ScratchDatabase`, the one object through which a chain touches its database: the build
(the `prepare` child), `migrate` steps (through the step runner), what django_migrations records
(squashes resolved), schema snapshots, seeding, fingerprints, emptying the tables after a failed
apply, ending the queries a killed step left running, (when asked to observe) the lock
observer's event triggers and the --volume rows around each apply, and the compat check's
statements (rolled back).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from ..config import MigrationKey
from ..inside_django.protocol import (
    CutRequest,
    InterruptedApplyRequest,
    InterruptedApplyResponse,
    PrepareRequest,
    PrepareResponse,
)
from ..postgres.catalog import column_inventory, recorded_migrations, user_tables
from ..postgres.server import Server
from ..processes.steps import StepResult, StepRunner
from ..project.discovery import Project, effective_applied
from ..proofs.compat.sql import resolve, run_rolled_back
from ..proofs.compat.statements import Lookup, Outcome, Resolved, Statement
from ..proofs.data.fingerprints import Fingerprint, fingerprint
from ..proofs.data.seeding import Choices, Seeder, SeedReport
from ..proofs.data.unique_keys import UniqueKeys, read_unique_keys
from ..proofs.deploy_safety.hazards import Event
from ..proofs.deploy_safety.locks import LockObserver
from ..proofs.deploy_safety.volume import VolumeFill, fill_tables, remove_fill
from ..proofs.schema import PreparedSnapshots, SchemaSnapshot
from .templates import Builds

# Steps inside an app's window skip Django's system checks: `check --deploy` runs them once for
# the project, and repeating them in every step is start-up time for nothing.
WINDOW_MIGRATE_OPTIONS = ("--noinput", "--no-color", "--skip-checks")


class ScratchDatabase:
    """One scratch database of the run, for one chain of migrations."""

    def __init__(self, server: Server, runner: StepRunner, project: Project, purpose: str,
                 observe: bool = False, builds: Builds | None = None) -> None:
        self.server = server
        self.runner = runner
        self.project = project
        self.times = runner.times
        self.purpose = purpose
        # With `builds`, the database is created by `build`: a clone of the run's template
        # when its state contains the template's (see templates).
        self.builds = builds
        self.name = ""
        self.url = ""
        if builds is None:
            self.create()
        self.connection: Any = None
        self.snapshots: PreparedSnapshots | None = None  # with the connection
        self.seeder: Seeder | None = None
        self.observe = observe
        self.observer: LockObserver | None = None

    def create(self) -> None:
        with self.times.measure("CREATE DATABASE"):
            self.name = self.server.create_database(self.purpose)
        self.url = self.server.url_for(self.name)

    def build(self, app: str, targets: Sequence[MigrationKey], window: Sequence[str],
              ) -> tuple[StepResult, PrepareResponse | None]:
        """Migrate forward to `targets` (the state they reach from an empty database) and
        describe each migration of `window` (the prepare child)."""
        stage_starts: Sequence[int] = ()
        if self.builds is not None:
            self.name, chosen = self.builds.open(self.purpose, targets)
            self.url = self.server.url_for(self.name)
            targets, stage_starts = chosen.targets, chosen.stage_starts
        request = self.prepare_request(app, targets, window, stage_starts)
        step, response = self.runner.run_inside_django("prepare", request, self.url)
        if response is not None:
            # Connected the way Django connects (its `options`: the same search_path), so the
            # tables the migrations create are the ones seeded and compared.
            self.connection = self.server.connect(self.name, dict(self.project.connection_options))
            self.snapshots = PreparedSnapshots(self.connection)
            self.seeder = Seeder(self.connection, spread_edges=True)
            if self.observe:  # after the build: only the window's own steps are watched
                with self.times.measure("lock observer"):
                    self.observer = LockObserver(self.connection)
                    self.observer.install()
        return step, response  # type: ignore[return-value]

    def interrupted_apply(self, app: str, name: str, cut: CutRequest | None,
                          ) -> tuple[StepResult, InterruptedApplyResponse | None]:
        """Apply `app.name` through Django's migrate, cut off at `cut` (None: whole, listing its
        statements); see inside_django/interrupted_apply.py."""
        request: InterruptedApplyRequest = {"app": app, "name": name, "cut": cut}
        step, response = self.runner.run_inside_django("interrupted_apply", request, self.url)
        return step, response  # type: ignore[return-value]

    def prepare_request(self, app: str, targets: Sequence[MigrationKey], window: Sequence[str],
                        stage_starts: Sequence[int] = ()) -> PrepareRequest:
        return {"app": app, "targets": [list(t) for t in targets], "window": list(window),
                "stage_starts": list(stage_starts)}

    def migrate(self, app: str | None = None, target: str | None = None) -> StepResult:
        """`manage.py migrate [APP TARGET]` with the window options."""
        args = [app, target] if app is not None and target is not None else []
        return self.runner.run(["migrate", *args, *WINDOW_MIGRATE_OPTIONS], self.url)

    def applied(self) -> set[MigrationKey]:
        """What is applied, in the plan's terms (a squash, not the migrations it replaces)."""
        with self.times.measure("django_migrations reads"):
            return effective_applied(recorded_migrations(self.connection), self.project.squashes())

    def schema(self) -> SchemaSnapshot:
        assert self.snapshots is not None
        with self.times.measure("schema snapshots"):
            return self.snapshots.take()

    def columns(self) -> dict[str, set[str]]:
        with self.times.measure("column inventories"):
            return column_inventory(self.connection)

    def fingerprint(self, ignore_columns: dict[str, set[str]]) -> Fingerprint:
        with self.times.measure("data fingerprints"):
            return fingerprint(self.connection, ignore_columns)

    def seed(self, tables: Sequence[str], profiles: Sequence[str], round_token: int | None = None,
             choices: Choices | None = None) -> SeedReport:
        assert self.seeder is not None
        with self.times.measure("seeding"):
            return self.seeder.seed(tables, profiles, round_token, choices)

    def unique_keys(self) -> UniqueKeys:
        with self.times.measure("unique keys"):
            return read_unique_keys(self.connection)

    def repeat_key(self, table: str, key: Sequence[str], report: SeedReport, choices: Choices | None = None,
                   ) -> str | None:
        """A row of `table` repeating the `key` columns of one already there (see Seeder.repeat_key)."""
        assert self.seeder is not None
        with self.times.measure("seeding"):
            return self.seeder.repeat_key(table, key, report, choices)

    def compat_resolve(self, lookups: Sequence[Lookup]) -> Resolved:
        with self.times.measure("compat check"):
            return resolve(self.connection, lookups)

    def compat_run(self, statements: Sequence[Statement]) -> list[Outcome]:
        with self.times.measure("compat check"):
            return run_rolled_back(self.connection, statements)

    def empty_tables(self) -> None:
        tables = user_tables(self.connection)
        if tables:
            with self.connection.cursor() as cursor:
                cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")

    def begin_observation(self, tables: Sequence[str], volume: int | None) -> VolumeFill | None:
        """Before an apply: forget earlier records, and with --volume add rows to `tables`."""
        if self.observer is None:
            return None
        with self.times.measure("lock observer"):
            fill = fill_tables(self.connection, tables, volume) if volume else None
            self.observer.begin()
        return fill

    def end_observation(self, fill: VolumeFill | None) -> tuple[list[Event] | None, list[str]]:
        """After an apply: what was recorded (None when not observing), and the --volume rows
        deleted again (returns the tables where that failed)."""
        if self.observer is None:
            return None, []
        with self.times.measure("lock observer"):
            events = self.observer.collect()
            return events, remove_fill(self.connection, fill) if fill is not None else []

    def session(self) -> Any:
        """Another connection to this database, as the project's code connects (autocommit):
        a proof's concurrent sessions; the caller closes it."""
        return self.server.connect(self.name, dict(self.project.connection_options))

    def end_stray_sessions(self) -> None:
        """A killed manage.py may leave its query running in the server; end it."""
        with contextlib.suppress(Exception):
            self.server.end_sessions(self.name)

    def close(self) -> None:
        self.observer = None  # its event triggers go with the database
        slot = self.builds is not None and self.builds.is_slot(self.name)
        if not slot:  # a slot's step server stays for the slot's next database (chain/slots.py)
            with contextlib.suppress(Exception):  # whatever happens to it, the database is still dropped
                self.runner.release(self.url)  # its step server (fork isolation) goes before the database
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.close()
            self.connection = None
            self.snapshots = None
        if not self.name:  # never created (a build that did not start)
            return
        with contextlib.suppress(Exception), self.times.measure("DROP DATABASE"):
            self.server.drop_database(self.name)
            if slot and self.builds is not None:  # dropped: the name is free again, and no longer this one's
                self.builds.free(self.name)
                self.name = self.url = ""
