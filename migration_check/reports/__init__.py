"""Reports of a run, each read from the same `RunResult` (reporters never recompute a verdict).

- `console`: the summary table and the list of problems, on stdout;
- `json_report`: `--report-json`, the machine-readable report of CONTRACT.md;
- `junit`: `--junit-xml`;
- `github`: annotations and the step summary, on GitHub Actions;
- `problems`: what fails the run, most important first (shared by console and github);
- `merge`: `--merge-reports`, the shards' JSON reports read back and merged into one result.

Reports never touch the runner or a database.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..config import Config
from ..log import Log
from ..results import RunResult
from .console import print_summary
from .github import github_annotations, markdown_summary
from .json_report import report_json
from .junit import junit_xml

__all__ = ["github_annotations", "junit_xml", "markdown_summary", "print_summary", "report_json", "write_report_files",
           "write_reports"]

STEP_SUMMARY_LIMIT = 1024 * 1024 - 1  # GitHub caps a step summary at 1 MiB


def write_reports(result: RunResult, config: Config, log: Log, environ: dict[str, str]) -> None:
    """--report-json, --junit-xml, and on GitHub Actions the annotations and the step summary."""
    write_report_files(result, config.report_json, config.junit_xml, log, environ)


def write_report_files(result: RunResult, json_path: Path | None, junit_path: Path | None, log: Log,
                       environ: dict[str, str], payload: dict[str, object] | None = None) -> None:
    """The reports of `result`; `payload` is the JSON to write instead of `report_json(result)`
    (a merged report keeps every field of the shards' reports)."""
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(payload or report_json(result), indent=2) + "\n", encoding="utf-8")
    if junit_path:
        junit_path.parent.mkdir(parents=True, exist_ok=True)
        junit_xml(result).write(junit_path, encoding="utf-8", xml_declaration=True)
    if environ.get("GITHUB_ACTIONS") == "true":
        for annotation in github_annotations(result, root=Path(environ.get("GITHUB_WORKSPACE") or os.getcwd())):
            print(log.mask(annotation), flush=True)
        summary_path = environ.get("GITHUB_STEP_SUMMARY")
        if summary_path:
            with open(summary_path, "a", encoding="utf-8") as summary:
                summary.write(log.mask(markdown_summary(result))[:STEP_SUMMARY_LIMIT])
