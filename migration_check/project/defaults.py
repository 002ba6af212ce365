"""Defaults found in the project, not assumed: which settings module a run uses, and whether it
exists, decided before any server is started.

Owns: `settings_from_manage` (the module manage.py sets with `os.environ.setdefault`, read from
its source, never run), `find_settings` (--settings, else $DJANGO_SETTINGS_MODULE, else
manage.py's) and `check_settings_exist`.

Uses: errors.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Mapping
from pathlib import Path

from ..errors import UsageError

SETTINGS_VARIABLE = "DJANGO_SETTINGS_MODULE"


def settings_from_manage(source: str) -> str | None:
    """The literal module of `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "x.settings")` in a
    manage.py's source (what `django-admin startproject` writes), or None."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "setdefault" and len(node.args) == 2):
            continue
        name, value = node.args
        if (isinstance(name, ast.Constant) and name.value == SETTINGS_VARIABLE
                and isinstance(value, ast.Constant) and isinstance(value.value, str)):
            return value.value
    return None


def find_settings(explicit: str | None, environ: Mapping[str, str], manage: Path) -> str:
    """--settings, else the environment's DJANGO_SETTINGS_MODULE, else the one manage.py sets."""
    if explicit:
        return explicit
    if environ.get(SETTINGS_VARIABLE):
        return environ[SETTINGS_VARIABLE]
    try:
        found = settings_from_manage(manage.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        found = None
    if found is None:
        raise UsageError(f"no settings module: {manage} does not set {SETTINGS_VARIABLE} and it is not in the "
                         "environment (pass --settings MODULE)")
    return found


def check_settings_exist(settings: str, project_dir: Path) -> None:
    """Refuse a settings module that is neither under the project folder (where manage.py puts
    itself on sys.path) or its parent, nor importable from this Python, before any server is
    started. Only files are looked at: nothing of the project is imported here."""
    parts = settings.split(".")
    if not all(part.isidentifier() for part in parts):
        raise UsageError(f"settings module {settings!r} is not a Python module name (pass --settings MODULE)")
    for folder in (project_dir, project_dir.parent):
        base = folder.joinpath(*parts)
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return
    try:
        installed = importlib.util.find_spec(parts[0]) is not None
    except Exception:  # a finder that refuses to answer (an import hook): let Django decide
        return
    if installed:
        return  # an installed package: its submodules are checked by Django when it starts
    raise UsageError(f"settings module {settings} not found in {project_dir} (pass --settings MODULE, "
                     f"or set {SETTINGS_VARIABLE})")
