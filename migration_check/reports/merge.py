"""`--merge-reports`: the JSON reports of the shards of one run (`--shard I/N`), merged into one.

The merged JSON keeps every field of the shards' reports: `checks`, `apps` and the run-wide
`hazards` concatenated in the order the reports are given, `ok` true only when every report's
is, `duration_s` the longest shard's (the wall time when the shards run side by side), the
counts (`processes`, `steps`) summed, anything else taken from the first report; `selection`
lists the shards merged. For the console summary, the JUnit file and the GitHub step summary it
is read back into a `RunResult` and handed to the same reporters as a run's, so they never
recompute a verdict.

Owns: `load_report`, `check_shards`, `merge_json`, `result_from_json` and `merge_reports`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..errors import UsageError, load_json_input
from ..log import Log
from ..results import (
    AppResult,
    CheckResult,
    Finding,
    Hazard,
    Impact,
    LockHold,
    MigrationResult,
    RunResult,
    Selection,
    TrafficStat,
)
from ..verdicts import (
    Blocking,
    CheckStatus,
    Compat,
    CompatDirection,
    Data,
    FindingKind,
    HazardSource,
    Observation,
    Retry,
    Rollback,
    Schema,
    StepOutcome,
)
from . import write_report_files
from .console import print_summary
from .json_report import REPORT_SCHEMA_VERSION

Report = dict[str, Any]
# Counts of a run, added up over the shards (Python processes started, Django commands run).
SUMMED = ("processes", "steps")
# The verdict fields of a migration, read back as members of their vocabulary.
MIGRATION_VERDICTS: dict[str, type[StrEnum]] = {
    "apply": StepOutcome, "rollback": Rollback, "reapply": StepOutcome, "schema": Schema, "data": Data,
    "compat": Compat, "compat_direction": CompatDirection, "rollback_alone": Rollback, "retry": Retry,
    "blocking": Blocking,
}


def load_report(path: Path) -> Report:
    """One shard's JSON report; a UsageError when it cannot be read or is not one."""
    report = load_json_input(path, "--merge-reports")
    if not isinstance(report, dict) or report.get("schema") != REPORT_SCHEMA_VERSION or "apps" not in report:
        raise UsageError(f"--merge-reports: {path} is not a test_migrations report (schema {REPORT_SCHEMA_VERSION})")
    return report


def shard_of(report: Report) -> tuple[int, int] | None:
    shard = (report.get("selection") or {}).get("shard")
    return (shard["index"], shard["count"]) if isinstance(shard, dict) else None


def check_shards(reports: Sequence[Report], paths: Sequence[Path]) -> None:
    """The reports are the shards 1..N of one run, each once, or reports of no shard; no app is
    in two of them. A shard whose job died before writing its report is missing here."""
    shards = [shard_of(report) for report in reports]
    if any(shards):
        if not all(shards):
            plain = [str(path) for path, shard in zip(paths, shards, strict=True) if shard is None]
            raise UsageError(f"--merge-reports: {', '.join(plain)} is not the report of a shard")
        counts = {shard[1] for shard in shards if shard}
        if len(counts) != 1:
            raise UsageError(f"--merge-reports: the reports come from different --shard counts: {sorted(counts)}")
        count = counts.pop()
        given = sorted(shard[0] for shard in shards if shard)
        missing = [index for index in range(1, count + 1) if index not in given]
        doubled = sorted({index for index in given if given.count(index) > 1})
        if missing or doubled:
            what = "; ".join([*(f"shard {i}/{count} is missing" for i in missing),
                              *(f"shard {i}/{count} is given twice" for i in doubled)])
            raise UsageError(f"--merge-reports: {what} (every shard's report is needed, once)")
    seen: dict[str, Path] = {}
    for path, report in zip(paths, reports, strict=True):
        for app in report["apps"]:
            if app["app"] in seen:
                raise UsageError(f"--merge-reports: app {app['app']} is in both {seen[app['app']]} and {path}")
            seen[app["app"]] = path


def merge_selection(reports: Sequence[Report]) -> dict[str, Any]:
    selections = [report.get("selection") or {} for report in reports]

    def union(key: str) -> list[str]:
        return list(dict.fromkeys(name for selection in selections for name in selection.get(key) or []))

    return {
        "since": next((s["since"] for s in selections if s.get("since")), None),
        "changed_migrations": union("changed_migrations"),
        "edited_migrations": union("edited_migrations"),
        "shard": None,
        "merged_shards": [s["shard"] for s in selections if s.get("shard")],
    }


def merge_value(key: str, values: list[Any]) -> Any:
    if key == "ok":
        return all(value is True for value in values)
    if key == "duration_s":
        return max(values)
    if key in ("checks", "apps", "hazards"):  # hazards: the run-wide ones, each naming its migrations
        return [item for value in values for item in value]
    if key == "skipped_apps":
        return list(dict.fromkeys(item for value in values for item in value))
    if key in SUMMED and all(isinstance(value, int) for value in values):
        return sum(values)
    return values[0]


def merge_json(reports: Sequence[Report]) -> Report:
    """One report from the shards' reports (see the module docstring)."""
    keys = list(dict.fromkeys(key for report in reports for key in report))
    merged = {key: merge_value(key, [report[key] for report in reports if key in report])
              for key in keys if key != "selection"}
    merged["ok"] = all(report.get("ok") is True for report in reports)
    merged["selection"] = merge_selection(reports)
    return merged


