"""The data proof of one migration, in step with the chain: the release scenario of CONTRACT.md.

Pre-release rows are seeded just before the migration and fingerprinted (`before_apply`);
post-release rows are seeded after it (`before_rollback`); after the rollback every pre-release
row and value must be intact (`after_rollback`: `round_trip.judge_data`, and what the seeding
could not cover, `coverage` and `widened_keys`), and after the re-apply the post-release rows
must have survived the round trip (`after_reapply`: `post_release`).

Unique keys (`unique_keys`): a key the migration relaxes is repeated by a post-release row (what
users may write after the release, which a rollback restoring the key must cope with); a key it
tightens is applied over duplicates on a database of the proof's own (`unique_probe`, in
`after_steps`), since production may hold rows the old schema allowed.

Owns: `DataProof` (see `protocol`), writing `data`, `acknowledged` (a loss accepted on purpose),
the findings and the fingerprints' digests (`data_fingerprints`: pre_release, post_release,
rolled_back) into the migration's result.
"""

from __future__ import annotations

from collections.abc import Sequence

from ... import rules
from ...config import MARKER_ALLOW_DATA_LOSS
from ...inside_django.protocol import TableDescription
from ...postgres.catalog import Columns
from ...project.discovery import MigrationInfo
from ...results import Finding
from ...verdicts import Data, FindingKind, StepOutcome
from ..protocol import MigrationTest, ObservedState, Proof, ReleaseStart, ScratchDatabases
from ..round_trip import judge_data
from .coverage import coverage_findings
from .fingerprints import Fingerprint, changed_cells, digest
from .post_release import compared_columns, judge_post_release, null_cells, post_release_scope, rolled_back_changes
from .pre_release import PreReleaseRows, pre_release_rows, seeding_round
from .seeding import POST_RELEASE_PROFILES, PRE_RELEASE_PROFILES, Choices, SeedReport
from .unique_keys import UniqueKeys, relaxed_keys, tightened_keys
from .unique_probe import UniqueKey, probe_tightened
from .widened_keys import widened_key_findings


def auto_now_columns(tables: dict[str, TableDescription]) -> dict[str, set[str]]:
    """Columns Django fills on every save: a data migration that re-saves rows changes them."""
    return {table: set(info.get("auto_now", [])) for table, info in tables.items()}


def skipped_rows(report: SeedReport, moment: str) -> list[Finding]:
    return [Finding(FindingKind.INFO, f"{moment} seeding skipped {len(reasons)} row(s) of {table}: {reasons[0]}",
                    {"table": table})
            for table, reasons in sorted(report.skipped.items())]


