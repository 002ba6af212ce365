"""The deploy rehearsal in the console and the GitHub step summary: per migration the longest
wait of the previous release's queries and the estimated blocking, as one small table sorted by
severity (the longest blocking first). Reads results; decides nothing.

Owns: `rehearsal_rows`, `print_rehearsal`, `rehearsal_markdown`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..log import Log
from ..proofs.deploy_safety.hazards import sql_mode
from ..proofs.rehearsal.sizes import figure
from ..results import MigrationResult, RunResult

ROWS_SHOWN = 20
HEADER = ("migration", "longest wait", "lock", "blocks writes", "at rows", "basis")


@dataclass(frozen=True)
class RehearsalRow:
    migration: str
    wait: str  # the previous release's longest query (table, kind), or "-"
    lock: str
    blocking: str
    rows: str
    basis: str
    severity: float  # seconds, for the order

    @property
    def cells(self) -> tuple[str, ...]:
        return (self.migration, self.wait, self.lock, self.blocking, self.rows, self.basis)


def longest_wait(m: MigrationResult) -> tuple[str, float]:
    if not m.traffic:
        return "-", 0.0
    worst = max(m.traffic, key=lambda stat: stat.max_wait_s)
    errors = sum(stat.errors for stat in m.traffic)
    shown = f"{figure(worst.max_wait_s)} ({worst.kind} {worst.table})" + (f", {errors} error(s)" if errors else "")
    return shown, worst.max_wait_s


def rehearsal_rows(result: RunResult) -> list[RehearsalRow]:
    """One row per rehearsed migration (its most blocking lock), most severe first."""
    rows = []
    for app in result.apps:
        for m in app.migrations:
            if not (m.traffic or m.impact):
                continue
            wait, waited = longest_wait(m)
            if m.impact:
                top = m.impact[0]  # sorted by blocking, longest first
                rows_at = f"{top.production_rows:,}" if top.production_rows is not None else \
                    f"{top.measured[-1][0]:,}" if top.measured else "-"
                rows.append(RehearsalRow(m.label, wait, f"{sql_mode(top.mode)} {top.table}", figure(top.blocking_s),
                                         rows_at, top.basis, max(top.blocking_s, waited)))
            else:
                rows.append(RehearsalRow(m.label, wait, "-", "-", "-", "no write-blocking lock", waited))
    return sorted(rows, key=lambda row: -row.severity)


def print_rehearsal(result: RunResult, log: Log) -> None:
    rows = rehearsal_rows(result)
    if not rows:
        return
    table = [HEADER, *(row.cells for row in rows[:ROWS_SHOWN])]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    log.info("")
    log.info("deploy rehearsal (the previous release's queries while each migration applied; most blocking first):")
    for line in table:
        log.info("  " + "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    if len(rows) > ROWS_SHOWN:
        log.info(f"  ... and {len(rows) - ROWS_SHOWN} more (traffic and impact in --report-json)")


def rehearsal_markdown(result: RunResult) -> list[str]:
    rows = rehearsal_rows(result)
    if not rows:
        return []
    lines = ["", "### Deploy rehearsal", "", "| " + " | ".join(HEADER) + " |", "|" + " --- |" * len(HEADER)]
    for row in rows[:ROWS_SHOWN * 5]:
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in row.cells) + " |")
    return lines
