"""Schema snapshots read from the PostgreSQL catalog, and how two of them differ.

Owns: `snapshot_schema` (and `PreparedSnapshots`, the same taken many times on one connection)
(every schema object of a database as {object key: {attribute: value}};
a partition's parent and bounds and a partitioned table's key are attributes of the table;
keyed by name, never by OID, so snapshots of two databases compare; `django_migrations` left
out) and `diff_schema` (one finding per object, named for a reader, whole tables before their
parts).

`diff_schema` is pure.
"""

from __future__ import annotations

import re
from typing import Any

from .. import rules
from ..postgres.catalog import NOT_FROM_EXTENSION, USER_SCHEMAS
from ..results import Finding
from ..verdicts import FindingKind

Connection = Any  # a psycopg2 connection

# Each query yields (object key, attribute, value) rows; keys name objects the way a reader
# looks for them ("index upstream_invoice_status_idx", "column upstream_invoice.total"), never
# by OID, so snapshots of two databases compare.
SCHEMA_QUERIES = {
    "relations": f"""
        SELECT CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view '
                    WHEN 'f' THEN 'foreign table ' ELSE 'table ' END || {{qual}}(n.nspname, c.relname),
               'definition',
               CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) ELSE c.relkind::text END
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {USER_SCHEMAS}
          AND {NOT_FROM_EXTENSION.format(oid="c.oid")}""",
    # Partitioned tables: their key, and each partition's parent and bounds.
    "partitions": f"""
        SELECT 'table ' || {{qual}}(n.nspname, c.relname), attr.name, attr.value
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        CROSS JOIN LATERAL (VALUES
            ('partition key', CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END),
            ('partition of', (SELECT {{qual}}(pn.nspname, p.relname) || ' ' || pg_get_expr(c.relpartbound, c.oid)
                              FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
                              JOIN pg_namespace pn ON pn.oid = p.relnamespace
                              WHERE i.inhrelid = c.oid AND c.relispartition))
        ) AS attr(name, value)
        WHERE c.relkind IN ('r', 'p') AND {USER_SCHEMAS} AND attr.value IS NOT NULL
          AND {NOT_FROM_EXTENSION.format(oid="c.oid")}""",
    "columns": f"""
        SELECT 'column ' || {{qual}}(n.nspname, c.relname) || '.' || a.attname, attr.name, attr.value
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        LEFT JOIN pg_collation col ON col.oid = a.attcollation AND a.attcollation <> t.typcollation
        CROSS JOIN LATERAL (VALUES
            ('type', format_type(a.atttypid, a.atttypmod)),
            ('null', CASE WHEN a.attnotnull THEN 'NOT NULL' ELSE 'NULL' END),
            ('default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END),
            ('generated', CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END),
            ('identity', CASE a.attidentity WHEN 'a' THEN 'ALWAYS' WHEN 'd' THEN 'BY DEFAULT' END),
            ('collation', col.collname)
        ) AS attr(name, value)
        WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND {USER_SCHEMAS} AND attr.value IS NOT NULL
          AND {NOT_FROM_EXTENSION.format(oid="c.oid")}""",
    # An index a failed or cancelled CREATE INDEX CONCURRENTLY left behind is INVALID: its
    # definition reads like a good one, but queries never use it and unique ones still check every
    # write. Only invalid indexes carry the attribute, so valid ones compare as before.
    "indexes": f"""
        SELECT 'index ' || {{qual}}(n.nspname, ic.relname), attr.name, attr.value
        FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = ic.relnamespace
        CROSS JOIN LATERAL (VALUES
            ('definition', pg_get_indexdef(i.indexrelid)),
            ('validity', CASE WHEN NOT i.indisvalid THEN 'INVALID (not used by queries)' END)
        ) AS attr(name, value)
        WHERE {USER_SCHEMAS} AND attr.value IS NOT NULL
          AND {NOT_FROM_EXTENSION.format(oid="i.indrelid")}""",
    "constraints": f"""
        SELECT 'constraint ' || con.conname || ' on ' || {{qual}}(n.nspname, c.relname), 'definition',
               pg_get_constraintdef(con.oid)
        FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {USER_SCHEMAS} AND {NOT_FROM_EXTENSION.format(oid="c.oid")}""",
    "sequences": f"""
        SELECT 'sequence ' || {{qual}}(n.nspname, c.relname), attr.name, attr.value
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        CROSS JOIN LATERAL (VALUES
            ('type', format_type(s.seqtypid, NULL)),
            ('increment', s.seqincrement::text),
            ('range', s.seqmin::text || '..' || s.seqmax::text || CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END),
            ('owned by', (SELECT {{qual}}(tn.nspname, tc.relname) || '.' || ta.attname
                          FROM pg_depend d JOIN pg_class tc ON tc.oid = d.refobjid
                          JOIN pg_namespace tn ON tn.oid = tc.relnamespace
                          JOIN pg_attribute ta ON ta.attrelid = d.refobjid AND ta.attnum = d.refobjsubid
                          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                            AND d.deptype IN ('a', 'i') LIMIT 1))
        ) AS attr(name, value)
        WHERE {USER_SCHEMAS} AND attr.value IS NOT NULL AND {NOT_FROM_EXTENSION.format(oid="c.oid")}""",
    "triggers": f"""
        SELECT 'trigger ' || t.tgname || ' on ' || {{qual}}(n.nspname, c.relname), 'definition',
               pg_get_triggerdef(t.oid)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT t.tgisinternal AND {USER_SCHEMAS}""",
    "functions": f"""
        SELECT CASE p.prokind WHEN 'p' THEN 'procedure ' ELSE 'function ' END
               || {{qual}}(n.nspname, p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               'definition', pg_get_functiondef(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.prokind IN ('f', 'p') AND {USER_SCHEMAS} AND {NOT_FROM_EXTENSION.format(oid="p.oid")}""",
    "types": f"""
        SELECT CASE t.typtype WHEN 'e' THEN 'enum type ' ELSE 'domain ' END || {{qual}}(n.nspname, t.typname),
               'definition',
               CASE t.typtype
                 WHEN 'e' THEN (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
                                FROM pg_enum e WHERE e.enumtypid = t.oid)
                 ELSE format_type(t.typbasetype, t.typtypmod)
                      || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
                      || COALESCE(' DEFAULT ' || t.typdefault, '')
                      || COALESCE((SELECT ' ' || string_agg(pg_get_constraintdef(dc.oid), ' ' ORDER BY dc.conname)
                                   FROM pg_constraint dc WHERE dc.contypid = t.oid), '')
               END
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype IN ('e', 'd') AND {USER_SCHEMAS} AND {NOT_FROM_EXTENSION.format(oid="t.oid")}""",
    "extensions": """
        SELECT 'extension ' || e.extname, 'version', e.extversion FROM pg_extension e
        WHERE e.extname <> 'plpgsql'""",
}
QUALIFY_SQL = "(CASE WHEN {0} = 'public' THEN {1} ELSE {0} || '.' || {1} END)"

