"""The project-wide checks, on the "head" scratch database: `forward`, `check_deploy`,
`missing_migrations`.

Owns: what each check runs (the commands a user would run: `migrate` from scratch, then
`showmigrations --plan` must list every migration applied; `check --deploy`, whose errors fail
and whose warnings are shown; `makemigrations --check --dry-run`) and how its output becomes a
`CheckResult`.
"""

from __future__ import annotations

import re

from ..log import Log
from ..processes.steps import StepRunner
from ..results import CheckResult
from ..verdicts import CheckStatus
from .discovery import parse_showmigrations_plan


def run_forward_checks(runner: StepRunner, head_url: str, log: Log) -> list[CheckResult]:
    """forward (migrate from scratch, and showmigrations agrees) then missing_migrations."""
    forward = run_forward(runner, head_url)
    log.step("forward: migrate every app from scratch", forward.status, forward.duration_s, forward.detail)
    if forward.status != CheckStatus.PASSED:
        return [forward, CheckResult("missing_migrations", CheckStatus.SKIPPED, 0.0, "forward migration failed")]
    missing = run_missing_migrations(runner, head_url)
    log.step("missing_migrations: makemigrations --check --dry-run", missing.status, missing.duration_s,
             missing.detail)
    return [forward, missing]


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
