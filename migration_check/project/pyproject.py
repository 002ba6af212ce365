"""Configuration in the project's pyproject.toml, `[tool.migration_check]`, beside manage.py.

Owns: the keys a project may set (`KEYS`: each the long option of the same name) and their
translation into the command-line tokens argparse already validates (`config_tokens`), so a
value in pyproject.toml is checked exactly like the option. Command-line options override it
(cli.apply_project_config). An unknown key or a value of the wrong kind is one line, exit 2.

Uses: errors; tomllib (standard library since Python 3.11).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from ..errors import UsageError

TABLE = "migration_check"

# key -> (option, kind): "value" (one value), "list" (repeated option), "flag" (true adds it),
# "negated" (false adds the option: `schema = false` is `--no-schema`).
KEYS: dict[str, tuple[str, str]] = {
    "apps": ("--app", "list"),
    "settings": ("--settings", "value"),
    "depth": ("--depth", "value"),
    "step-timeout": ("--step-timeout", "value"),
    "jobs": ("--jobs", "value"),
    "isolation": ("--isolation", "value"),
    "volume": ("--volume", "value"),
    "traffic": ("--traffic", "flag"),
    "traffic-sessions": ("--traffic-sessions", "value"),
    "long-query": ("--long-query", "value"),
    "table-sizes": ("--table-sizes", "value"),
    "volume-max": ("--volume-max", "value"),
    "max-blocking": ("--max-blocking", "value"),
    "verbosity": ("--verbosity", "value"),
    "report-json": ("--report-json", "value"),
    "junit-xml": ("--junit-xml", "value"),
    "allow-data-loss": ("--allow-data-loss", "list"),
    "allow-irreversible": ("--allow-irreversible", "list"),
    "allow-breaking": ("--allow-breaking", "list"),
    "allow-edited": ("--allow-edited", "list"),
    "fail-on-hazards": ("--fail-on-hazards", "flag"),
    "schema": ("--no-schema", "negated"),
    "data": ("--no-data", "negated"),
    "compat": ("--no-compat", "negated"),
    "locks": ("--no-locks", "negated"),
}


def read_table(pyproject: Path) -> dict[str, Any]:
    """`[tool.migration_check]` of a pyproject.toml ({} when the file or the table is absent)."""
    if not pyproject.is_file():
        return {}
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"{pyproject}: not valid TOML: {error}") from None
    table = data.get("tool", {}).get(TABLE, {})
    if not isinstance(table, dict):
        raise UsageError(f"{pyproject}: [tool.{TABLE}] must be a table")
    return table


def key_tokens(key: str, value: Any, where: str) -> list[str]:
    option, kind = KEYS[key]
    if kind in ("flag", "negated"):
        if not isinstance(value, bool):
            raise UsageError(f"{where}: {key} must be true or false, got {value!r}")
        return [option] if value == (kind == "flag") else []
    if kind == "list":
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise UsageError(f"{where}: {key} must be a list of strings, got {value!r}")
        return [token for item in value for token in (option, item)]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise UsageError(f"{where}: {key} must be a string or a number, got {value!r}")
    return [option, str(value)]


def config_tokens(table: dict[str, Any], pyproject: Path) -> dict[str, list[str]]:
    """key -> the option tokens it stands for (e.g. depth = 3 -> ["--depth", "3"])."""
    where = f"{pyproject} [tool.{TABLE}]"
    tokens = {}
    for raw_key, value in table.items():
        key = raw_key.replace("_", "-")
        if key not in KEYS:
            raise UsageError(f"{where}: unknown key {raw_key!r} (known: {', '.join(sorted(KEYS))})")
        tokens[key] = key_tokens(key, value, where)
    return tokens
