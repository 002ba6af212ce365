"""Where a migration's pre-release rows are written: the rows users wrote before its release.

Without --since, each migration's release is itself: the rows are seeded just before it, at its
own state. With --since the window is the release, deployed in one go: the rows are seeded once,
just before the release's first migration of the app, and reach each later migration as the
release's own migrations left them (`protocol.ReleaseStart`). A data migration that fixes rows
(fills a column, renames duplicates) then fixes these rows too before the migration that relies
on it runs, as in production; the rows seeded at the later migration's own state would hold the
values it fixed, which no production database holds after the release's deploy.

The chain's database carries the rows itself. The proofs' own databases (the unique probe, the
retry proof, the deploy rehearsal) are built to the state before the release's first migration,
seeded there, and carried to the state before the migration by `migrate` (the release's earlier
migrations and what other apps' migrations need of them: `database_with_pre_release_rows`).

Owns: `PreReleaseRows`, `seeding_round`, `pre_release_rows`, `seed_pre_release`, `carry_to_migration`,
`database_with_pre_release_rows`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ...config import MigrationKey
from ...inside_django.protocol import TableDescription
from ...project.discovery import MigrationInfo
from ..protocol import MigrationTest, ProofDatabase, ScratchDatabases, ScratchUnavailable
from .seeding import PRE_RELEASE_PROFILES, Choices, SeedReport


@dataclass(frozen=True)
class PreReleaseRows:
    """Where and what to seed: just before `at`, into `tables`."""

    at: MigrationInfo
    tables: dict[str, TableDescription]

    @property
    def choices(self) -> Choices:
        return {table: info.get("choices", {}) for table, info in self.tables.items()}


def seeding_round(test: MigrationTest, at: MigrationInfo, moment: int) -> int:
    """Seeding rounds are numbered by migration and moment (0 before it, 1 after), so the rows
    seeded at a migration do not depend on how --jobs split the window, and a proof's database
    seeded there holds the rows the chain's did."""
    return test.project.position(at.key) * 2 + moment


def pre_release_rows(test: MigrationTest) -> PreReleaseRows:
    """The migration's own state, or its release's start (with --since)."""
    start = test.release_start
    at, tables = (start.migration, start.tables) if start else (test.migration, test.meta["tables_before"])
    return PreReleaseRows(at, tables)


def seed_pre_release(test: MigrationTest, database: ProofDatabase, rows: PreReleaseRows) -> SeedReport | None:
    """Seed the pre-release rows on `database` (in the state just before `rows.at`), with the
    chain's seeding round of that moment; None with --no-data."""
    if not test.config.check_data:
        return None
    return database.seed(sorted(rows.tables), PRE_RELEASE_PROFILES, seeding_round(test, rows.at, 0), rows.choices)


def carry_to_migration(test: MigrationTest, database: ProofDatabase, rows: PreReleaseRows,
                       targets: Sequence[MigrationKey]) -> str | None:
    """Bring `database` from the state before `rows.at` to the state before the migration,
    `targets` (`ScratchDatabases.targets_before`: the release's earlier migrations and what other
    apps need of them, as the chain's database holds them), over the rows; returns why not."""
    if rows.at.key == test.migration.key:
        return None
    for app, name in targets:
        step = database.migrate(app, name)
        if not step.ok:
            return (f"carrying the rows seeded before {rows.at.name} through the release's migrations up to "
                    f"{test.migration.name} failed: {step.error_summary()}")
    return None


@contextlib.contextmanager
def database_with_pre_release_rows(test: MigrationTest, scratch: ScratchDatabases,
                                   purpose: str) -> Iterator[ProofDatabase]:
    """A scratch database in the state just before the migration, holding its pre-release rows
    (seeded where `pre_release_rows` says); raises `ScratchUnavailable` when it cannot be made."""
    rows = pre_release_rows(test)  # with --no-data no release start is ever carried: its own state
    with scratch.before(rows.at, purpose) as database:
        seed_pre_release(test, database, rows)
        failure = carry_to_migration(test, database, rows, scratch.targets_before(test.migration))
        if failure:
            raise ScratchUnavailable(failure)
        yield database
