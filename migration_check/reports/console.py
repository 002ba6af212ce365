"""The console summary printed at the end of a run: a table of the verdicts, then what failed.

Uses: results, log, reports.problems."""

from __future__ import annotations

from ..log import Log
from ..results import RunResult
from .problems import failure_lines, window_note


def print_summary(result: RunResult, log: Log) -> None:
    rows = [("migration", "apply", "rollback", "re-apply", "schema", "data", "time")]
    for app in result.apps:
        for m in app.migrations:
            seconds = sum(v for v in m.durations.values() if v)
            rollback = m.rollback + ("*" if m.acknowledged and m.rollback == "irreversible" else "")
            data = m.data + ("*" if m.acknowledged and m.data == "lost" else "")
            rows.append((m.label, m.apply, rollback, m.reapply, m.schema, data,
                         f"{seconds:.1f}s" if seconds else "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    log.info("")
    for row in rows:
        log.info("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if any(m.acknowledged for app in result.apps for m in app.migrations):
        log.info("(* acknowledged on purpose)")
    note = window_note(result)
    if note:
        log.info(note)
    problems = failure_lines(result)
    log.info("")
    if problems:
        log.info(f"FAILED: {len(problems)} problem(s)")
        for _, _, message in problems:
            log.info(f"  - {message}")
    else:
        log.info(f"OK: all checks passed in {result.duration_s:.1f}s ({result.processes} manage.py processes)")
