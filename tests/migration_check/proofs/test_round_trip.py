"""The pure judging functions: step outcomes and observations in, verdicts out."""

from __future__ import annotations

from migration_check.proofs.data.fingerprints import TableFingerprint
from migration_check.proofs.round_trip import (
    judge_apply,
    judge_data,
    judge_reapply,
    judge_rollback,
    judge_sibling_reapply,
)
from tests.migration_check.fake_database import failed_step, migration, ok_step

M = migration("shop", "0003_note", ("shop", "0002_price"))
BEFORE = {("shop", "0001_initial"), ("shop", "0002_price"), ("shop", "0003_note")}


def test_a_rollback_that_leaves_the_migration_unapplied_passes():
    verdict = judge_rollback(ok_step(), M, BEFORE, BEFORE - {M.key})
    assert (verdict.status, verdict.error, verdict.broken, verdict.collateral) == ("passed", None, None, frozenset())


def test_a_rollback_that_exits_0_but_leaves_it_recorded_fails():
    verdict = judge_rollback(ok_step(), M, BEFORE, BEFORE)
    assert verdict.status == "failed"
    assert verdict.error == "migrate exited 0 but 0003_note is still recorded as applied"
    assert verdict.broken == "0003_note is still applied after its rollback"


def test_a_failed_rollback_that_left_it_applied_lets_the_chain_go_on():
    verdict = judge_rollback(failed_step("ProgrammingError: typo"), M, BEFORE, BEFORE)
    assert (verdict.status, verdict.error, verdict.broken) == ("failed", "ProgrammingError: typo", None)


def test_a_failed_rollback_that_left_it_unapplied_breaks_the_chain():
    verdict = judge_rollback(failed_step(), M, BEFORE, BEFORE - {M.key})
    assert verdict.broken == "the failed rollback of 0003_note left it unapplied"


def test_a_timed_out_rollback_breaks_the_chain():
    verdict = judge_rollback(failed_step(timed_out=True), M, BEFORE, BEFORE)
    assert verdict.broken == "rolling back 0003_note timed out"
    assert verdict.error.startswith("timed out after 5s")


def test_migrations_rolled_back_alongside_are_collateral():
    sibling = ("shop", "0003_other")
    verdict = judge_rollback(ok_step(), M, BEFORE | {sibling}, BEFORE - {M.key})
    assert verdict.collateral == frozenset({sibling})


def test_sibling_reapply():
    siblings = [("shop", "0003_other")]
    assert judge_sibling_reapply(None, M, siblings).status == "passed"
    failed = judge_sibling_reapply(failed_step("IntegrityError: x"), M, siblings)
    assert failed.status == "failed"
    assert failed.broken == "shop.0003_other could not be re-applied after rolling back 0003_note"


def test_apply_and_reapply():
    assert judge_apply(ok_step(), M).status == "passed"
    over_data = judge_apply(failed_step("IntegrityError: null value"), M)
    assert (over_data.status, over_data.broken) == ("failed", None)  # retried on empty tables
    assert over_data.error == "applying 0003_note over pre-release data failed: IntegrityError: null value"
    assert judge_apply(failed_step(timed_out=True), M).broken == "0003_note could not be applied"
    assert judge_reapply(failed_step("ProgrammingError: exists"), M).broken == "0003_note could not be re-applied"


def fingerprint(rows):
    return {"shop_item": TableFingerprint(["name"], ["id"], rows)}


def test_data_lost_names_table_column_rows_and_the_destroying_operation():
    meta = {"tables_before": {}, "tables_after": {}, "effects": [
        {"type": "RemoveField", "description": "Remove field name from item", "table": "shop_item", "column": "name"}]}
    before = fingerprint({"1": {"name": "a"}, "2": {"name": "b"}})
    after = fingerprint({"1": {"name": "a"}, "2": {"name": "x"}})
    verdict = judge_data(M, meta, before, after, {"shop_item": {"id", "name"}}, {"shop_item": {"id"}})
    assert verdict.data == "lost"
    [lost] = [f for f in verdict.findings if f.kind == "data_lost"]
    assert lost.message == ("column shop_item.name: 1 row(s) changed or emptied after rolling back 0003_note "
                            "(e.g. primary key 2); destroyed by the forward operation RemoveField "
                            "(Remove field name from item)")
    assert lost.extra == {"table": "shop_item", "column": "name", "rows": 1, "example_pk": "2",
                          "operation": "RemoveField: Remove field name from item"}


def test_data_preserved_and_created_columns_are_information():
    meta = {"tables_before": {}, "tables_after": {}, "effects": []}
    same = fingerprint({"1": {"name": "a"}})
    verdict = judge_data(M, meta, same, same, {"shop_item": {"id", "name"}}, {"shop_item": {"id", "name", "note"}})
    assert verdict.data == "preserved"
    assert [f.message for f in verdict.findings] == [
        "column(s) note of shop_item were created by 0003_note; post-release values in them are discarded by "
        "the rollback"]


def test_values_a_sibling_rollback_took_are_not_judged():
    meta = {"tables_before": {}, "tables_after": {}, "effects": []}
    verdict = judge_data(M, meta, fingerprint({"1": {"name": "a"}}), fingerprint({"1": {"name": ""}}),
                         {"shop_item": {"id", "name"}}, {"shop_item": {"id", "name"}},
                         frozenset({("shop_item", "name")}))
    assert verdict.data == "preserved"
    assert verdict.findings[0].kind == "info" and "sibling" in verdict.findings[0].message


def test_values_in_a_column_the_release_created_are_not_a_loss_of_pre_release_data():
    """--since: orders.0003 fills a column 0002 (the same release) created; its no-op reverse leaves
    the values. No value written before the release can be there (release_project, end to end)."""
    meta = {"tables_before": {}, "tables_after": {}, "effects": []}
    before, after = fingerprint({"1": {"name": "a"}}), fingerprint({"1": {"name": "b"}})
    columns = {"shop_item": {"id", "name"}}
    assert judge_data(M, meta, before, after, columns, columns).data == "lost"  # outside a release
    verdict = judge_data(M, meta, before, after, columns, columns, frozenset(), frozenset({("shop_item", "name")}))
    assert verdict.data == "preserved"
    assert [(f.kind, f.message) for f in verdict.findings] == [
        ("info", "shop_item.name: 1 row(s) changed by rolling back 0003_note; the release created it, so no value "
                 "written before the release is among them (the release's rollback removes it)")]
    whole_table = judge_data(M, meta, before, after, columns, columns, frozenset(), frozenset({("shop_item", None)}))
    assert whole_table.data == "preserved"


def test_an_apply_failure_after_a_data_migration_names_it_and_since():
    verdict = judge_apply(failed_step("IntegrityError: contains null values"), M, "0002_price")
    assert verdict.error == (
        "applying 0003_note over pre-release data failed: IntegrityError: contains null values (if 0002_price, "
        "the data migration just before it, is deployed in the same release, run with --since and the release's "
        "base revision: the rows are then seeded before the release and go through its data migration first)")
    assert judge_apply(failed_step("IntegrityError: x"), M).error == \
        "applying 0003_note over pre-release data failed: IntegrityError: x"
