"""The console summary printed at the end of a run: a table of the verdicts, what the data
proof did not cover, the deploy hazards (warnings), how long locks were held with --volume, then
what failed, and which migrations did not get every verdict, with why."""

from __future__ import annotations

from .. import rules
from ..log import Log
from ..proofs.deploy_safety.hazards import sql_mode
from ..results import RunResult
from ..verdicts import Data, FindingKind, HazardSource, Retry, Rollback
from .problems import failure_lines, untested_lines, window_note
from .rehearsal import print_rehearsal

STATEMENT_WIDTH = 160


def print_hazards(result: RunResult, log: Log) -> None:
    """The hazards as warnings (with --fail-on-hazards they are among the problems instead), and
    with --volume how long each write-blocking lock was held."""
    if result.observation_note:
        log.info("")
        log.info(result.observation_note)
    hazards = result.hazards()
    if hazards and not result.fail_on_hazards:
        log.info("")
        log.info(f"hazards: {len(hazards)} (warnings; --fail-on-hazards makes them fail)")
        for migration, hazard in hazards:
            statement = " ".join(hazard.statement.split())
            shown = statement if len(statement) <= STATEMENT_WIDTH else statement[:STATEMENT_WIDTH] + "..."
            where = migration.label if migration else "run"
            log.info(f"  - {where}: {hazard.rule} ({hazard.source}): {hazard.message}")
            log.info(f"      statement: {shown}")
            log.info(f"      fix: {hazard.fix}")
            log.info(f"      docs: {rules.docs_page(hazard.rule, hazard.source == HazardSource.SQUAWK)}")
    holds = [(m, hold) for app in result.apps for m in app.migrations for hold in m.lock_holds]
    if result.volume and holds:
        log.info("")
        log.info(f"locks held with --volume {result.volume:,}:")
        for m, hold in holds:
            rows = f" at {hold.rows:,} rows" if hold.rows is not None else ""
            log.info(f"  - {m.label}: {sql_mode(hold.mode)} on {hold.table} for {hold.held_s:.2f} s{rows}")


def print_summary(result: RunResult, log: Log) -> None:
    rows = [("migration", "apply", "rollback", "re-apply", "schema", "data", "compat", "retry", "time")]
    for app in result.apps:
        for m in app.migrations:
            seconds = sum(v for v in m.durations.values() if v)
            rollback = f"blocked (alone: {m.own_rollback})" if m.rollback == Rollback.BLOCKED else m.rollback
            rollback += "*" if m.acknowledged and m.own_rollback == Rollback.IRREVERSIBLE else ""
            data = m.data + ("*" if m.acknowledged and m.data == Data.LOST else "")
            compat = m.compat + ("*" if m.compat_acknowledged else "")
            retry = m.retry + ("*" if m.retry_acknowledged and m.retry == Retry.FAILED else "")
            rows.append((m.label, m.apply, rollback, m.reapply, m.schema, data, compat, retry,
                         f"{seconds:.1f}s" if seconds else "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    log.info("")
    for row in rows:
        log.info("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if any(m.acknowledged or m.compat_acknowledged or m.retry_acknowledged
           for app in result.apps for m in app.migrations):
        log.info("(* acknowledged on purpose)")
    note = window_note(result)
    if note:
        log.info(note)
    print_coverage(result, log)
    print_hazards(result, log)
    print_rehearsal(result, log)
    print_closing_lines(result, log)


UNTESTED_SHOWN = 10


def print_closing_lines(result: RunResult, log: Log) -> None:
    """FAILED and the list of problems, or OK; then how many migrations got every verdict, and
    the others named with why (nothing untested is silent)."""
    problems = failure_lines(result)
    migrations = [m for app in result.apps for m in app.migrations]
    untested = untested_lines(result)
    complete = "every verdict" if not untested else f"{len(migrations) - len(untested)} with every verdict"
    counted = f"{len(migrations)} migration(s), {complete}"
    log.info("")
    if problems:
        log.info(f"FAILED: {len(problems)} problem(s)")
        for _, _, message in problems:
            log.info(f"  - {message}")
        log.info(counted)
    else:
        log.info(f"OK: all checks passed: {counted}, in {result.duration_s:.1f}s "
                 f"({result.processes} manage.py processes)")
    if untested:
        shown = ", ".join(untested[:UNTESTED_SHOWN])
        more = f", and {len(untested) - UNTESTED_SHOWN} more" if len(untested) > UNTESTED_SHOWN else ""
        log.info(f"{len(untested)} migration(s) not fully tested: {shown}{more}")


COVERAGE_LINES = 20


def coverage_gaps(result: RunResult) -> dict[tuple[str, str], list[str]]:
    """(app, what the data proof did not cover) -> the migrations whose proof it concerns."""
    gaps: dict[tuple[str, str], list[str]] = {}
    for app in result.apps:
        for m in reversed(app.migrations):
            for finding in m.details:
                if finding.kind == FindingKind.COVERAGE:
                    gaps.setdefault((app.app, finding.message), []).append(m.name)
    return gaps


def print_coverage(result: RunResult, log: Log) -> None:
    """What "data preserved" does not speak for (details of kind coverage), once per column."""
    gaps = coverage_gaps(result)
    if not gaps:
        return
    log.info("")
    log.info(f"Not covered by the data proof ({len(gaps)}): a 'preserved' says nothing about these "
             f"[{rules.DATA_NOT_COVERED}: {rules.docs_page(rules.DATA_NOT_COVERED)}]")
    for (app, message), names in list(gaps.items())[:COVERAGE_LINES]:
        which = ", ".join(names) if len(names) <= 3 else f"{len(names)} migrations, {names[0]} .. {names[-1]}"
        log.info(f"  - {app}: {message} ({which})")
    if len(gaps) > COVERAGE_LINES:
        log.info(f"  ... and {len(gaps) - COVERAGE_LINES} more (details of kind coverage in --report-json)")
