"""The project-wide checks, on the "head" scratch database: `forward`, `check_deploy`,
`missing_migrations`, `sequences`.

Owns: what each check runs (the commands a user would run: `migrate` from scratch, then
`showmigrations --plan` must list every migration applied; `check --deploy`, whose errors fail
and whose warnings are shown; `makemigrations --check --dry-run`; after the migrate, every
sequence that numbers a column must be ahead of the column's values) and how its outcome becomes
a `CheckResult`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

from ..log import Log
from ..postgres.catalog import SequenceBehind
from ..postgres.faults import raise_if_fault
from ..postgres.server import quote_ident
from ..processes.steps import StepRunner
from ..results import CheckResult
from ..verdicts import CheckStatus
from .discovery import parse_showmigrations_plan


def run_forward_checks(runner: StepRunner, head_url: str, log: Log,
                       read_sequences: Callable[[], list[SequenceBehind]]) -> list[CheckResult]:
    """forward (migrate from scratch, and showmigrations agrees), then missing_migrations and
    sequences (`read_sequences` reads the head database's)."""
    forward = run_forward(runner, head_url)
    log.step("forward: migrate every app from scratch", forward.status, forward.duration_s, forward.detail)
    if forward.status != CheckStatus.PASSED:
        return [forward, *(CheckResult(name, CheckStatus.SKIPPED, 0.0, "forward migration failed")
                           for name in ("missing_migrations", "sequences"))]
    missing = run_missing_migrations(runner, head_url)
    log.step("missing_migrations: makemigrations --check --dry-run", missing.status, missing.duration_s,
             missing.detail)
    sequences = run_sequences_check(read_sequences)
    log.step("sequences: every sequence ahead of the values it numbers", sequences.status, sequences.duration_s,
             sequences.detail)
    return [forward, missing, sequences]


def run_sequences_check(read_sequences: Callable[[], list[SequenceBehind]]) -> CheckResult:
    """`sequences` on what `read_sequences` finds; a read that fails (an unusual catalog, a
    permission) skips the check with the reason rather than ending the run, unless the server
    failed the run (exit 3)."""
    started = time.monotonic()
    try:
        behind = read_sequences()
    except Exception as error:  # noqa: BLE001 - one check's catalog read must not end the run
        raise_if_fault(error)
        return CheckResult("sequences", CheckStatus.SKIPPED, round(time.monotonic() - started, 2),
                           f"could not read the sequences: {type(error).__name__}: {error}".strip())
    return sequences_check(behind, round(time.monotonic() - started, 2))


def sequences_check(behind: Sequence[SequenceBehind], duration_s: float) -> CheckResult:
    """`sequences` failed when a migration left a sequence behind its column (rows written with
    their ids, as a data migration or a RunSQL INSERT does, and no setval): on a new database,
    and in production, the next INSERT that lets the database number the row fails."""
    if not behind:
        return CheckResult("sequences", CheckStatus.PASSED, duration_s)
    return CheckResult("sequences", CheckStatus.FAILED, duration_s, "; ".join(describe_behind(b) for b in behind))


def describe_behind(found: SequenceBehind) -> str:
    return (f"{found.table}.{found.column} holds values up to {found.highest}, but its sequence {found.sequence} "
            f"gives {found.next_value} next: it will hand out values the column already holds, and each row "
            f"inserted without {found.column} then fails (duplicate key); the migration that wrote rows with "
            f"their {found.column} must move it on (RunSQL(\"SELECT setval('{found.sequence}', (SELECT "
            f"max({quote_ident(found.column)}) FROM {found.table}))\"))")


def run_forward(runner: StepRunner, head_url: str) -> CheckResult:
    result = runner.run(["migrate", "--noinput", "--no-color"], head_url)
    forward = CheckResult("forward", CheckStatus.of(result.ok), round(result.duration_s, 2))
    if not result.ok:
        forward.detail = result.error_summary()
        return forward
    shown = runner.run(["showmigrations", "--plan", "-v", "2", "--no-color"], head_url)
    entries = parse_showmigrations_plan(shown.stdout)
    unapplied = [f"{e.app}.{e.name}" for e in entries if not e.applied]
    if not shown.ok or not entries or unapplied:
        forward.status = CheckStatus.FAILED
        forward.detail = (f"showmigrations failed: {shown.error_summary()}" if not shown.ok
                          else f"not applied after migrate: {', '.join(unapplied) or 'no migrations listed'}")
    return forward


def run_missing_migrations(runner: StepRunner, head_url: str) -> CheckResult:
    result = runner.run(["makemigrations", "--check", "--dry-run", "--no-color"], head_url)
    detail = None
    if not result.ok:
        changes = describe_missing_migrations(result.stdout)
        detail = (f"model changes without a migration: {changes} (run: python manage.py makemigrations)"
                  if changes else result.error_summary())
    return CheckResult("missing_migrations", CheckStatus.of(result.ok), round(result.duration_s, 2), detail)


def describe_missing_migrations(output: str) -> str:
    """`makemigrations --dry-run` output as "app: change; change", e.g. "shop: + Add field sku to item"."""
    per_app: dict[str, list[str]] = {}
    app = "?"
    for line in output.splitlines():
        header = re.match(r"^Migrations for '([^']+)':", line.strip())
        if header:
            app = header.group(1)
        elif re.match(r"^[-+~*]\s", line.strip()):  # Django 5 marks +/-/~, older ones "- "
            per_app.setdefault(app, []).append(line.strip())
    return "; ".join(f"{label}: {', '.join(changes)}" for label, changes in per_app.items())


def deploy_warnings(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines()
            if re.match(r"^\S+: \((?:security|[\w.]+)\.W\d+\)", line.strip())]


def run_check_deploy(runner: StepRunner, head_url: str, log: Log) -> CheckResult:
    """`check --deploy`: errors fail, warnings are shown."""
    result = runner.run(["check", "--deploy", "--no-color"], head_url)
    warnings = deploy_warnings(result.stderr + result.stdout)
    detail = None if result.ok else result.error_summary()
    if result.ok and warnings:
        detail = f"{len(warnings)} warning(s): " + " | ".join(warnings)
    check = CheckResult("check_deploy", CheckStatus.of(result.ok), round(result.duration_s, 2), detail)
    log.step("check_deploy: check --deploy", check.status, check.duration_s,
             detail if not result.ok else (f"{len(warnings)} warning(s)" if warnings else None))
    for warning in warnings:
        log.detail(f"    {warning}")
    return check
