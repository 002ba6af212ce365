"""The tightened-uniqueness probe: a migration that makes a key unique, applied over duplicates.

The data proof's own seeding never repeats a value (so that a unique constraint added later is
not failed by duplicates only the seeding made). But where the schema before a migration allowed
two rows with one key, production may hold them, and a migration that makes the key unique then
fails to apply. When the data proof sees a migration tighten a key (`unique_keys.tightened_keys`),
this probe takes a database of its own at the state just before the migration, seeds the
pre-release rows, adds a row that repeats each tightened key, and applies the migration: when
that fails because the key is duplicated, the migration gets the hazard `unique-over-duplicates`
with the fix. A migration that de-duplicates first (a RunPython before the constraint) applies
and gets nothing.

Owns: `probe_tightened`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ...config import MigrationKey
from ...results import Finding, Hazard
from ...verdicts import FindingKind
from ..protocol import MigrationTest, ProofDatabase
from .pre_release import PreReleaseRows, carry_to_migration, seed_pre_release
from .seeding import SeedReport
from .unique_keys import failed_over_duplicates, unique_over_duplicates_hazard

UniqueKey = tuple[str, tuple[str, ...]]  # table, the columns of one of its unique keys


@dataclass
class ProbeOutcome:
    """What the probe found: hazards (the apply failed over duplicates), information."""

    hazards: list[Hazard] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def keys_in_error(keys: Sequence[UniqueKey], error: str) -> list[UniqueKey]:
    """The keys PostgreSQL's DETAIL names ("Key (email)=(...) is duplicated"); all when it names none."""
    named = [(table, key) for table, key in keys if f"Key ({', '.join(key)})" in error
             or all(column in error for column in key)]
    return named or list(keys)


def probe_tightened(test: MigrationTest, database: ProofDatabase, keys: Sequence[UniqueKey],
                    rows: PreReleaseRows, targets: Sequence[MigrationKey]) -> ProbeOutcome:
    """Apply the migration over pre-release rows that repeat each of `keys` (table, columns), on
    `database`, a database of the proof's own at the state just before `rows.at`: the migration,
    or its release's first migration (--since), where the rows a production database may hold
    were written; then carried to `targets` (the state before the migration) through the
    release's earlier migrations (a de-duplication among them applies to the repeated rows too)."""
    outcome, migration = ProbeOutcome(), test.migration
    report = seed_pre_release(test, database, rows) or SeedReport()
    repeated = [(table, key) for table, key in keys if database.repeat_key(table, key, report, rows.choices)]
    for table, key in keys:
        if (table, key) not in repeated:
            outcome.findings.append(Finding(FindingKind.INFO, f"unique probe of {migration.name}: no row of {table} "
                                            f"could repeat ({', '.join(key)}) on the schema before "
                                            f"{rows.at.name}", {"table": table}))
    if not repeated:
        return outcome
    failure = carry_to_migration(test, database, rows, targets)
    if failure:
        outcome.findings.append(Finding(FindingKind.INFO, f"unique probe of {migration.name}: {failure}"))
        return outcome
    applied = database.migrate(migration.app, migration.name)
    if applied.ok:
        return outcome
    error = applied.error_summary()
    if failed_over_duplicates(error):
        outcome.hazards += [unique_over_duplicates_hazard(table, key, error, migration.name)
                            for table, key in keys_in_error(repeated, error)]
    else:
        outcome.findings.append(Finding(FindingKind.INFO, f"unique probe of {migration.name}: applied over rows that "
                                        f"repeat a key it makes unique, it failed otherwise: {error}"))
    return outcome
