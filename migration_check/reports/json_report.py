"""The JSON report of CONTRACT.md (schema 1), plus the additions the README lists.

Uses: results."""

from __future__ import annotations

import dataclasses

from ..results import RunResult

REPORT_SCHEMA_VERSION = 1

def report_json(result: RunResult) -> dict[str, object]:
    """The JSON report of CONTRACT.md (schema 1), plus additions: line, acknowledged,
    processes, steps, isolation."""
    return {
        "schema": REPORT_SCHEMA_VERSION,
        "ok": result.ok,
        "duration_s": round(result.duration_s, 2),
        "database": {"vendor": "postgresql", "server_version": result.server_version,
                     "ephemeral": result.ephemeral},
        "checks": [dataclasses.asdict(check) for check in result.checks],
        "apps": [
            {
                "app": app.app,
                "error": app.error,
                "migrations": [
                    {
                        "name": m.name, "file": m.file, "line": m.line, "apply": m.apply,
                        "rollback": m.rollback, "reapply": m.reapply, "schema": m.schema, "data": m.data,
                        "acknowledged": m.acknowledged, "error": m.error,
                        "details": [finding.to_json() for finding in m.details],
                        "duration_s": {"rollback": m.durations.get("rollback"), "reapply": m.durations.get("reapply")},
                    }
                    for m in app.migrations
                ],
            }
            for app in result.apps
        ],
        "skipped_apps": result.skipped_apps,
        "processes": result.processes,
        "steps": result.steps,
        "isolation": result.isolation,
    }
