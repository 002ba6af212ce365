"""literals.column_literal: a value for every built-in type the seeder must fill, checked by
PostgreSQL itself (each literal cast to its column's type), and a table of all of them seeded.

Before, ranges, multiranges, hstore, xml, geometric types, bit strings, tsquery, jsonpath,
pg_lsn and snapshots (and arrays and domains over them) had no value: their columns stayed NULL
and "data: preserved" was true of nothing.
"""

from __future__ import annotations

import psycopg2.errors
import pytest

from migration_check.postgres.catalog import read_tables
from migration_check.proofs.data.literals import column_literal
from migration_check.proofs.data.seeding import PRE_RELEASE_PROFILES, Seeder

from .test_seeding import Databases, rows, run

NEW_TYPES = [  # and the older ones whose values depend on the token
    "inet", "cidr", "macaddr", "macaddr8", "uuid", "bytea", "smallint", "integer", "bigint", "numeric(5,2)",
    "real", "money", "date", "timestamptz", "timetz", "interval", "tsvector", "jsonb", "varchar(3)", "oid",
    "int4range", "int8range", "numrange", "daterange", "tsrange", "tstzrange",
    "int4multirange", "int8multirange", "nummultirange", "datemultirange", "tsmultirange", "tstzmultirange",
    "point", "line", "lseg", "box", "path", "polygon", "circle",
    "bit(8)", "bit varying(12)", "bit varying", "xml", "tsquery", "jsonpath", "pg_lsn", "pg_snapshot",
    "txid_snapshot", "\"char\"", "refcursor", "xid8", "hstore",
]
# The column types of the table: each new type, an array of it, and a domain over it.
EXTRA = ["box[]", "int4range[]", "point[]", "xml[]", "positive_span", "bits_domain", "boxes_domain"]
SCHEMA = """
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE DOMAIN positive_span AS int4range CHECK (NOT isempty(VALUE));
CREATE DOMAIN bits_domain AS bit(8);
CREATE DOMAIN boxes_domain AS box[];
CREATE TYPE pair AS (a integer, b text);
"""


def column_name(index: int) -> str:
    return f"c{index}"


@pytest.fixture(scope="module")
def typed(pg_server_url):
    databases = Databases(pg_server_url)
    connection = databases.connect(databases.create())
    columns = ", ".join(f"{column_name(i)} {type_} NOT NULL" for i, type_ in enumerate(NEW_TYPES + EXTRA))
    run(connection, SCHEMA, f"CREATE TABLE every_type (id serial PRIMARY KEY, {columns}, odd pair)")
    yield connection
    databases.close()


# Cell tokens the seeder really passes: small ones, and those of late migrations in big projects
# (before, the max inet of a large token was "2001:db8::de61108", which PostgreSQL refuses).
TOKENS = (1, 4242, 13_100_000_077, 2 ** 62 + 12345)


@pytest.mark.parametrize("token", TOKENS)
def test_every_type_has_a_value_postgresql_accepts_in_every_profile(typed, token):
    meta = read_tables(typed, ["every_type"])["every_type"]
    for column in meta.columns[1:-1]:
        for profile in PRE_RELEASE_PROFILES:
            literal = column_literal(column, profile, token)
            assert literal is not None, (column.type, profile)
            if (column.type, profile) == ("positive_span", "min"):  # the domain's check refuses the empty range
                with pytest.raises(psycopg2.errors.CheckViolation):
                    rows(typed, f"SELECT %s::{column.type}", (literal,))
                continue
            rows(typed, f"SELECT %s::{column.type}", (literal,))  # raises when PostgreSQL refuses it


def test_ordinary_values_differ_by_token(typed):
    meta = read_tables(typed, ["every_type"])["every_type"]
    for column in meta.columns[1:-1]:
        values = {column_literal(column, "typical", token) for token in (1310, 1441, 1572)}
        assert len(values) == 3, column.type


def test_a_table_of_every_type_is_seeded_without_a_gap(typed):
    report = Seeder(typed, spread_edges=True).seed(["every_type"], PRE_RELEASE_PROFILES, round_token=1)
    assert report.skipped == {}
    assert report.inserted["every_type"] >= 3
    assert report.unsupported == {"every_type": {"odd": "pair"}}  # a composite type: named, not hidden
    columns = ", ".join(f"count(DISTINCT {column_name(i)}::text)" for i in range(len(NEW_TYPES + EXTRA)))
    distinct = rows(typed, f"SELECT {columns} FROM every_type")[0]
    assert min(distinct) >= 3, dict(zip(NEW_TYPES + EXTRA, distinct, strict=True))


def test_edges_of_ranges_and_bit_strings(typed):
    span, bits, varbits = (column_name(NEW_TYPES.index(name)) for name in ("int4range", "bit(8)", "bit varying(12)"))
    found = rows(typed, f"SELECT bool_or(isempty({span})), bool_or(lower_inf({span}) AND upper_inf({span})), "
                        f"bool_or({bits} = B'11111111'), bool_or({varbits} = B''), bool_or(length({varbits}) = 12) "
                        "FROM every_type")
    assert found == [(True, True, True, True, True)]
