"""Seeded data: rows written into a database straight from its catalog.

Owns: the seeding profiles ("typical" ordinary data; "max" the upper edges: strings at their
maximum length in non-ASCII text, the largest decimals of the column's precision, far dates;
"min" the lower ones: NULL wherever allowed, empty strings, zero, old dates), and `Seeder`,
which inserts rows in foreign-key order and skips, never fails on, rows a constraint rejects.
The value made for each column type is `literals.column_literal`. scripts/verify_backup.py
seeds with it too.

Two columns of one row never get the same value by construction: ordinary values are made from
a token per cell (row and column), and with `spread_edges` an edge value that would repeat
another column's value in the same row (two empty strings, two zeros) goes into an extra row of
the same profile instead. Booleans alternate across rows and columns. Choice fields get their
choices. Which edge values are seeded depends only on the tables' contents (an edge value goes
into a column that does not hold it yet) and on the round's token, never on what this object
seeded before: a table dropped and created again gets its edges again.

Writes only to the connection it is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...postgres.catalog import ColumnMeta, TableMeta, read_tables
from ...postgres.faults import raise_if_fault
from ...postgres.server import quote_ident
from .fingerprints import row_key
from .literals import column_literal

Connection = Any  # a psycopg2 connection

# Rows seeded before a migration ("pre-release") and after it ("post-release").
PRE_RELEASE_PROFILES = ("typical", "max", "min")
POST_RELEASE_PROFILES = ("max", "min")
# A row's token times this, plus the column's position, is the token of one cell.
CELLS_PER_ROW = 131  # a prime above the columns of any table: cell % n varies across rows
# Tokens one seeding round may use (rows, retries, extra edge rows) before the next round's.
TOKENS_PER_ROUND = 10_000
Choices = Mapping[str, Mapping[str, Sequence[str]]]  # table -> column -> the values it may hold


@dataclass
class SeedReport:
    """What seeding did: rows inserted and rows skipped (with why), by table; and the columns
    whose type the seeder has no value for (table -> column -> type), which stay NULL (or an
    empty array where NULL is not allowed)."""

    inserted: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    unsupported: dict[str, dict[str, str]] = field(default_factory=dict)
    keys: dict[str, list[str]] = field(default_factory=dict)  # the inserted rows' keys, as fingerprints write them


@dataclass
class Row:
    """One row to insert, and the columns whose edge value was left for another row of the same
    profile (it would have repeated the value of another column of this row)."""

    names: list[str] = field(default_factory=list)
    placeholders: list[str] = field(default_factory=list)
    values: list[str | None] = field(default_factory=list)
    deferred: set[str] = field(default_factory=set)


def first_free(candidates: Sequence[str | None], taken: set[str]) -> str | None:
    """The first candidate that no other column of the row holds (else the first one)."""
    return next((c for c in candidates if c is not None and c not in taken), candidates[0] if candidates else None)


def choice_order(choices: Sequence[str], profile: str, cell: int) -> list[str]:
    """A choice field's values in the order to try them: the longest first at the upper edge,
    the shortest at the lower one, else rotating with the cell (across rows and columns)."""
    if profile == "max":
        return sorted(choices, key=len, reverse=True)
    if profile == "min":
        return sorted(choices, key=len)
    start = cell % len(choices)
    return [*choices[start:], *choices[:start]]


MAX_PAIR_ATTEMPTS = 12  # new pairs tried for one relaxed key (each costs up to two INSERTs)


def other_choices(key: Sequence[str], sources: Sequence[Sequence[str]],
                  choices: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
    """The key values of each source row with one key column set to another of its field's
    choices, in order: candidates for a pair of post-release rows that repeat the key."""
    variants = []
    for source in sources:
        values = dict(zip(key, source, strict=True))
        for column in key:
            variants += [{**values, column: choice} for choice in choices.get(column, ()) if choice != values[column]]
    return variants


class Seeder:
    """Inserts rows into a set of tables straight from the catalog, respecting foreign keys.

    Rows that a constraint rejects (check, unique, not null, trigger) are skipped, not errors:
    the schema decides what data can exist. `spread_edges` (the migration tests) gives an edge
    value that would repeat another column's value of the same row a row of its own; without it
    (the backup check) each profile is exactly one row.
    """

    def __init__(self, connection: Connection, spread_edges: bool = False) -> None:
        self.connection = connection
        self.spread_edges = spread_edges
        self.token = 0

    def seed(self, tables: Sequence[str], profiles: Sequence[str], round_token: int | None = None,
             choices: Choices | None = None) -> SeedReport:
        """Seed `profiles` into `tables` (and the tables their foreign keys need).

        `round_token` numbers the round (the migration tests give one per migration and moment,
        so the values seeded for a migration do not depend on what ran before it); `choices`
        are the values the application's choice fields may hold, by table and column.
        """
        if round_token is not None:
            self.token = round_token * TOKENS_PER_ROUND
        report = SeedReport()
        metas = self._with_foreign_targets(read_tables(self.connection, tables))
        table_choices = self._resolve_tables(choices or {})
        for meta in self._in_dependency_order(metas):
            for index, profile in enumerate(profiles):
                self._seed_profile(meta, profile, index, report, table_choices.get(meta.name, {}))
        return report

    def _seed_profile(self, meta: TableMeta, profile: str, index: int, report: SeedReport,
                      choices: Mapping[str, Sequence[str]]) -> None:
        """A row of `profile`; with spread_edges, more rows of it for the edge values that had
        to wait because they would have repeated another column's value."""
        only: set[str] | None = None
        for _ in range(len(meta.columns) + 1):
            self.token += 1
            deferred = self._insert(meta, profile, index, report, choices, only)
            if not (self.spread_edges and deferred) or deferred == only:
                return
            only = deferred

    def _resolve_tables(self, choices: Choices) -> dict[str, Mapping[str, Sequence[str]]]:
        """`choices` keyed by the tables' names as the catalog reads print them (regclass)."""
        if not choices:
            return {}
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT t, to_regclass(t)::text FROM unnest(%s::text[]) AS t", (list(choices),))
            return {name: choices[table] for table, name in cursor.fetchall() if name}

    def _with_foreign_targets(self, metas: dict[str, TableMeta]) -> dict[str, TableMeta]:
        while True:
            missing = {t for m in metas.values() for t, _ in m.foreign_keys.values()} - metas.keys()
            if not missing:
                return metas
            metas.update(read_tables(self.connection, sorted(missing)))
            metas.update({name: TableMeta(name, [], [], {}) for name in missing if name not in metas})

    @staticmethod
    def _in_dependency_order(metas: dict[str, TableMeta]) -> list[TableMeta]:
        ordered: list[TableMeta] = []
        visiting: set[str] = set()
        done: set[str] = set()

        def visit(name: str) -> None:
            if name in done or name in visiting or name not in metas:
                return
            visiting.add(name)
            for target, _ in metas[name].foreign_keys.values():
                if target != name:
                    visit(target)
            visiting.discard(name)
            done.add(name)
            ordered.append(metas[name])

        for name in sorted(metas):
            visit(name)
        return [meta for meta in ordered if meta.columns]

    def _foreign_value(self, table: str, column: str, target: str, target_column: str, offset: int,
                       taken: set[str]) -> str | None:
        """`target_column` of a row of `target` that no row of `table` refers to through `column`
        yet, and no other column of this row holds (seeded rows never share a parent by
        construction: a unique constraint over a foreign key and a flag added later is not failed
        by the seeding); when every row is referred to, the row at `offset`, counting round. None
        when `target` is empty."""
        key, fk = quote_ident(target_column), quote_ident(column)
        with self.connection.cursor() as cursor:
            cursor.execute(f"SELECT t.{key}::text FROM {target} t WHERE NOT EXISTS (SELECT 1 FROM {table} s "
                           f"WHERE s.{fk} = t.{key}) AND NOT t.{key}::text = ANY(%s) ORDER BY t.{key} DESC LIMIT 1",
                           (sorted(taken),))
            row = cursor.fetchone()
            if row:
                return row[0]
            cursor.execute(f"SELECT count(*) FROM {target}")
            count = cursor.fetchone()[0]
            if not count:
                return None
            cursor.execute(f"SELECT {key}::text FROM {target} ORDER BY 1 LIMIT 1 OFFSET %s", (offset % count,))
            row = cursor.fetchone()
        return row[0] if row else None

    def repeat_key(self, table: str, key: Sequence[str], report: SeedReport, choices: Choices | None = None,
                   ) -> str | None:
        """Insert a row of `table` whose `key` columns repeat those of a row already there (all of
        them not NULL: NULLs never collide), its other columns ordinary values. Returns the new
        row's key (also in `report.keys`), or None when the schema allows no such row."""
        metas = read_tables(self.connection, [table])
        meta = metas.get(table)
        if meta is None or not meta.columns:
            return None
        columns = ", ".join(f"{quote_ident(column)}::text" for column in key)
        present = " AND ".join(f"{quote_ident(column)} IS NOT NULL" for column in key)
        with self.connection.cursor() as cursor:
            cursor.execute(f"SELECT {columns} FROM {table} WHERE {present} LIMIT 3")
            sources = cursor.fetchall()
        table_choices = self._resolve_tables(choices or {}).get(table, {})
        for source in sources:
            if self._insert_pinned(meta, report, table_choices, dict(zip(key, source, strict=True))):
                return report.keys[table][-1]
        # No row there can be repeated as it is (a conditional unique constraint still forbids
        # its values, as django-allauth's mfa.0003 does for every type but one): a new pair of
        # rows with another value its field allows in one key column.
        for pinned in other_choices(key, sources, table_choices)[:MAX_PAIR_ATTEMPTS]:
            if self._insert_pinned(meta, report, table_choices, pinned) and \
                    self._insert_pinned(meta, report, table_choices, pinned):
                return report.keys[table][-1]
        return None

    def _insert_pinned(self, meta: TableMeta, report: SeedReport, choices: Mapping[str, Sequence[str]],
                       pinned: Mapping[str, str]) -> bool:
        """Insert one ordinary row with `pinned`'s values; whether the schema took it."""
        self.token += 1
        inserted = report.inserted.get(meta.name, 0)
        self._insert(meta, "typical", 0, report, choices, None, pinned)
        return report.inserted.get(meta.name, 0) > inserted

    def _insert(self, meta: TableMeta, profile: str, index: int, report: SeedReport,
                choices: Mapping[str, Sequence[str]], only: set[str] | None,
                pinned: Mapping[str, str] | None = None) -> set[str]:
        """Insert one row (edge values only in `only`'s columns when given); when a check or
        unique constraint rejects it, retry with ordinary values in that constraint's columns,
        then with their smallest values (a range check such as 0..100), so one strict column
        does not cost the whole row. Returns the columns whose edge value is still to be seeded."""
        forced = dict.fromkeys(self._outside(meta, only), "typical")  # column -> the profile it gets
        for _attempt in range(4):
            row = self._row_values(meta, profile, index, forced, choices, report, pinned or {})
            if isinstance(row, str):
                report.skipped.setdefault(meta.name, []).append(f"{profile} row: {row}")
                return set()
            columns_sql = (f"({', '.join(row.names)}) VALUES ({', '.join(row.placeholders)})" if row.names
                           else "DEFAULT VALUES")
            key_columns = meta.primary_key or [c.name for c in meta.columns]
            returning = ", ".join(f"{quote_ident(name)}::text" for name in key_columns)
            try:
                with self.connection.cursor() as cursor:
                    cursor.execute(f"INSERT INTO {meta.name} {columns_sql} RETURNING {returning}", row.values)
                    key = row_key(cursor.fetchone(), len(meta.primary_key) == 1)
            except self._psycopg2_error() as error:
                raise_if_fault(error)  # the server failed: no row to skip
                if self._fall_back(forced, self._constraint_columns(error, meta.name)):
                    self.token += 1
                    continue
                first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                report.skipped.setdefault(meta.name, []).append(f"{profile} row: {first_line}")
                return set()
            report.inserted[meta.name] = report.inserted.get(meta.name, 0) + 1
            report.keys.setdefault(meta.name, []).append(key)
            return row.deferred - forced.keys()
        return set()

    @staticmethod
    def _fall_back(forced: dict[str, str], constrained: set[str]) -> bool:
        """Give the columns of a constraint that rejected the row the next, plainer profile
        (ordinary, then smallest); False when there is none left to try."""
        changed = False
        for column in constrained:
            step = {None: "typical", "typical": "smallest"}.get(forced.get(column))
            if step is not None:
                forced[column] = step
                changed = True
        return changed

    @staticmethod
    def _outside(meta: TableMeta, only: set[str] | None) -> set[str]:
        return set() if only is None else {c.name for c in meta.columns} - only

    def _row_values(self, meta: TableMeta, profile: str, index: int, forced: dict[str, str],
                    choices: Mapping[str, Sequence[str]], report: SeedReport,
                    pinned: Mapping[str, str]) -> Row | str:
        """The row to insert (names, placeholders, values, deferred edges); or why there is none.
        `pinned` columns get the given values (a key repeated on purpose)."""
        row, taken = Row(), set[str]()
        for position, column in enumerate(meta.columns):
            if column.name not in pinned and (column.generated or column.identity
                                              or (column.has_default and column.name in meta.primary_key)):
                continue
            column_profile = forced.get(column.name, profile)
            literal = pinned[column.name] if column.name in pinned else self._cell(
                meta, column, position, column_profile, index, choices.get(column.name), taken, row, report)
            if literal is None and column.not_null:
                if column.has_default:
                    continue
                return f"no value for NOT NULL column {column.name} ({column.type})"
            row.names.append(quote_ident(column.name))
            row.placeholders.append(f"%s::{column.type}")
            row.values.append(literal)
            if literal is not None and column.type_name != "bool":
                taken.add(literal)
        return row

    def _cell(self, meta: TableMeta, column: ColumnMeta, position: int, profile: str, index: int,
              choices: Sequence[str] | None, taken: set[str], row: Row, report: SeedReport) -> str | None:
        """The value of one cell: a foreign key to a seeded row, NULL (min, where allowed), a
        boolean alternating across rows and columns, a choice, or the profile's value for the
        type unless another column of the row holds it (or the column already holds the edge)."""
        if column.name in meta.foreign_keys:
            if profile == "min" and not column.not_null:
                return None
            target, target_column = meta.foreign_keys[column.name]
            return self._foreign_value(meta.name, column.name, target, target_column, index + self.token, taken)
        if profile == "min" and not column.not_null:
            return None
        cell = self.token * CELLS_PER_ROW + position
        if column.type_name == "bool":
            return "true" if cell % 2 else "false"
        if choices:
            return first_free(choice_order(choices, profile, cell), taken)
        if profile == "smallest":  # what a constraint still accepts: zero, the empty string, old dates
            return column_literal(column, "min", cell) or column_literal(column, "typical", cell)
        value = column_literal(column, profile, cell)
        if value is None:
            report.unsupported.setdefault(meta.name, {})[column.name] = column.type
            return "{}" if column.category == "A" and column.not_null else None
        ordinary = [column_literal(column, "typical", cell + k * 1_000_003) for k in range(3)]
        if profile == "typical" or self._holds(meta.name, column, value):
            return first_free(ordinary, taken)
        if value in taken and self.spread_edges:
            row.deferred.add(column.name)
            return first_free(ordinary, taken)
        return value

    def _holds(self, table: str, column: ColumnMeta, value: str) -> bool:
        """Whether `column` already holds the edge `value`: each edge goes into a column once, so
        a unique constraint added later does not fail on duplicates only the seeding made."""
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {quote_ident(column.name)}::text "
                               f"= (%s::{column.type})::text)", (value,))
                return bool(cursor.fetchone()[0])
        except self._psycopg2_error():  # not a value of the type (a domain's check): the INSERT says why
            return False

    def _constraint_columns(self, error: Exception, table: str) -> set[str]:
        """Columns of the check or unique constraint that rejected a row (empty if another cause);
        for a domain's check, the table's columns of that domain."""
        name = getattr(getattr(error, "diag", None), "constraint_name", None)
        if not name or getattr(error, "pgcode", None) not in ("23514", "23505"):
            return set()
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT a.attname FROM pg_constraint con JOIN pg_attribute a ON a.attrelid = con.conrelid "
                "AND a.attnum = ANY(con.conkey) WHERE con.conname = %s "
                "UNION SELECT a.attname FROM pg_constraint con JOIN pg_attribute a ON a.atttypid = con.contypid "
                "WHERE con.conname = %s AND a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped "
                "UNION SELECT a.attname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE ic.relname = %s",
                (name, name, table, name))
            return {row[0] for row in cursor.fetchall()}

    @staticmethod
    def _psycopg2_error() -> type[Exception]:
        from ...postgres.driver import load_driver

        return load_driver().Error
