"""The one-file build: `make dist` makes dist/test_migrations.pyz, and that file alone tests
another project end to end, importing nothing but the standard library, Django and psycopg2."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.migration_check.conftest import FIXTURES, REPO_ROOT, assert_cleaned_up

pytestmark = pytest.mark.slow

# Runs in the tool's process only (the variable is removed before any child starts): every
# import of a top-level module that is neither the standard library nor Django, psycopg2 or
# their own dependencies fails, as it would where nothing else is installed. Imports the
# standard library itself attempts and survives (Python 3.11's copy.py tries Jython's
# `org.python.core`) fail too but are not the tool's, so they are not logged.
BLOCKER = '''\
import os
import sys
import sysconfig

if os.environ.pop("TM_ONLY_DJANGO_AND_PSYCOPG2", None):
    ALLOWED = {"django", "psycopg2", "asgiref", "sqlparse", "migration_check"}
    STDLIB = os.path.realpath(sysconfig.get_paths()["stdlib"]) + os.sep

    def importer_is_stdlib():
        frame = sys._getframe(2)
        while frame and frame.f_code.co_filename.startswith("<frozen importlib"):
            frame = frame.f_back
        filename = os.path.realpath(frame.f_code.co_filename) if frame else ""
        return filename.startswith(STDLIB) and "site-packages" not in filename

    class OnlyDjangoAndPsycopg2:
        def find_spec(self, name, path=None, target=None):
            top = name.partition(".")[0]
            if top in sys.stdlib_module_names or top in ALLOWED or top.startswith("_"):
                return None
            if importer_is_stdlib():
                raise ModuleNotFoundError(f"not installed in this test: {name}")
            with open(os.environ["TM_BLOCKED_LOG"], "a") as log:
                log.write(name + "\\n")
            raise ModuleNotFoundError(f"not installed in this test: {name}")

    sys.meta_path.insert(0, OnlyDjangoAndPsycopg2())
    with open(os.environ["TM_BLOCKED_LOG"], "a") as log:
        log.write("blocker active\\n")
'''


@pytest.fixture(scope="module")
def pyz(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("dist") / "test_migrations.pyz"
    done = subprocess.run([sys.executable, "scripts/build_pyz.py", "--output", str(target)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return target


def test_the_archive_holds_the_package_and_a_main(pyz):
    names = zipfile.ZipFile(pyz).namelist()
    assert "__main__.py" in names
    assert "migration_check/cli.py" in names and "migration_check/inside_django/probe.py" in names
    assert not [n for n in names if "__pycache__" in n or not n.startswith(("migration_check/", "__main__"))]


def test_make_dist_builds_it(tmp_path):
    """`make dist` writes the wheel and dist/test_migrations.pyz (here in a copy, with this
    test's virtualenv, which has the pinned build backend)."""
    for name in ("Makefile", "scripts", "migration_check", "pyproject.toml", "README.md", "requirements.txt",
                 "requirements-dev.txt"):
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    done = subprocess.run(["make", "dist", f"VENV={sys.prefix}"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert zipfile.is_zipfile(tmp_path / "dist" / "test_migrations.pyz")
    wheel = zipfile.ZipFile(tmp_path / "dist" / "django_migration_check-0.1.0-py3-none-any.whl").namelist()
    assert "migration_check/cli.py" in wheel
    assert not [name for name in wheel if not name.startswith(("migration_check/", "django_migration_check-"))]


@pytest.fixture(scope="module")
def another_project(tmp_path_factory) -> Path:
    """cross_app_project copied out of this repository, with the files its manage.py needs."""
    root = tmp_path_factory.mktemp("elsewhere")
    shutil.copytree(FIXTURES / "cross_app_project", root / "cross_app_project",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("fixture_manage.py", "fixture_settings_base.py"):
        shutil.copy(FIXTURES / name, root / name)
    blocker = root / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCKER)
    return root


@pytest.fixture(scope="module")
def run(run_tool, pyz, another_project):
    log = another_project / "blocked.log"
    run = run_tool("cross_app_project", manage=another_project / "cross_app_project" / "manage.py",
                   command=[sys.executable, str(pyz)], cwd=another_project,
                   env={"PYTHONPATH": str(another_project / "blocker"), "TM_ONLY_DJANGO_AND_PSYCOPG2": "1",
                        "TM_BLOCKED_LOG": str(log)})
    run.blocked = log.read_text().splitlines() if log.exists() else []
    return run


def test_it_tests_another_project_end_to_end(run):
    assert run.returncode == 0, run.context()
    report = run.require_report()
    assert [(a["app"], [m["rollback"] for m in a["migrations"]]) for a in report["apps"]] == [
        ("alpha", ["passed", "passed", "passed"]), ("beta", ["passed", "passed"])]
    assert all(c["status"] == "passed" for c in report["checks"])


def test_it_needed_nothing_but_django_and_psycopg2(run):
    assert run.blocked[:1] == ["blocker active"], "the import blocker did not run in the tool's process"
    assert run.blocked[1:] == [], f"the tool imported {run.blocked[1:]}"


def test_it_left_nothing_behind(run):
    assert_cleaned_up(run)
