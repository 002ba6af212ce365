"""JUnit XML: one test case per check and per migration step (apply, rollback, reapply, schema,
data, compat, retry, and blocking with --max-blocking; classname `app.migration`), and one per
deploy hazard (passing, its text in
system-out; a failure with --fail-on-hazards). Whether a step's case fails, is skipped or passes
is read from the verdict table, never decided here."""

from __future__ import annotations

from xml.etree import ElementTree

from ..results import MigrationResult, RunResult
from ..verdict_table import (
    ACKNOWLEDGED,
    BLOCKED,
    FAILED,
    FINDING_KINDS,
    NOT_TESTED,
    Judgement,
    judge_migration,
    next_step,
    untested_reason,
)
from ..verdicts import CheckStatus


def case_texts(m: MigrationResult, judgement: Judgement) -> tuple[str | None, str | None, str | None]:
    """(failure, skipped, system-out) of one step's test case, from the verdict table: the
    error or the findings behind the verdict, and the next step."""
    kind = FINDING_KINDS.get(judgement.step)
    findings = "\n".join(f.message for f in m.details if f.kind == kind) if kind else ""
    if judgement.step == "blocking":  # the locks over --max-blocking, with their numbers
        findings = "\n".join(m.rehearsal_problems)
    text = "\n".join(part for part in (judgement.words, findings or m.error or "") if part)
    if judgement.outcome == FAILED:
        step = next_step(m, judgement)
        return text + (f"\nNext: {step}" if step else ""), None, None
    if judgement.outcome == BLOCKED:
        return None, f"blocked by {m.blocked_by}: its own rollback passed on a database that never applied it", None
    if judgement.outcome == NOT_TESTED:
        return None, untested_reason(m) or judgement.words, None
    if judgement.outcome == ACKNOWLEDGED:
        return None, None, f"acknowledged: {text}"
    return None, None, None


def junit_xml(result: RunResult) -> ElementTree.ElementTree:
    """One test case per check and per migration step (apply, rollback, reapply, schema, data, compat)."""
    suite = ElementTree.Element("testsuite", name="test_migrations", time=f"{result.duration_s:.2f}")
    cases = 0
    failures = 0
    skipped = 0

    def add(classname: str, name: str, seconds: float | None, failure: str | None, skip: str | None = None) -> None:
        nonlocal cases, failures, skipped
        case = ElementTree.SubElement(suite, "testcase", classname=classname, name=name,
                                      time=f"{seconds or 0:.2f}")
        cases += 1
        if failure:
            failures += 1
            ElementTree.SubElement(case, "failure", message=failure[:500]).text = failure
        elif skip:
            skipped += 1
            ElementTree.SubElement(case, "skipped", message=skip)

    if result.fault is not None:  # the run could not finish (exit 3): an error of the run, not of a migration
        add("run", "infrastructure", None, result.fault.line())
    for check in result.checks:
        add("checks", check.name, check.duration_s, check.detail if check.status == CheckStatus.FAILED else None,
            check.detail if check.status == CheckStatus.SKIPPED else None)
    for app in result.apps:
        if app.error:
            add(app.app, "app", None, app.error)
        for m in app.migrations:
            if m.not_reached:
                add(m.label, "not_reached", None, None, "not reached: the run could not finish")
                continue
            for judgement in judge_migration(m):
                failure, skip, note = case_texts(m, judgement)
                add(m.label, judgement.step, m.durations.get(judgement.step), failure, skip)
                if note:
                    ElementTree.SubElement(suite[-1], "system-out").text = note
    for owner, hazard in result.hazards():
        text = f"{hazard.message}\nstatement: {hazard.statement}\nfix: {hazard.fix}"
        add(owner.label if owner else "hazards", f"hazard {hazard.rule} {hazard.table or ''}".rstrip(), None,
            text if result.fail_on_hazards else None)
        if not result.fail_on_hazards:
            ElementTree.SubElement(suite[-1], "system-out").text = text
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    return ElementTree.ElementTree(suite)