def from_fields(cls: type, values: dict[str, Any], /, **given: Any) -> Any:
    """An instance of dataclass `cls` from the report's values of the same names, as they are,
    and `given` (the fields whose JSON is objects of their own: see the round-trip test).
    Positional-only: a field may be called anything, `data` included (a migration's verdict)."""
    names = {f.name for f in dataclasses.fields(cls)} - set(given)
    return cls(**{key: value for key, value in values.items() if key in names}, **given)


def as_verdict(vocabulary: type[StrEnum], value: Any) -> Any:
    """`value` as a member of `vocabulary`; a word this version does not know (a newer version's
    report) stays as it is: it equals no member, and `ok` says whether that run failed."""
    try:
        return vocabulary(value)
    except ValueError:
        return value


def observed(value: Any) -> Any:
    """An observed field (rewrites, locks, statements): its list, or None when not observed."""
    return value if isinstance(value, list) else None


def hazard_from_json(data: dict[str, Any]) -> Hazard:
    return from_fields(Hazard, data, migrations=tuple(data.get("migrations") or ()),
                       source=as_verdict(HazardSource, data.get("source", HazardSource.OBSERVED)))


def migration_from_json(app: str, data: dict[str, Any]) -> MigrationResult:
    details = [Finding(as_verdict(FindingKind, d.get("kind", FindingKind.INFO)), d.get("message", ""),
                       {k: v for k, v in d.items() if k not in ("kind", "message", "rule")}, d.get("rule"))
               for d in data.get("details") or [] if isinstance(d, dict)]
    durations = {k: v for k, v in (data.get("duration_s") or {}).items() if isinstance(v, int | float)}
    objects: dict[str, Any] = {"app": app, "details": details, "durations": durations,
                               "lock_holds": [from_fields(LockHold, hold) for hold in data.get("lock_holds") or []]}
    objects |= {key: observed(data.get(key)) for key in ("rewrites", "locks", "statements")}
    objects["hazards"] = [hazard_from_json(h) for h in data["hazards"]] if isinstance(data.get("hazards"), list) \
        else None
    objects["traffic"] = [from_fields(TrafficStat, stat) for stat in data.get("traffic") or []]
    objects["impact"] = [from_fields(Impact, impact, measured=tuple((int(rows), float(held))
                                                                    for rows, held in impact["measured"]))
                         for impact in data.get("impact") or []]
    objects["rehearsal_problems"] = [str(problem) for problem in data.get("rehearsal_problems") or []]
    if "blocking" not in data and objects["rehearsal_problems"]:  # a report from before `blocking`: still failed
        objects["blocking"] = Blocking.EXCEEDS
    objects["data_fingerprints"] = {str(k): str(v) for k, v in (data.get("data_fingerprints") or {}).items()}
    objects |= {key: as_verdict(vocabulary, data[key]) for key, vocabulary in MIGRATION_VERDICTS.items()
                if data.get(key) is not None}
    return from_fields(MigrationResult, data, **objects)


def selection_from_json(data: dict[str, Any]) -> Selection:
    shard = data.get("shard")
    return Selection(since=data.get("since"), changed=list(data.get("changed_migrations") or []),
                     edited=list(data.get("edited_migrations") or []),
                     shard=(shard["index"], shard["count"]) if isinstance(shard, dict) else None,
                     shards=[(s["index"], s["count"]) for s in data.get("merged_shards") or []])


def result_from_json(report: Report, project_dir: Path | None) -> RunResult:
    """A report read back into the result the reporters take."""
    checks = [from_fields(CheckResult, check, status=as_verdict(CheckStatus, check.get("status")))
              for check in report.get("checks") or []]
    apps = [AppResult(app["app"], [migration_from_json(app["app"], m) for m in app.get("migrations") or []],
                      app.get("error")) for app in report["apps"]]
    database = report.get("database") or {}
    observation = report.get("observation") or {}
    return RunResult(checks=checks, apps=apps, duration_s=float(report.get("duration_s") or 0.0),
                     server_version=str(database.get("server_version", "?")),
                     ephemeral=bool(database.get("ephemeral")), processes=int(report.get("processes") or 0),
                     skipped_apps=list(report.get("skipped_apps") or []), project_dir=project_dir,
                     observation=as_verdict(Observation, observation.get("status", Observation.OFF)),
                     observation_note=observation.get("reason"),
                     run_hazards=[hazard_from_json(hazard) for hazard in report.get("hazards") or []],
                     squawk=observation.get("squawk"), volume=observation.get("volume"),
                     fail_on_hazards=bool(observation.get("fail_on_hazards")),
                     selection=selection_from_json(report.get("selection") or {}),
                     steps=int(report.get("steps") or 0), isolation=str(report.get("isolation") or "process"))


def merge_reports(paths: Sequence[Path], json_path: Path | None, junit_path: Path | None, project_dir: Path,
                  log: Log, environ: dict[str, str]) -> bool:
    """Print the merged summary and write the merged reports; True when the merged run passed."""
    reports = [load_report(path) for path in paths]
    check_shards(reports, paths)
    merged = merge_json(reports)
    result = result_from_json(merged, project_dir)
    print_summary(result, log)
    if not merged["ok"] and result.ok:  # a verdict of a newer version that this one cannot show
        failing = [str(path) for path, report in zip(paths, reports, strict=True) if report.get("ok") is not True]
        log.info(f"FAILED: {', '.join(failing)} say(s) the run failed; see those reports")
    merged["ok"] = merged["ok"] and result.ok
    write_report_files(result, json_path, junit_path, log, environ, payload=merged)
    return merged["ok"]
