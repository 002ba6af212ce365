"""JUnit XML: one test case per check and per migration step (rollback, reapply, schema, data,
compat), and one per deploy hazard (passing, its text in system-out; a failure with --fail-on-hazards).

Uses: results."""

from __future__ import annotations

from xml.etree import ElementTree

from ..results import RunResult


def junit_xml(result: RunResult) -> ElementTree.ElementTree:
    """One test case per check and per migration step (rollback, reapply, schema, data, compat)."""
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
        add("checks", check.name, check.duration_s, check.detail if check.status == "failed" else None,
            check.detail if check.status == "skipped" else None)
    for app in result.apps:
        if app.error:
            add(app.app, "app", None, app.error)
        for m in app.migrations:
            if m.not_reached:
                add(f"{app.app}.{m.name}", "not_reached", None, None, "not reached: the run could not finish")
                continue
            rollback_bad = m.rollback in ("failed", "not_run") or (m.rollback == "irreversible" and not m.acknowledged)
            add(f"{app.app}.{m.name}", "rollback", m.durations.get("rollback"),
                m.error if rollback_bad else None,
                m.error if m.rollback in ("blocked", "irreversible") and not rollback_bad else None)
            add(f"{app.app}.{m.name}", "reapply", m.durations.get("reapply"),
                m.error if m.reapply == "failed" else None, "not run" if m.reapply == "not_run" else None)
            schema_text = "\n".join(f.message for f in m.details if f.kind == "schema")
            add(f"{app.app}.{m.name}", "schema", None, schema_text if m.schema == "differs" else None,
                "not checked" if m.schema == "not_checked" else None)
            data_text = "\n".join(f.message for f in m.details if f.kind == "data_lost")
            add(f"{app.app}.{m.name}", "data", None, data_text if m.data == "lost" and not m.acknowledged else None,
                "not checked" if m.data == "not_checked" else None)
            compat_text = "\n".join(f.message for f in m.details if f.kind == "compat")
            add(f"{app.app}.{m.name}", "compat", None,
                compat_text if m.compat == "breaks_old_code" and not m.compat_acknowledged else None,
                "not checked" if m.compat == "not_checked" else None)
    for m, hazard in result.hazards():
        text = f"{hazard.message}\nstatement: {hazard.statement}\nfix: {hazard.fix}"
        add(m.label if m else "hazards", f"hazard {hazard.rule} {hazard.table or ''}".rstrip(), None,
            text if result.fail_on_hazards else None)
        if not result.fail_on_hazards:
            ElementTree.SubElement(suite[-1], "system-out").text = text
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    return ElementTree.ElementTree(suite)
