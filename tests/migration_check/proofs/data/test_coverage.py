"""coverage: what the data proof did not cover is named (pure, no database)."""

from __future__ import annotations

from migration_check.proofs.data.coverage import coverage_findings
from migration_check.proofs.data.fingerprints import TableFingerprint, value_hash
from migration_check.proofs.data.seeding import SeedReport


def fingerprint_of(columns, rows):
    return TableFingerprint(columns, ["id"], {key: {c: value_hash(v) for c, v in values.items()}
                                             for key, values in rows.items()})


def test_nothing_to_say_when_every_column_holds_a_value():
    before = {"shop_item": fingerprint_of(["id", "name"], {"1": {"id": "1", "name": "a"}})}
    assert coverage_findings(["shop_item"], before, SeedReport(), {}) == []


def test_columns_without_a_value_tables_without_rows_and_ignored_columns_are_named():
    before = {
        "shop_item": fingerprint_of(["id", "period", "note", "stamp"], {
            "1": {"id": "1", "period": None, "note": None, "stamp": "x"},
            "2": {"id": "2", "period": None, "note": None, "stamp": "y"}}),
        "ledger.shop_code": fingerprint_of(["id"], {}),
    }
    report = SeedReport(skipped={"ledger.shop_code": ['typical row: violates check constraint "code_format"']},
                        unsupported={"shop_item": {"period": "pair"}})
    findings = coverage_findings(["shop_item", "shop_code", "shop_gone"], before, report,
                                 {"shop_item": {"updated"}})
    assert [(f.kind, f.message) for f in findings] == [
        ("coverage", 'table ledger.shop_code: no pre-release rows, every seeded row was rejected (typical row: '
                     'violates check constraint "code_format")'),
        ("coverage", "table shop_gone: not found in the database, its data is not compared"),
        ("coverage", "column shop_item.period: not covered, the seeder has no value for its type pair"),
        ("coverage", "column shop_item.note: not covered, it holds NULL in every pre-release row"),
        ("coverage", "column shop_item.updated: not compared, Django sets it on every save (auto_now)"),
    ]
    assert findings[2].extra == {"table": "shop_item", "column": "period"}


def test_a_column_the_release_created_is_no_gap_in_the_pre_release_rows():
    """--since: the rows were seeded before the release; a column it created holds NULL in them."""
    before = {"shop_item": fingerprint_of(["id", "code"], {"1": {"id": "1", "code": None}})}
    assert [f.message for f in coverage_findings(["shop_item"], before, SeedReport(), {})] == [
        "column shop_item.code: not covered, it holds NULL in every pre-release row"]
    assert coverage_findings(["shop_item"], before, SeedReport(), {}, frozenset({("shop_item", "code")})) == []
