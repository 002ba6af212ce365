"""The hazard rules (hazards.py) and squawk's report (squawk.py), on hand-made events: no database."""

from __future__ import annotations

import pytest

from migration_check.proofs.deploy_safety.hazards import (
    DdlEvent,
    RewriteEvent,
    judge_locks,
    lock_timeout_hazard,
    sql_mode,
    with_concurrent_lock,
)
from migration_check.proofs.deploy_safety.squawk import find_squawk, run_squawk, script_of, squawk_hazards
from migration_check.results import MigrationResult

T = "shop_item"


def ddl(statement: str, locks: dict[str, str], *, tag: str = "ALTER TABLE", scanned: frozenset = frozenset(),
        targets: tuple = (T,), txid: int = 1, started: float = 10.0, committed: float | None = 12.5,
        timeout: str = "0") -> DdlEvent:
    return DdlEvent(txid, tag, statement, started, started + 0.1, committed, locks, scanned, targets, timeout)


def rules(events, pre_existing=frozenset({T})) -> list[tuple[str, str | None]]:
    return [(h.rule, h.table) for h in judge_locks(events, set(pre_existing)).hazards]


def test_rewrite_of_an_existing_table_names_the_reason():
    alter = 'ALTER TABLE "shop_item" ALTER COLUMN "n" TYPE bigint'
    events = [RewriteEvent(1, alter, T, 4), ddl(alter, {T: "AccessExclusiveLock"}, scanned=frozenset({T}))]
    verdict = judge_locks(events, {T})
    assert verdict.rewrites == [T]
    (hazard,) = verdict.hazards  # the rewrite's own scan is not a second hazard
    assert (hazard.rule, hazard.mode, hazard.statement) == ("table-rewrite", "AccessExclusiveLock", alter)
    assert "table_rewrite reason 4: a column type change" in hazard.message and "ACCESS EXCLUSIVE" in hazard.message


def test_a_table_the_migration_created_is_no_hazard():
    events = [RewriteEvent(1, "ALTER TABLE new", "new", 4),
              ddl('CREATE INDEX "i" ON "new" ("a")', {"new": "ShareLock"}, tag="CREATE INDEX", targets=("new",))]
    verdict = judge_locks(events, {T})
    assert verdict.rewrites == [] and verdict.hazards == [] and verdict.locks == []
    assert verdict.statements == ['CREATE INDEX "i" ON "new" ("a")']


@pytest.mark.parametrize(("mode", "expected"), [("ShareLock", [("index-without-concurrently", T)]),
                                                ("ShareUpdateExclusiveLock", [])])
def test_index_build_is_a_hazard_only_under_a_write_blocking_lock(mode, expected):
    assert rules([ddl('CREATE INDEX "i" ON "shop_item" ("a")', {T: mode}, tag="CREATE INDEX")]) == expected


@pytest.mark.parametrize(("statement", "rule"), [
    ('ALTER TABLE "shop_item" ADD CONSTRAINT "fk" FOREIGN KEY ("o_id") REFERENCES "o" ("id")',
     "foreign-key-validation"),
    ('ALTER TABLE "shop_item" ADD CONSTRAINT "c" CHECK ("n" >= 0)', "check-constraint-validation"),
    ('ALTER TABLE "shop_item" ALTER COLUMN "n" SET NOT NULL', "set-not-null-scan"),
    ('ALTER TABLE "shop_item" ADD CONSTRAINT "u" UNIQUE ("n")', "unique-index-under-lock"),
    ('ALTER TABLE "shop_item" CLUSTER ON "i"', "scan-under-lock"),
])
def test_a_scan_under_lock_is_named_by_what_the_statement_did(statement, rule):
    assert rules([ddl(statement, {T: "AccessExclusiveLock"}, scanned=frozenset({T}))]) == [(rule, T)]


def test_no_scan_or_a_weak_lock_is_no_hazard():
    add = 'ALTER TABLE "shop_item" ADD COLUMN "o_id" bigint NULL REFERENCES "o" ("id")'
    validate = 'ALTER TABLE "shop_item" VALIDATE CONSTRAINT "c"'
    assert rules([ddl(add, {T: "AccessExclusiveLock"}),
                  ddl(validate, {T: "ShareUpdateExclusiveLock"}, scanned=frozenset({T}))]) == []


def test_locks_are_the_strongest_per_existing_table_sorted():
    events = [ddl("a", {T: "ShareLock", "o": "ShareRowExclusiveLock", "new": "AccessExclusiveLock"}),
              ddl("b", {T: "AccessExclusiveLock"})]
    assert judge_locks(events, {T, "o"}).locks == [{"table": "o", "mode": "ShareRowExclusiveLock"},
                                                  {"table": T, "mode": "AccessExclusiveLock"}]


