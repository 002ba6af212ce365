"""The JSON report of CONTRACT.md (schema 1), plus the additions the README lists."""

from __future__ import annotations

import dataclasses

from ..results import MigrationResult, RunResult, Selection
from ..verdicts import NOT_CHECKED

REPORT_SCHEMA_VERSION = 1


def observed_fields(m: MigrationResult) -> dict[str, object]:
    """CONTRACT.md Additions: rewrites, locks, statements, hazards ("not_checked" when not
    observed), lock_holds (how long each write-blocking lock was held), the deploy rehearsal's
    traffic, impact, blocking (the verdict against --max-blocking) and rehearsal_problems, and
    the data proof's fingerprint digests."""
    hazards = [h.to_json() for h in m.hazards] if m.hazards is not None else None
    observed = {"rewrites": m.rewrites, "locks": m.locks, "statements": m.statements, "hazards": hazards}
    return {**{key: NOT_CHECKED if value is None else value for key, value in observed.items()},
            "lock_holds": [hold.to_json() for hold in m.lock_holds],
            "traffic": [stat.to_json() for stat in m.traffic], "impact": [impact.to_json() for impact in m.impact],
            "blocking": m.blocking, "rehearsal_problems": list(m.rehearsal_problems),
            "data_fingerprints": dict(m.data_fingerprints)}


def report_json(result: RunResult) -> dict[str, object]:
    """The JSON report of CONTRACT.md (schema 1), plus additions: line, acknowledged,
    processes, steps, isolation, compat, blocked_by and rollback_alone."""
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
                        "rollback": m.rollback, "blocked_by": m.blocked_by, "rollback_alone": m.own_rollback,
                        "reapply": m.reapply, "schema": m.schema, "data": m.data,
                        "acknowledged": m.acknowledged, "error": m.error,
                        "compat": m.compat, "compat_direction": m.compat_direction,
                        "compat_acknowledged": m.compat_acknowledged,
                        "retry": m.retry, "retry_acknowledged": m.retry_acknowledged,
                        "details": [finding.to_json() for finding in m.details],
                        "duration_s": {"rollback": m.durations.get("rollback"), "reapply": m.durations.get("reapply")},
                        **observed_fields(m),
                        "not_reached": m.not_reached,
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
        "observation": {"status": result.observation, "reason": result.observation_note, "squawk": result.squawk,
                        "volume": result.volume, "fail_on_hazards": result.fail_on_hazards},
        "hazards": [hazard.to_json() for hazard in result.run_hazards],
        "selection": selection_json(result.selection),
        "fault": result.fault.to_json() if result.fault is not None else None,
    }


def selection_json(selection: Selection) -> dict[str, object]:
    """What --since and --shard chose (README, "The JSON report"): null and [] when not used."""
    return {
        "since": selection.since,
        "changed_migrations": selection.changed,
        "edited_migrations": selection.edited,
        "shard": {"index": selection.shard[0], "count": selection.shard[1]} if selection.shard else None,
        "merged_shards": [{"index": index, "count": count} for index, count in selection.shards],
    }
