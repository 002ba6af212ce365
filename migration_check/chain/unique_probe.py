"""The tightened-uniqueness probe: a migration that makes a key unique, applied over duplicates.

The chain's own seeding never repeats a value (so that a unique constraint added later is not
failed by duplicates only the seeding made). But where the schema before a migration allowed two
rows with one key, production may hold them, and a migration that makes the key unique then fails
to apply. When the chain sees a migration tighten a key (`unique_keys.tightened_keys`), this probe
builds a database of its own to the state just before the migration, seeds the pre-release rows,
adds a row that repeats each tightened key, and applies the migration: when that fails because
the key is duplicated, the migration gets the hazard `unique-over-duplicates` with the fix. A
migration that de-duplicates first (a RunPython before the constraint) applies and gets nothing.

Owns: `probe_tightened`.

Uses: chain (ChainDatabase, through a callable that opens one), seeding (profiles), unique_keys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..config import MigrationKey
from ..inside_django.protocol import WindowMigration
from ..project.discovery import MigrationInfo
from ..proofs.data.seeding import PRE_RELEASE_PROFILES
from ..proofs.data.unique_keys import failed_over_duplicates, unique_over_duplicates_hazard
from ..results import Finding, Hazard

if TYPE_CHECKING:
    from .window_chain import ChainDatabase


@dataclass
class ProbeOutcome:
    """What the probe found: hazards (the apply failed over duplicates), information."""

    hazards: list[Hazard] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def keys_in_error(keys: Sequence[tuple[str, tuple[str, ...]]], error: str) -> list[tuple[str, tuple[str, ...]]]:
    """The keys PostgreSQL's DETAIL names ("Key (email)=(...) is duplicated"); all when it names none."""
    named = [(table, key) for table, key in keys if f"Key ({', '.join(key)})" in error
             or all(column in error for column in key)]
    return named or list(keys)


def probe_tightened(open_database: Callable[[str], ChainDatabase], app: str, migration: MigrationInfo,
                    targets: Sequence[MigrationKey], keys: Sequence[tuple[str, tuple[str, ...]]],
                    meta: WindowMigration, round_token: int | None) -> ProbeOutcome:
    """Apply `migration` over pre-release rows that repeat each of `keys` (table, columns), on a
    database of its own built forward to `targets` (the state just before it)."""
    outcome = ProbeOutcome()
    database = open_database(f"{app}_unique")
    try:
        step, response = database.build(app, targets, [migration.name])
        if response is None:
            outcome.findings.append(Finding("info", f"unique probe of {migration.name} not run: the state before it "
                                            f"could not be built ({step.error_summary()})"))
            return outcome
        tables = meta["tables_before"]
        choices = {table: info.get("choices", {}) for table, info in tables.items()}
        report = database.seed(sorted(tables), PRE_RELEASE_PROFILES, round_token, choices)
        repeated = [(table, key) for table, key in keys if database.repeat_key(table, key, report, choices)]
        for table, key in keys:
            if (table, key) not in repeated:
                outcome.findings.append(Finding("info", f"unique probe of {migration.name}: no row of {table} could "
                                                f"repeat ({', '.join(key)}) on the schema before it", {"table": table}))
        if not repeated:
            return outcome
        applied = database.migrate(app, migration.name)
        if applied.ok:
            return outcome
        error = applied.error_summary()
        if failed_over_duplicates(error):
            outcome.hazards += [unique_over_duplicates_hazard(table, key, error, migration.name)
                                for table, key in keys_in_error(repeated, error)]
        else:
            outcome.findings.append(Finding("info", f"unique probe of {migration.name}: applied over rows that repeat "
                                            f"a key it makes unique, it failed otherwise: {error}"))
        return outcome
    finally:
        database.close()