def test_a_lock_is_held_from_its_first_statement_to_the_commit():
    events = [ddl("a", {T: "AccessExclusiveLock"}, started=10.0, committed=13.0),
              ddl("b", {T: "AccessExclusiveLock"}, started=11.0, committed=13.0),
              ddl("c", {"o": "RowExclusiveLock"}, started=11.5, committed=13.0)]
    (hold,) = judge_locks(events, {T, "o"}, {T: 100003}).holds  # RowExclusive blocks no writes
    assert (hold.table, hold.mode, hold.held_s, hold.rows) == (T, "AccessExclusiveLock", 3.0, 100003)


def test_non_atomic_statements_hold_their_locks_separately():
    events = [ddl("a", {T: "ShareLock"}, txid=1, started=10.0, committed=10.5),
              ddl("b", {T: "ShareLock"}, txid=2, started=20.0, committed=22.0)]
    verdict = judge_locks(events, {T})
    assert [h.held_s for h in verdict.holds] == [2.0] and verdict.atomic is False


def test_lock_timeout_is_one_hazard_per_run():
    events = [ddl('ALTER TABLE "shop_item" ADD COLUMN x int', {T: "AccessExclusiveLock"})]
    first, second, guarded = (MigrationResult("shop", name, file=None) for name in ("0002_a", "0003_b", "0004_c"))
    for result, timeout in ((first, "0"), (second, "0"), (guarded, "5s")):
        verdict = judge_locks([ddl(events[0].statement, events[0].locks, timeout=timeout)], {T})
        result.statements, result.exclusive_without_timeout = verdict.statements, verdict.exclusive_without_timeout
    (hazard,) = lock_timeout_hazard([first, second, guarded])
    assert hazard.migrations == ("shop.0002_a", "shop.0003_b") and hazard.table == T
    assert "2 migration(s)" in hazard.message and "lock_timeout" in hazard.fix
    assert lock_timeout_hazard([guarded]) == []


def test_sql_mode_names():
    assert sql_mode("AccessExclusiveLock") == "ACCESS EXCLUSIVE" and sql_mode("ShareLock") == "SHARE"


def test_squawk_script_maps_lines_to_statements():
    script, owner = script_of(["ALTER TABLE a\n  ADD b int;", "DROP INDEX i"])
    assert script == "ALTER TABLE a\n  ADD b int;\nDROP INDEX i;\n" and owner == [0, 0, 1]


def test_squawk_hazards_skip_tables_the_migration_created():
    events = [ddl("CREATE TABLE new ()", {"new": "AccessExclusiveLock"}, tag="CREATE TABLE", targets=("new",)),
              ddl("DROP INDEX i", {T: "AccessExclusiveLock"}, tag="DROP INDEX", targets=())]
    findings = [(0, "prefer-x", "m0", None), (1, "require-concurrent-index-deletion", "m1", "use CONCURRENTLY")]
    (hazard,) = squawk_hazards(findings, ["CREATE TABLE new ()", "DROP INDEX i"], events, {T})
    assert (hazard.rule, hazard.table, hazard.fix, hazard.source) == (
        "require-concurrent-index-deletion", None, "use CONCURRENTLY", "squawk")


def test_the_real_squawk_with_the_rule_selection():
    squawk = find_squawk()
    assert squawk is not None, "squawk-cli is pinned in requirements-dev.txt"
    statements = ['ALTER TABLE "shop_item" ALTER COLUMN "name" TYPE text', 'DROP INDEX "shop_item_idx"',
                  'CREATE INDEX "i" ON "shop_item" ("a")']
    findings, problem = run_squawk(squawk, statements, "15.18", atomic=True)
    assert problem is None
    # Statement 0 (varchar -> text) gets no changing-column-type: the rewrite is observed instead,
    # and that one rewrites nothing.
    assert {(index, rule) for index, rule, _, _ in findings} == {(1, "require-concurrent-index-deletion")}


@pytest.mark.parametrize(("tag", "statement", "expected"), [
    ("CREATE INDEX", 'CREATE INDEX CONCURRENTLY "e_idx" ON "e" ("day")', {"e": "ShareUpdateExclusiveLock"}),
    ("REINDEX", 'REINDEX INDEX CONCURRENTLY "e_idx"', {"e": "ShareUpdateExclusiveLock"}),
    ("CREATE INDEX", 'CREATE INDEX "e_idx" ON "e" ("day")', {}),  # seen as it is: SHARE, while it is held
    ("ALTER TABLE", 'ALTER TABLE "e" ADD COLUMN "concurrently" integer', {}),
])
def test_a_concurrent_build_holds_share_update_exclusive_on_its_table(tag, statement, expected):
    assert with_concurrent_lock(tag, statement, {}, ("e",)) == expected


def test_a_stronger_lock_seen_stays():
    assert with_concurrent_lock("CREATE INDEX", "CREATE INDEX CONCURRENTLY i ON e (d)", {"e": "AccessExclusiveLock"},
                                ("e",)) == {"e": "AccessExclusiveLock"}
