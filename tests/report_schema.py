"""The report's JSON Schema (docs/report.schema.json), for every test that reads a report."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jsonschema

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "report.schema.json"


@functools.cache
def report_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_errors(report: dict) -> list[str]:
    """Each way the report breaks the schema, as `path: message`."""
    return [f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
            for error in report_validator().iter_errors(report)]


def assert_report_valid(report: dict) -> None:
    errors = schema_errors(report)
    assert not errors, "the report breaks docs/report.schema.json:\n" + "\n".join(errors[:20])
