"""Adoption as a new user does it: the built wheel installed in a fresh virtualenv beside a plain
`django-admin startproject` (settings reading DATABASE_URL) and one app, then `migration-check`
run there with no --manage and no --settings. Two runs cover the supported range: the oldest
Django (4.2 LTS) with psycopg 3 only (no psycopg2), and the newest Django the registry has for
this Python with psycopg2. One wheel per session; pip's cache keeps the installs cheap."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.report_schema import assert_report_valid

REPO_ROOT = Path(__file__).resolve().parents[3]
PIP = ["-m", "pip", "--disable-pip-version-check", "--quiet"]
SETTINGS_TAIL = '''
import dj_database_url

DATABASES = {"default": dj_database_url.config()}
INSTALLED_APPS += ["shop"]
SILENCED_SYSTEM_CHECKS = ["mail.E001"]  # Django 6.1's deploy check of the e-mail backend; CI settings
'''
MODELS = '''from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=100)
'''
MODELS_NEXT = MODELS + "    note = models.TextField(null=True, blank=True)\n"


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, f"{' '.join(argv)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, *PIP, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(out), str(REPO_ROOT)],
        REPO_ROOT)
    (found,) = out.glob("django_migration_check-*.whl")
    return found


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a new user's shell: none of this test run's Django or virtualenv."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "VIRTUAL_ENV", "PYTHONPATH")}
    return {**env, **extra}


def new_project(root: Path, wheel: Path, django: str, driver: str) -> tuple[Path, Path]:
    """A virtualenv with the wheel, Django and one driver; a startproject with app `shop` (two
    migrations). Returns (its bin folder, the project folder)."""
    venv = root / "venv"
    run([sys.executable, "-m", "venv", str(venv)], root)
    python = str(venv / "bin" / "python")
    run([python, *PIP, "install", str(wheel), django, driver, "dj-database-url"], root, clean_env())
    project = root / "project"
    project.mkdir()
    run([str(venv / "bin" / "django-admin"), "startproject", "mysite", "."], project, clean_env())
    run([python, "manage.py", "startapp", "shop"], project, clean_env())
    with open(project / "mysite" / "settings.py", "a", encoding="utf-8") as settings:
        settings.write(SETTINGS_TAIL)
    for models in (MODELS, MODELS_NEXT):
        (project / "shop" / "models.py").write_text(models)
        run([python, "manage.py", "makemigrations", "shop"], project, clean_env(DATABASE_URL="postgres://x@/x"))
    return venv / "bin", project


@pytest.mark.slow
@pytest.mark.parametrize(("django", "driver", "absent"), [
    ("Django>=4.2,<4.3", "psycopg[binary]", "psycopg2"),
    ("Django", "psycopg2-binary", "psycopg"),
], ids=["django4.2-psycopg3", "newest-django-psycopg2"])
def test_migration_check_in_a_fresh_startproject(wheel, pg_admin, tmp_path, django, driver, absent):
    bin_dir, project = new_project(tmp_path, wheel, django, driver)
    python = str(bin_dir / "python")
    missing = subprocess.run([python, "-c", f"import {absent}"], capture_output=True, text=True)
    assert missing.returncode != 0, f"{absent} is installed: the run would not prove the other driver"
    version = run([python, "-c", "import django; print(django.get_version())"], project).strip()

    token = secrets.token_hex(4)
    role, password, database = f"tm_adopt_{token}", secrets.token_hex(12), f"tm_adopt_{token}"
    pg_admin.create_role(role, password, False)
    pg_admin.create_database(database)
    try:
        # The step servers' warm states on this Django (4.2 and the newest: both are versions
        # warm_states.py knows), each checked against Django's own and logged.
        uses = tmp_path / "warm-states.log"
        done = subprocess.run([str(bin_dir / "migration-check"), "--report-json", "report.json"], cwd=project,
                              capture_output=True, text=True, timeout=600,
                              env=clean_env(DATABASE_URL=pg_admin.url_for(database, role, password),
                                            TM_WARM_STATES_CHECK="1", TM_WARM_STATES_LOG=str(uses)))
        leftovers = pg_admin.databases_owned_by(role)
    finally:
        pg_admin.drop_database(database)
        pg_admin.drop_role(role)
    context = f"Django {version}\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-3000:]}"
    assert done.returncode == 0, context
    assert leftovers == []
    report = json.loads((project / "report.json").read_text())
    assert_report_valid(report)
    assert [(c["name"], c["status"]) for c in report["checks"]] == [
        ("forward", "passed"), ("check_deploy", "passed"), ("missing_migrations", "passed"),
        ("sequences", "passed")], context
    (app,) = report["apps"]
    assert app["app"] == "shop"
    assert [m["name"] for m in app["migrations"]] == ["0002_item_note", "0001_initial"]
    for migration in app["migrations"]:
        assert (migration["apply"], migration["rollback"], migration["reapply"], migration["schema"],
                migration["data"]) == ("passed", "passed", "passed", "identical", "preserved"), context
    used = uses.read_text().split() if uses.exists() else []
    # The state a rollback leaves is taken on 5.1+ only (4.2 re-renders the one it had: warm_states.left_by).
    renders_left_afresh = tuple(int(part) for part in version.split(".")[:2]) >= (5, 1)
    assert {use: use in used for use in ("graph", "state", "left")} == {
        "graph": True, "state": True, "left": renders_left_afresh}, (used, context)