SchemaSnapshot = dict[str, dict[str, str]]
# Django's own record of applied migrations appears with the first `migrate`; it is not schema
# that any migration owns.
DJANGO_BOOKKEEPING = re.compile(r"\bdjango_migrations(?:\b|_)")


def qualify_placeholder(sql: str) -> str:
    """Replace `{qual}(schema, name)` with SQL that omits the default `public.` schema."""
    def replace(match: re.Match[str]) -> str:
        schema, name = (part.strip() for part in match.group(1).split(",", 1))
        return QUALIFY_SQL.format(schema, name)
    return re.sub(r"\{qual\}\(([^()]*)\)", replace, sql)


def snapshot_schema(connection: Connection) -> SchemaSnapshot:
    """Every schema object of the database as {object key: {attribute: value}}."""
    return read_snapshot(connection, [qualify_placeholder(sql) for sql in SCHEMA_QUERIES.values()])


def read_snapshot(connection: Connection, statements: list[str]) -> SchemaSnapshot:
    snapshot: SchemaSnapshot = {}
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
            for key, attribute, value in cursor.fetchall():
                if not DJANGO_BOOKKEEPING.search(key):
                    snapshot.setdefault(key, {})[attribute] = value
    return snapshot


class PreparedSnapshots:
    """`snapshot_schema` of one connection, taken many times (a chain's database: four a tested
    migration). The queries are prepared on the connection at the first snapshot and executed
    by name after: PostgreSQL then plans each once per connection (a statement without
    parameters keeps one generic plan) instead of at every snapshot, where planning was about a
    third of a snapshot's server time. The same statements read the same catalogs at each call,
    so the snapshots are the same as `snapshot_schema`'s."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.names = [f"tm_schema_{name}" for name in SCHEMA_QUERIES]
        self.prepared = False

    def take(self) -> SchemaSnapshot:
        if not self.prepared:
            with self.connection.cursor() as cursor:
                for name, sql in zip(self.names, SCHEMA_QUERIES.values(), strict=True):
                    cursor.execute(f"PREPARE {name} AS {qualify_placeholder(sql)}")
            self.prepared = True
        return read_snapshot(self.connection, [f"EXECUTE {name}" for name in self.names])


def describe_value(value: str | None) -> str:
    if value is None:
        return "(none)"
    flat = " ".join(value.split())
    return flat if len(flat) <= 120 else flat[:117] + "..."


def describe_change(was: str, now: str, width: int = 120) -> tuple[str, str]:
    """(was, now), each cut around where they first differ when they are long (the part that matters)."""
    was, now = " ".join(was.split()), " ".join(now.split())
    if len(was) <= width and len(now) <= width:
        return was, now
    start = next((i for i, (a, b) in enumerate(zip(was, now, strict=False)) if a != b), min(len(was), len(now)))
    begin = max(start - 30, 0)

    def cut(text: str) -> str:
        return ("..." if begin else "") + text[begin : begin + width] + ("..." if begin + width < len(text) else "")

    return cut(was), cut(now)


OBJECT_ORDER = ("table", "view", "materialized", "enum", "domain", "extension", "column", "constraint",
                "index", "trigger", "function", "procedure", "sequence")


def object_order(key: str) -> tuple[int, str]:
    """Whole tables first, then their parts: the first finding is the one a reader needs."""
    kind = key.split(" ", 1)[0]
    return (OBJECT_ORDER.index(kind) if kind in OBJECT_ORDER else len(OBJECT_ORDER), key)


def part_of_whole_table(key: str, attributes: dict[str, str], expected: SchemaSnapshot,
                        actual: SchemaSnapshot) -> bool:
    """True for a column, constraint, index, trigger or owned sequence of a table that is itself
    only in one snapshot: "table x still exists" says it all."""
    tables = {k.split(" ", 1)[1] for k in expected.keys() ^ actual.keys() if k.startswith("table ")}
    for table in tables:
        if key.startswith(f"column {table}.") or key.endswith(f" on {table}"):
            return True
        definition = attributes.get("definition", "") + " " + attributes.get("owned by", "")
        if key.startswith(("index ", "sequence ")) and (
                f" ON {table} " in definition or f" ON public.{table} " in definition
                or definition.strip().startswith(f"{table}.")):
            return True
    return False


def only_validated(before: dict[str, str] | None, after: dict[str, str] | None) -> bool:
    """A constraint that was NOT VALID and is now validated, nothing else changed: what rolling back
    a ValidateConstraint leaves. PostgreSQL cannot un-validate a constraint, and a validated one
    only says that every old row was checked (new writes were checked either way), so a rollback
    is not faulted for it. The retry proof's comparisons still tell the two apart."""
    if before is None or after is None or before.keys() != after.keys():
        return False
    was, now = before.get("definition", ""), after.get("definition", "")
    return was.endswith(" NOT VALID") and was.removesuffix(" NOT VALID") == now and all(
        before[k] == after[k] for k in before if k != "definition")