class DataProof(Proof):
    """A rollback is the way back from a bad deploy: it must not lose the rows users wrote before
    the release, nor those they wrote while it was live."""

    name = "data"

    def __init__(self) -> None:
        self.rolled_back: Fingerprint | None = None  # the pre-release rows' fingerprint after the rollback
        self.unique_before: UniqueKeys | None = None  # the unique keys before the migration
        self.relaxed: list[UniqueKey] = []  # keys it relaxed: post-release rows repeat them
        self.tightened: list[UniqueKey] = []  # keys it tightened: probed over duplicates

    def before_apply(self, test: MigrationTest) -> None:
        if "unreadable" in test.meta:  # the app's tables around it are unknown: seeding none would prove nothing
            return
        if test.release_start is not None:
            self.carried(test, test.release_start)
        else:
            self.seed(test, test.before, test.meta["tables_before"], PRE_RELEASE_PROFILES, "pre-release", 0)
        if test.config.check_data:
            self.unique_before = test.database.unique_keys()

    @staticmethod
    def carried(test: MigrationTest, start: ReleaseStart) -> None:
        """The rows seeded at the release's start, as its earlier migrations left them, are this
        migration's pre-release rows: fingerprinted, none added (see pre_release)."""
        test.before.seeded = start.seeded
        test.before.data = test.database.fingerprint(auto_now_columns(test.meta["tables_before"]))
        test.result.data_fingerprints["pre_release"] = digest(test.before.data)
        test.result.details.append(carried_rows_info(test.migration, start, test.before.columns))

    def after_apply(self, test: MigrationTest) -> None:
        """Which unique keys the migration relaxed and tightened (only over the pre-release rows)."""
        if self.unique_before is None or test.result.apply != StepOutcome.PASSED:
            return
        unique_after = test.database.unique_keys()
        self.tightened = tightened_keys(self.unique_before, unique_after, test.before.columns)
        if relaxed_keys(self.unique_before, unique_after, None):  # the common case: no column inventory needed
            self.relaxed = relaxed_keys(self.unique_before, unique_after, test.database.columns())

    def before_rollback(self, test: MigrationTest) -> None:
        if "unreadable" in test.meta:
            return
        self.seed(test, test.observed_after, test.meta["tables_after"], POST_RELEASE_PROFILES, "post-release", 1,
                  self.relaxed)

    @staticmethod
    def seed(test: MigrationTest, state: ObservedState, tables: dict[str, TableDescription],
             profiles: Sequence[str], moment: str, round_number: int, repeat: Sequence[UniqueKey] = ()) -> None:
        """Seed rows into `tables` (and rows repeating the `repeat` keys), then fingerprint every table."""
        if not test.config.check_data:
            return
        choices = {table: info.get("choices", {}) for table, info in tables.items()}
        token = seeding_round(test, test.migration, round_number)
        report = test.database.seed(sorted(tables), profiles, token, choices)
        test.result.details.extend(repeat_relaxed_keys(test, repeat, report, choices))
        test.result.details.extend(skipped_rows(report, moment))
        state.seeded = report
        state.data = test.database.fingerprint(auto_now_columns(tables))
        test.result.data_fingerprints[moment.replace("-", "_")] = digest(state.data)

    def after_rollback(self, test: MigrationTest) -> None:
        """The pre-release rows must hold (keeps the fingerprint after the rollback for the
        post-release rows)."""
        before, meta = test.before, test.meta
        if before.data is None:
            return
        after = test.database.fingerprint(auto_now_columns(meta["tables_before"]))
        start = test.release_start
        new_in_release = start.new_in_release(before.columns) if start else frozenset()
        verdict = judge_data(test.migration, meta, before.data, after, before.columns, test.observed_after.columns,
                             test.collateral_columns, new_in_release)
        test.result.details.extend(verdict.findings)
        # Tables the release created hold no row written before it: no gap in what was seeded.
        tables = [table for table in meta["tables_before"] if (table, None) not in new_in_release]
        test.result.details.extend(coverage_findings(tables, before.data, before.seeded or SeedReport(),
                                                     auto_now_columns(meta["tables_before"]), new_in_release))
        test.result.details.extend(widened_key_findings(test.migration.name, before.schema,
                                                        test.observed_after.schema))
        set_data_verdict(test, verdict.data)
        self.rolled_back = after
        test.result.data_fingerprints["rolled_back"] = digest(after)

    def after_reapply(self, test: MigrationTest) -> None:
        """Rows written after the release must survive its rollback (see post_release)."""
        before, applied = test.before, test.observed_after
        if before.data is None or applied.data is None or self.rolled_back is None or applied.seeded is None:
            return
        scope = post_release_scope(applied.seeded.keys, before.data, applied.data, before.columns,
                                   test.collateral_columns)
        changed = rolled_back_changes(applied.data, self.rolled_back, scope)
        reapplied = changed_cells(applied.data, test.database.fingerprint({}), scope.keys, compared_columns(scope)) \
            if changed else None
        verdict = judge_post_release(test.migration, scope, changed, reapplied, null_cells(applied.data, changed))
        test.result.details.extend(verdict.findings)
        if verdict.lost:
            set_data_verdict(test, Data.LOST)

    def after_steps(self, test: MigrationTest, scratch: ScratchDatabases) -> None:
        """A key the migration made unique, applied over pre-release rows that repeat it."""
        if not self.tightened or test.before.data is None:
            return
        start = test.release_start
        if start is None:
            self.probe(test, scratch, self.tightened, pre_release_rows(test))
            return
        created = start.new_in_release(test.before.columns)
        new = [(table, key) for table, key in self.tightened
               if (table, None) in created or any((table, column) in created for column in key)]
        at_start = [(table, key) for table, key in self.tightened if (table, key) not in new
                    and table in start.columns and set(key) <= start.columns[table]]
        # Neither at the release's start nor made by it (renamed in the release): as without --since.
        renamed = [key for key in self.tightened if key not in new and key not in at_start]
        test.result.details.extend(new_key_info(test.migration, start, table, key) for table, key in new)
        if at_start:
            self.probe(test, scratch, at_start, pre_release_rows(test))
        if renamed:
            self.probe(test, scratch, renamed, PreReleaseRows(test.migration, test.meta["tables_before"]))

    @staticmethod
    def probe(test: MigrationTest, scratch: ScratchDatabases, keys: Sequence[UniqueKey], rows: PreReleaseRows) -> None:
        with scratch.before(rows.at, f"{test.migration.app}_unique") as database:
            probe = probe_tightened(test, database, keys, rows, scratch.targets_before(test.migration))
        if probe.hazards:
            test.result.hazards = [*(test.result.hazards or []), *probe.hazards]
        test.result.details.extend(probe.findings)


