"""Judging the rows written after the release: rolling the release back must not take them away.

Post-release rows are the rows seeded after the migration was applied (`SeedReport.keys` names
them, so rows the migration wrote itself are not among them). After the rollback each of them is
compared with its fingerprint taken right after the seeding, in the columns that existed before
the migration; columns the migration created, and columns Django fills on every save, are left
out. Then:

- a row the rollback deleted is lost (a reverse `RunPython` that deletes every row it thinks the
  forward created takes the users' rows with it);
- a value the rollback changed is lost unless re-applying the migration gives it back: a reverse
  that translates a value into the old release's terms (status `cancelled` back to `void`) and a
  forward that translates it again lose nothing;
- a value in a column whose definition the migration changes (longer, nullable, wider numbers)
  may not fit the old definition, so the rollback has to change it: that is information, when
  the migration's own reverse does it on purpose (a reverse that shortens the long values first,
  so that narrowing `varchar(500)` back to `varchar(200)` does not fail, as `upstream.0011`'s);
- but when the migration's rollback runs no code of its own (no RunPython or RunSQL reverse) and
  narrows the column to a bounded character type (`varchar(N)`, `char(N)`) from an unbounded or
  longer one, a non-NULL value it changed, and re-applying does not give back, was cut behind
  the author's back, and is lost: Django's `ALTER ... TYPE varchar(N) USING col::varchar(N)` (when
  the field's type changes: `text`, `jsonb`, a SlugField to a CharField) is an explicit cast,
  which PostgreSQL truncates instead of failing (without `USING` the rollback fails instead).

Rows are found again after the rollback by their primary key; where the rollback changed the
primary key (a migration that moved it from `key` to a new `id`), by the columns that survive it
(`rolled_back_changes`): looked up by a column the rollback drops, every row would seem deleted.

Owns: `PostReleaseScope` (which rows and columns are compared), `post_release_scope`,
`rolled_back_changes`, `null_cells` and `judge_post_release`. Pure: no database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ... import rules
from ...postgres.catalog import Columns
from ...project.discovery import MigrationInfo
from ...results import Finding
from ...verdicts import FindingKind
from .fingerprints import Cell, Fingerprint, TableFingerprint, changed_cells, example_key, value_hash

# A bounded character type as format_type writes it (character varying(50), character(3), arrays
# of them), or as the tests' fingerprints do (varchar(50)).
BOUNDED_CHARACTERS = re.compile(r"^(?:character varying|character|varchar|char)\((?P<length>\d+)\)")


@dataclass(frozen=True)
class PostReleaseScope:
    """The post-release rows (keys by table) and the columns of theirs that are compared; and
    the columns left out because the migration changes their definition, among them those its
    rollback casts to a bounded character type (`truncating`: (table, column) -> the length)."""

    keys: dict[str, set[str]]
    compared: Columns
    altered: Columns
    truncating: dict[tuple[str, str], int] = field(default_factory=dict)


def cast_truncates(before: str | None, applied: str | None) -> int | None:
    """The length N when a rollback from type `applied` back to type `before` narrows the values
    to varchar(N)/char(N): from an unbounded type, or a bounded one longer than N (the types as
    the fingerprints hold them, NOT NULL included); else None. Whether PostgreSQL truncates or
    fails depends on Django's statement (`USING col::varchar(N)`, an explicit cast, truncates:
    text to varchar, but also SlugField to CharField, whose data types Django tells apart); where
    it fails, the rollback fails and no value is compared, so a value the rollback changed in
    such a column, and re-applying does not give back, was cut."""
    old = BOUNDED_CHARACTERS.match(before or "")
    if old is None:
        return None
    new = BOUNDED_CHARACTERS.match(applied or "")
    if new is not None and int(new["length"]) <= int(old["length"]):
        return None
    return int(old["length"])


def post_release_scope(seeded: dict[str, list[str]], before: Fingerprint, applied: Fingerprint,
                       columns_before: Columns, excluded: frozenset[tuple[str, str | None]]) -> PostReleaseScope:
    """What to compare: rows seeded after the migration into tables that existed before it; in
    their columns that existed before it (but those in `excluded`: sibling migrations' columns).
    `before` and `applied` are the fingerprints before the migration and after the seeding."""
    keys, compared, altered, truncating = {}, {}, {}, {}
    for table, inserted in seeded.items():
        now, then = applied.get(table), before.get(table)
        if now is None or then is None or table not in columns_before or (table, None) in excluded:
            continue
        old_columns = {c for c in now.columns if c in columns_before[table] and c in then.columns
                       and (table, c) not in excluded}
        altered[table] = {c for c in old_columns if then.types.get(c) != now.types.get(c)}
        compared[table] = old_columns - altered[table]
        keys[table] = set(inserted)
        for column in altered[table]:
            length = cast_truncates(then.types.get(column), now.types.get(column))
            if length is not None:
                truncating[(table, column)] = length
    return PostReleaseScope(keys, compared, altered, truncating)


def group(cells: Iterable[Cell]) -> dict[tuple[str, str | None], list[str]]:
    """Cells by (table, column), keys in order."""
    grouped: dict[tuple[str, str | None], list[str]] = {}
    for table, column, key in sorted(cells, key=lambda cell: (cell[0], cell[1] or "", cell[2])):
        grouped.setdefault((table, column), []).append(key)
    return grouped


def loss_message(table: str, column: str | None, keys: list[str], migration: MigrationInfo) -> str:
    if column is None:
        return (f"table {table}: {len(keys)} post-release row(s) deleted by rolling back {migration.name} "
                f"(e.g. primary key {example_key(keys[0])})")
    return (f"column {table}.{column}: {len(keys)} post-release row(s) changed by rolling back {migration.name} "
            f"and not given back by re-applying it (e.g. primary key {example_key(keys[0])})")


def truncation_message(table: str, column: str, keys: list[str], length: int, migration: MigrationInfo) -> str:
    return (f"column {table}.{column}: {len(keys)} post-release value(s) cut to {length} characters by rolling back "
            f"{migration.name}: its reverse casts the column back to a {length}-character type with an explicit "
            f"cast (ALTER ... USING), which PostgreSQL truncates instead of failing (e.g. primary key "
            f"{example_key(keys[0])})")


@dataclass(frozen=True)
class PostReleaseVerdict:
    lost: bool
    findings: list[Finding]


def judge_post_release(migration: MigrationInfo, scope: PostReleaseScope, rolled_back: set[Cell],
                       reapplied: set[Cell] | None, written_null: frozenset[Cell] = frozenset()) -> PostReleaseVerdict:
    """`rolled_back`: post-release cells (in `scope.compared` and `scope.altered` columns) that
    differ after the rollback (from `changed_cells`); `reapplied`: those that differ after the
    re-application (None when that was not compared: nothing differed after the rollback);
    `written_null`: cells the seeding left NULL (a rollback that fills them in cuts nothing)."""
    adapted = {cell for cell in rolled_back if cell[1] is not None and cell[1] in scope.altered.get(cell[0], set())}
    lost = {cell for cell in rolled_back - adapted if cell[1] is None or reapplied is None or cell in reapplied}
    cut = set() if migration.adapts_on_rollback() else {
        cell for cell in adapted if (cell[0], cell[1]) in scope.truncating and cell not in written_null
        and (reapplied is None or cell in reapplied)}
    findings: list[Finding] = []
    for (table, column), keys in group(lost).items():
        findings.append(loss_finding(table, column, keys, loss_message(table, column, keys, migration)))
    for (table, column), keys in group(cut).items():
        length = scope.truncating[(table, column or "")]  # adapted cells are columns, never whole rows
        findings.append(loss_finding(table, column, keys, truncation_message(table, column or "", keys, length,
                                                                             migration), cut_to=length))
    for (table, column), keys in group(adapted - cut).items():
        findings.append(Finding(FindingKind.INFO, f"column {table}.{column}: {len(keys)} post-release value(s) "
                                f"changed by the rollback to fit the column's definition before {migration.name} "
                                "(its reverse adapts them: a NULL filled in, a long value shortened first)",
                                {"table": table, "column": column}))
    return PostReleaseVerdict(bool(lost or cut), findings)


def loss_finding(table: str, column: str | None, keys: list[str], message: str,
                 cut_to: int | None = None) -> Finding:
    """`cut_to`: the length the rollback cut the values to (JSON `cut_to`), for a truncation."""
    extra: dict[str, object] = {"table": table, "column": column, "rows": len(keys), "example_pk": keys[0],
                                "operation": None, "rows_written": "post-release"}
    if cut_to is not None:
        extra["cut_to"] = cut_to
    return Finding(FindingKind.DATA_LOST, message, extra, rules.POST_RELEASE_DATA_LOST)


def null_cells(fingerprint: Fingerprint, cells: Iterable[Cell]) -> frozenset[Cell]:
    """The cells among `cells` that hold NULL in `fingerprint`."""
    null = value_hash(None)
    return frozenset(cell for cell in cells if cell[1] is not None and cell[0] in fingerprint
                     and fingerprint[cell[0]].rows.get(cell[2], {}).get(cell[1]) == null)


def identity_columns(applied: TableFingerprint, rolled_back: TableFingerprint) -> list[str]:
    """The columns that tell a row apart on both sides of a rollback that changed the table's
    primary key: the key after the rollback when the rows had it before (a key moved from `key`
    to a new `id` and back), else every column both sides have."""
    if set(rolled_back.key_columns) <= set(applied.columns):
        return list(rolled_back.key_columns)
    return [column for column in applied.columns if column in rolled_back.columns]


def rekeyed(table: TableFingerprint, columns: Sequence[str]) -> tuple[TableFingerprint, dict[str, str]]:
    """`table` keyed by the hashes of `columns`, and each new key's original key (rows that share
    those values are counted apart, as rows without a primary key are)."""
    rows: dict[str, dict[str, str]] = {}
    originals: dict[str, str] = {}
    for key, values in table.rows.items():
        base = json.dumps([values.get(column) for column in columns])
        new, n = base, 1
        while new in rows:
            n += 1
            new = f"{base}#{n}"
        rows[new], originals[new] = values, key
    return TableFingerprint(table.columns, list(columns), rows, table.types), originals


def rolled_back_changes(applied: Fingerprint, rolled_back: Fingerprint, scope: PostReleaseScope) -> set[Cell]:
    """`changed_cells` of the post-release rows from `applied` (after the seeding) to `rolled_back`
    (after the rollback). Rows are found again by their primary key; where the rollback changed the
    table's primary key (the migration moved it), by what survives the rollback (`identity_columns`),
    so a row that is still there is not taken for deleted. Cells keep the keys of `applied`."""
    columns = compared_columns(scope)
    changed: set[Cell] = set()
    for table, keys in scope.keys.items():
        old, new = applied.get(table), rolled_back.get(table)
        if old is None or new is None or old.key_columns == new.key_columns:
            changed |= changed_cells(applied, rolled_back, {table: keys}, columns)
            continue
        identity = identity_columns(old, new)
        if not identity:
            changed |= changed_cells(applied, rolled_back, {table: keys}, columns)
            continue
        old_by_identity, originals = rekeyed(old, identity)
        new_by_identity, _ = rekeyed(new, identity)
        wanted = {new_key for new_key, key in originals.items() if key in keys}
        cells = changed_cells({table: old_by_identity}, {table: new_by_identity}, {table: wanted}, columns)
        changed |= {(table, column, originals[key]) for _, column, key in cells}
    return changed


def compared_columns(scope: PostReleaseScope) -> Columns:
    """Every column whose post-release values are looked at (compared, or altered: information)."""
    return {table: scope.compared.get(table, set()) | scope.altered.get(table, set()) for table in scope.keys}