def diff_schema(expected: SchemaSnapshot, actual: SchemaSnapshot, moment: str) -> list[Finding]:
    """Differences between two snapshots, one finding per object attribute, named for a reader.

    `moment` completes the sentence, e.g. "after rolling back 0019_invoice_status_index".
    """
    findings = []
    for key in sorted(expected.keys() | actual.keys(), key=object_order):
        before, after = expected.get(key), actual.get(key)
        # The key is in one snapshot at least; `or {}` only tells the type checker so.
        if before == after or part_of_whole_table(key, before or after or {}, expected, actual):
            continue
        if moment.startswith("after rolling back") and only_validated(before, after):
            continue
        if before is None:
            message = f"{key} still exists {moment}" if moment.startswith("after rolling back") \
                else f"{key} exists {moment} but did not before"
        elif after is None:
            message = f"{key} is missing {moment}"
        else:
            parts = []
            for attribute in sorted(before.keys() | after.keys()):
                was, now = before.get(attribute), after.get(attribute)
                if was == now:
                    continue
                if was is None:
                    parts.append(f"{attribute} {describe_value(now)} remains")
                elif now is None:
                    parts.append(f"{attribute} {describe_value(was)} is gone")
                else:
                    was_shown, now_shown = describe_change(was, now)
                    parts.append(f"{attribute} is {now_shown}, expected {was_shown}")
            message = f"{key}: {'; '.join(parts)} {moment}"
        findings.append(Finding(FindingKind.SCHEMA, message, {"object": key}, rules.SCHEMA_DIFFERS))
    return findings
