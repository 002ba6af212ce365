"""The previous release's traffic as statements (rehearsal/queries.py), from a model description
as the prepare child gives it."""

from __future__ import annotations

from migration_check.proofs.compat.statements import Lookup
from migration_check.proofs.rehearsal.queries import filter_column, traffic_lookups, traffic_queries


def field(column: str, db_type: str, **extra: object) -> dict:
    base = {"name": column, "column": column, "db_type": db_type, "internal_type": "", "null": False,
            "primary_key": False, "unique": False, "db_default": False, "inserted": True, "max_length": None,
            "max_digits": None, "decimal_places": None, "choice": None, "references": None}
    return {**base, **extra}


TAG = {"model": "shop.Tag", "table": "shop_tag", "primary_key": "id", "unique_together": [],
       "fields": [field("id", "bigint", primary_key=True, inserted=False),
                  field("name", "varchar(50)", max_length=50)]}
OTHER = {**TAG, "model": "shop.Other", "table": "shop_other"}


def test_every_kind_on_the_touched_table_only():
    resolved = {Lookup("shop_tag", ("id",)): ("7",)}
    queries = traffic_queries([OTHER, TAG], ["shop_tag"], resolved)
    assert [(q.table, q.kind) for q in queries] == [
        ("shop_tag", "select_by_key"), ("shop_tag", "select_by_filter"), ("shop_tag", "insert"),
        ("shop_tag", "update"), ("shop_tag", "delete_inserted")]
    by_kind = {q.kind: q for q in queries}
    assert by_kind["select_by_key"].statements[0].sql == 'SELECT "id", "name" FROM "shop_tag" WHERE "id" = %s'
    assert by_kind["select_by_key"].statements[0].params == ("7",)
    assert by_kind["select_by_filter"].statements[0].sql.startswith('SELECT "id", "name" FROM "shop_tag" WHERE "name"')
    assert by_kind["update"].statements[0].params[-1] == "7"
    insert, delete = by_kind["delete_inserted"].statements
    assert insert.sql.startswith('INSERT INTO "shop_tag" ("name") VALUES (%s) RETURNING "id"')
    assert delete.sql == 'DELETE FROM "shop_tag" WHERE "id" = %s'


def test_without_an_existing_row_no_read_by_key_and_no_update():
    kinds = [q.kind for q in traffic_queries([TAG], ["shop_tag"], {})]
    assert kinds == ["select_by_filter", "insert", "delete_inserted"]


def test_filter_column_skips_keys_and_foreign_keys():
    book = {**TAG, "fields": [field("id", "bigint", primary_key=True), field("author_id", "bigint",
                                                                           references=["a", "id"]),
                              field("title", "text")]}
    assert filter_column(book) == "title"
    assert traffic_lookups([TAG]) == [Lookup("shop_tag", ("id",))]
