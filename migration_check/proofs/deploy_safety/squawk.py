"""squawk (PyPI `squawk-cli`) on the statements a migration really ran, when it is installed.

The observed statements (locks.py) are passed to `squawk --reporter json --pg-version <server>`
on stdin, with `--assume-in-transaction` when they ran in one transaction. Its findings become
hazards under squawk's own rule names (`source: squawk`). Without squawk the tool works the
same, minus those.

The rule selection (`EXCLUDED_RULES`, each with why) keeps Django-generated SQL from drowning in
noise: squawk guesses from the SQL text what this tool observes on the server, and some of its
rules argue with Django's own conventions or with proofs the tool already makes.

Owns: finding the binary, running it, and reading its report.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...results import Hazard
from ...verdicts import HazardSource
from .hazards import DdlEvent, Event, ddl_events, strongest

SQUAWK_TIMEOUT_S = 60
OBSERVED_HERE = "observed on the server by this tool instead (locks, rewrites, scans)"
DJANGO_CONVENTION = "Django's own SQL does this by design; warning on it is noise"
PROVEN_HERE = "the rollback, data and compatibility proofs of this tool decide it"
EXCLUDED_RULES = {
    "changing-column-type": OBSERVED_HERE,  # varchar -> text is flagged although nothing is rewritten
    "require-concurrent-index-creation": OBSERVED_HERE,
    "constraint-missing-not-valid": OBSERVED_HERE,
    "adding-foreign-key-constraint": OBSERVED_HERE,
    "adding-not-nullable-field": OBSERVED_HERE,
    "disallowed-unique-constraint": OBSERVED_HERE,
    "require-lock-timeout": OBSERVED_HERE,  # one run-wide hazard instead of one per statement
    "require-statement-timeout": OBSERVED_HERE,
    "require-timeout-settings": OBSERVED_HERE,
    "prefer-robust-stmts": DJANGO_CONVENTION,  # Django never writes IF NOT EXISTS
    "prefer-text-field": DJANGO_CONVENTION,  # CharField is varchar(n)
    "prefer-bigint-over-int": DJANGO_CONVENTION,  # IntegerField is integer, chosen by the model
    "prefer-bigint-over-smallint": DJANGO_CONVENTION,
    "prefer-identity": DJANGO_CONVENTION,
    "prefer-timestamp-tz": DJANGO_CONVENTION,  # USE_TZ decides
    "ban-drop-default": DJANGO_CONVENTION,  # AddField with a default: ADD COLUMN ... DEFAULT, then DROP DEFAULT
    "transaction-nesting": DJANGO_CONVENTION,
    "ban-drop-column": PROVEN_HERE,
    "ban-drop-table": PROVEN_HERE,
    "ban-drop-not-null": PROVEN_HERE,
    "renaming-column": PROVEN_HERE,
    "renaming-table": PROVEN_HERE,
    "renaming-object": PROVEN_HERE,
}


@dataclass(frozen=True)
class Squawk:
    """An installed squawk: its path and version."""

    path: str
    version: str


def find_squawk() -> Squawk | None:
    """squawk beside the running Python (a virtualenv's bin, not always on PATH), else on PATH."""
    beside = Path(sys.executable).parent / "squawk"
    path = str(beside) if beside.is_file() else shutil.which("squawk")
    if path is None:
        return None
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=SQUAWK_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    return Squawk(path, done.stdout.strip().removeprefix("squawk ").strip() or "unknown") if done.returncode == 0 \
        else None


def script_of(statements: Sequence[str]) -> tuple[str, list[int]]:
    """The statements as one SQL script, and for each line of it the statement it belongs to."""
    lines: list[str] = []
    owner: list[int] = []
    for index, statement in enumerate(statements):
        text = statement.strip().rstrip(";").strip() + ";"
        for line in text.splitlines():
            lines.append(line)
            owner.append(index)
    return "\n".join(lines) + "\n", owner


def command(squawk: Squawk, pg_version: str, atomic: bool) -> list[str]:
    args = [squawk.path, "--reporter", "json", "--pg-version", pg_version, "--stdin-filepath", "migration.sql",
            "--exclude", ",".join(sorted(EXCLUDED_RULES))]
    return args + (["--assume-in-transaction"] if atomic else [])


def run_squawk(squawk: Squawk, statements: Sequence[str], pg_version: str,
               atomic: bool) -> tuple[list[tuple[int, str, str, str | None]], str | None]:
    """squawk's findings as (statement index, rule, message, help), or why there are none."""
    if not statements:
        return [], None
    script, owner = script_of(statements)
    try:
        done = subprocess.run(command(squawk, pg_version, atomic), input=script, capture_output=True, text=True,
                              timeout=SQUAWK_TIMEOUT_S)
        report = json.loads(done.stdout or "[]")
    except (OSError, subprocess.SubprocessError, ValueError) as error:
        return [], f"squawk could not be run: {type(error).__name__}: {error}"
    if not isinstance(report, list):
        return [], f"squawk printed no report (exit {done.returncode}): {done.stderr.strip()[:200]}"
    found = []
    for item in report:
        line = min(max(int(item.get("line", 0)), 0), len(owner) - 1)
        found.append((owner[line], str(item.get("rule_name", "")), str(item.get("message", "")), item.get("help")))
    return found, None


def statement_tables(events: Sequence[Event], statement: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """The tables a statement altered or indexed, and the locks held when it ended."""
    matching: list[DdlEvent] = [e for e in ddl_events(events) if e.statement == statement]
    targets = tuple(dict.fromkeys(t for e in matching for t in e.targets))
    locks: dict[str, list[str]] = {}
    for event in matching:
        for table, mode in event.locks.items():
            locks.setdefault(table, []).append(mode)
    return targets, {table: strongest(modes) for table, modes in locks.items()}


def squawk_hazards(findings: Sequence[tuple[int, str, str, str | None]], statements: Sequence[str],
                   events: Sequence[Event], pre_existing: set[str]) -> list[Hazard]:
    """Findings as hazards; those about tables the migration itself created are dropped."""
    hazards = []
    for index, rule, message, help_text in findings:
        statement = statements[index]
        targets, locks = statement_tables(events, statement)
        if targets and not any(t in pre_existing for t in targets):
            continue
        table = next((t for t in targets if t in pre_existing), None)
        fix = help_text or f"see squawk's documentation of {rule}"
        hazards.append(Hazard(rule, table, locks.get(table) if table else None, statement, message, fix,
                              HazardSource.SQUAWK))
    return hazards