def repeat_relaxed_keys(test: MigrationTest, keys: Sequence[UniqueKey], report: SeedReport,
                        choices: Choices) -> list[Finding]:
    """A post-release row repeating each relaxed key: what users may write after the release."""
    found = []
    for table, key in keys:
        columns = ", ".join(key)
        row = test.database.repeat_key(table, key, report, choices)
        if row is not None:
            found.append(Finding(FindingKind.INFO, f"{test.migration.name} relaxes the unique key ({columns}) of "
                                                   f"{table}: a post-release row repeats it (primary key {row})",
                                 {"table": table}))
            continue
        # Not repeated, the rollback's restoring of the key was not tested: a gap in what "data
        # preserved" and "rollback passed" cover, so it is listed as such, never a silent pass
        # (e.g. a new conditional unique constraint that forbids the values the row copied).
        found.append(Finding(FindingKind.COVERAGE, f"table {table}: {test.migration.name} relaxes the unique key "
                                                   f"({columns}), and no post-release row could repeat it: a rollback "
                                                   "that restores the key is not tested against such rows",
                             {"table": table, "column": None}, rules.DATA_NOT_COVERED))
    return found


def new_key_info(migration: MigrationInfo, start: ReleaseStart, table: str, key: Sequence[str]) -> Finding:
    return Finding(FindingKind.INFO, f"unique probe of {migration.name}: ({', '.join(key)}) of {table} is new in its "
                   f"release (after {start.migration.name}), so no row written before the release repeats it; the "
                   "migration was applied over the rows the release's own migrations wrote", {"table": table})


def carried_rows_info(migration: MigrationInfo, start: ReleaseStart, columns: Columns) -> Finding:
    """What this migration's pre-release rows are, when they were seeded at its release's start."""
    new = sorted(f"{table}.{column}" if column else table for table, column in start.new_in_release(columns))
    created = f"; {', '.join(new)} did not exist then: no value written before the release is there" if new else ""
    where = (f"the release's first migration of {migration.app} (--since)," if start.first else
             "(--since; the rows seeded at the release's start did not reach it, see its findings),")
    return Finding(FindingKind.INFO, f"pre-release rows: seeded before {start.migration.name}, {where} and carried "
                   f"through {', '.join(start.through)} by `migrate`, as a deploy of the release does{created}",
                   {"table": None})


def set_data_verdict(test: MigrationTest, data: Data) -> None:
    """`data` (preserved | lost), never turning a loss found earlier back into preserved."""
    result, migration = test.result, test.migration
    result.data = Data.LOST if Data.LOST in (result.data, data) else data
    if result.data == Data.LOST and (migration.key in test.config.allow_data_loss
                                  or migration.marker_present(MARKER_ALLOW_DATA_LOSS)):
        result.acknowledged = True
