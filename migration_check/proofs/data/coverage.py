"""What the data proof of one migration did not cover, so "preserved" never claims more than
was checked.

A pre-release table with no rows proves nothing about its data; a column that holds NULL in
every pre-release row (its type has no value generator, or every row that would have set it was
rejected) proves nothing about its values; a column Django fills on every save (`auto_now`) is
not compared. Each is a `coverage` finding naming the table (and column) and why.

Owns: `coverage_findings`. Pure: no database.
"""

from __future__ import annotations

from collections.abc import Iterable

from ... import rules
from ...results import Finding
from ...verdicts import FindingKind
from .fingerprints import Fingerprint, TableFingerprint, value_hash
from .seeding import SeedReport

NULL_HASH = value_hash(None)


def fingerprint_of(table: str, before: Fingerprint) -> tuple[str, TableFingerprint] | None:
    """The fingerprint of Django's table `table` (catalog names may carry a schema or quotes)."""
    for name, found in before.items():
        bare = name.rsplit(".", 1)[-1].strip('"')
        if name == table or bare == table:
            return name, found
    return None


def column_gap(table: str, column: str, report: SeedReport) -> str:
    column_type = report.unsupported.get(table, {}).get(column)
    if column_type:
        return f"the seeder has no value for its type {column_type}"
    return "it holds NULL in every pre-release row"


def coverage_findings(tables: Iterable[str], before: Fingerprint, report: SeedReport,
                      ignored: dict[str, set[str]],
                      new_in_release: frozenset[tuple[str, str | None]] = frozenset()) -> list[Finding]:
    """`tables`: the app's tables before the migration (Django's names); `before`: the
    pre-release fingerprint; `report`: the pre-release seeding; `ignored`: columns not compared;
    `new_in_release`: columns the release created before the migration (--since), where no
    pre-release value can be, so none missing is a gap."""
    findings = []
    for table in sorted(tables):
        found = fingerprint_of(table, before)
        if found is None:
            findings.append(Finding(FindingKind.COVERAGE,
                                    f"table {table}: not found in the database, its data is not compared",
                                    {"table": table, "column": None}, rules.DATA_NOT_COVERED))
            continue
        name, fingerprint = found
        if not fingerprint.rows:
            reasons = report.skipped.get(name, [])
            why = f"every seeded row was rejected ({reasons[-1]})" if reasons else "no row could be seeded"
            findings.append(Finding(FindingKind.COVERAGE, f"table {name}: no pre-release rows, {why}",
                                    {"table": name, "column": None}, rules.DATA_NOT_COVERED))
            continue
        for column in fingerprint.columns:
            if (name, column) in new_in_release:
                continue
            if all(values.get(column) == NULL_HASH for values in fingerprint.rows.values()):
                findings.append(Finding(FindingKind.COVERAGE, f"column {name}.{column}: not covered, "
                                        f"{column_gap(name, column, report)}", {"table": name, "column": column},
                                        rules.DATA_NOT_COVERED))
        for column in sorted(ignored.get(table, set())):
            findings.append(Finding(FindingKind.COVERAGE, f"column {name}.{column}: not compared, Django sets it "
                                    "on every save (auto_now)", {"table": name, "column": column},
                                    rules.DATA_NOT_COVERED))
    return findings
