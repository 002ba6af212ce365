"""The compat check in the chain's order of steps, on the fake database: its statements run just
before and just after each apply, and the verdict is written into the migration's result."""

from __future__ import annotations

from migration_check.proofs.compat.statements import StatementError
from tests.migration_check.chain.test_window_chain import LINEAR, run_chain
from tests.migration_check.fake_database import FakeDatabase

ITEM = {"model": "shop.Item", "table": "shop_item", "primary_key": "id", "unique_together": [], "fields": [
    {"name": "id", "column": "id", "db_type": "bigint", "internal_type": "BigAutoField", "null": False,
     "primary_key": True, "unique": False, "db_default": False, "inserted": False, "max_length": None,
     "max_digits": None, "decimal_places": None, "choice": None, "references": None},
    {"name": "name", "column": "name", "db_type": "varchar(20)", "internal_type": "CharField", "null": False,
     "primary_key": False, "unique": False, "db_default": False, "inserted": True, "max_length": 20,
     "max_digits": None, "decimal_places": None, "choice": None, "references": None}]}
NOT_NULL = StatementError("23502", 'null value in column "note" of relation "shop_item" violates not-null constraint')
NAMES = ["0002_price", "0003_note", "0004_index"]


def inserts_fail_once_0003_is_applied(applied, statement):
    return NOT_NULL if ("shop", "0003_note") in applied and statement.sql.startswith("INSERT") else None


def test_statements_run_just_before_and_just_after_each_apply():
    database = FakeDatabase(LINEAR, compat_models=[ITEM])
    results, _, log = run_chain(LINEAR, "shop", NAMES, database)
    applied_at = [sorted(name for _, name in applied) for applied, _ in database.compat_runs]
    assert applied_at == [["0001_initial"], ["0001_initial", "0002_price"],
                          ["0001_initial", "0002_price"], ["0001_initial", "0002_price", "0003_note"],
                          ["0001_initial", "0002_price", "0003_note"],
                          ["0001_initial", "0002_price", "0003_note", "0004_index"]]
    assert {count for _, count in database.compat_runs} == {5}  # SELECT, INSERT x2, UPDATE x2
    for name in NAMES:
        assert (results[name].compat, results[name].compat_direction) == ("compatible", "old_code_on_new_schema")
    assert "shop.0003_note: schema identical, data preserved, compat compatible" in log


def test_the_migration_whose_schema_rejects_the_statement_breaks_old_code():
    database = FakeDatabase(LINEAR, compat_models=[ITEM], compat_outcome=inserts_fail_once_0003_is_applied)
    results, _, _ = run_chain(LINEAR, "shop", NAMES, database)
    assert results["0003_note"].compat == "breaks_old_code"
    assert results["0003_note"].problems == ["breaks old code"]
    (finding,) = [f for f in results["0003_note"].details if f.kind == "compat"]
    assert finding.extra["error"] == NOT_NULL.message
    # 0004's INSERT fails on its own schema already: not checked, not blamed
    assert results["0004_index"].compat == "compatible"
    assert any(f.message.startswith("compat: INSERT shop_item (shop.Item) not checked")
               for f in results["0004_index"].details)


def test_acknowledged_by_the_flag():
    database = FakeDatabase(LINEAR, compat_models=[ITEM], compat_outcome=inserts_fail_once_0003_is_applied)
    results, _, _ = run_chain(LINEAR, "shop", NAMES, database, "--allow-breaking", "shop.0003_note")
    assert results["0003_note"].compat == "breaks_old_code" and results["0003_note"].compat_acknowledged
    assert results["0003_note"].problems == []


def test_off_with_no_compat_and_with_no_data():
    for flag in ("--no-compat", "--no-data"):
        database = FakeDatabase(LINEAR, compat_models=[ITEM], compat_outcome=inserts_fail_once_0003_is_applied)
        results, _, _ = run_chain(LINEAR, "shop", NAMES, database, flag)
        assert database.compat_runs == []
        assert {results[name].compat for name in NAMES} == {"not_checked"}


def test_not_checked_when_the_apply_failed_over_data():
    from tests.migration_check.fake_database import failed_step

    database = FakeDatabase(LINEAR, {("shop", "0003_note", 1): failed_step("IntegrityError: null value")},
                            compat_models=[ITEM], compat_outcome=inserts_fail_once_0003_is_applied)
    results, _, _ = run_chain(LINEAR, "shop", NAMES, database)
    assert results["0003_note"].apply == "failed"
    assert (results["0003_note"].compat, results["0003_note"].compat_direction) == ("not_checked", None)
