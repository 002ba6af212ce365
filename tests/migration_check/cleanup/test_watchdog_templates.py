"""A hard kill (SIGKILL) while the template is built or cloned leaves nothing.

The run works on a project of one app, `slow`, whose window of 4 migrations is tested by two
chains (--jobs 2), so it builds a template of the state both start from (`slow.0001`; small,
hence --always-clone) and clones it twice. Two moments, each seen on the server, not guessed from timing:

- during the template's build: 0001 sleeps in the server (`SLOW_BASE_SLEEP_S`), and the run is
  killed while that sleep runs in the template database;
- during a clone: a session of this test holds the template (named as the tool's own sessions
  are, so the tool does not end it before cloning), which makes `CREATE DATABASE ... TEMPLATE`
  wait for it; the run is killed while that statement waits.

Then, within a few seconds: no scratch database of the run's role (template, clone, head), no
session, and no process the run started.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from pathlib import Path

import psycopg2

from tests.migration_check.end_to_end.test_tiny_project import Account, child_env

from .test_watchdog import SETTLE_S, TOOL, assert_nothing_left_of, eventually, kill_when

MANAGE = '''\
import os, sys
if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slowproj.settings")
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
'''
SETTINGS = '''\
import dj_database_url
SECRET_KEY = "slowproj-not-secret-0123456789-0123456789-0123456789"
INSTALLED_APPS = ["slow"]
DATABASES = {"default": dj_database_url.config()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
'''
MODELS = '''\
from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=100)
''' + "".join(f"    f{n} = models.IntegerField(null=True)\n" for n in range(2, 6))
INITIAL = '''\
import os
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel("Item", [("id", models.BigAutoField(auto_created=True, primary_key=True,
                                                                  serialize=False, verbose_name="ID")),
                                        ("name", models.CharField(max_length=100))]),
        migrations.RunSQL(f"SELECT pg_sleep({float(os.environ.get('SLOW_BASE_SLEEP_S', '0'))})",
                          migrations.RunSQL.noop),
    ]
'''
ADD_FIELD = '''\
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("slow", "{previous}")]
    operations = [migrations.AddField("item", "f{n}", models.IntegerField(null=True))]
'''
SLEEP_S = 120


def build_slow_project(root: Path) -> Path:
    (root / "slowproj").mkdir(parents=True)
    (root / "manage.py").write_text(MANAGE)
    (root / "slowproj" / "__init__.py").write_text("")
    (root / "slowproj" / "settings.py").write_text(SETTINGS)
    migrations = root / "slow" / "migrations"
    migrations.mkdir(parents=True)
    (root / "slow" / "__init__.py").write_text("")
    (root / "slow" / "models.py").write_text(MODELS)
    (migrations / "__init__.py").write_text("")
    (migrations / "0001_initial.py").write_text(INITIAL)
    previous = "0001_initial"
    for n in range(2, 6):
        (migrations / f"000{n}_f{n}.py").write_text(ADD_FIELD.format(previous=previous, n=n))
        previous = f"000{n}_f{n}"
    return root / "manage.py"


def slow_argv(manage: Path, account: Account) -> list[str]:
    return [sys.executable, str(TOOL), "--manage", str(manage), "--settings", "slowproj.settings", "-v",
            "--depth", "4", "--jobs", "2", "--always-clone", "--database-url", account.url]


def templates_of(account: Account) -> list[str]:
    return [name for name in account.scratch_left() if name.endswith("_template")]


def active_in(account: Account, database_like: str, query_like: str) -> bool:
    return bool(account.admin.rows(
        "SELECT 1 FROM pg_stat_activity WHERE usename = %s AND state = 'active' AND coalesce(datname, '') LIKE %s "
        "AND query ILIKE %s", (account.role, database_like, query_like)))


def hold(account: Account, database: str):
    """A session on `database` as the run's role (as a leftover of the run itself would be: a
    superuser's session could not be ended by the role), named as the tool names its own."""
    return psycopg2.connect(account.admin.url_for(database, account.role, account.password),
                            application_name="test_migrations")


def assert_the_run_left_nothing(killed, account: Account) -> None:
    assert_nothing_left_of(killed)
    assert eventually(account.scratch_left) == [], killed.context()
    assert account.sessions(settle_s=SETTLE_S) == [], killed.context()
    assert account.sentinel_rows() and account.sentinel_tables() == ["sentinel"]
    assert "watchdog: the run ended without removing what it created" in killed.stderr, killed.context()


def test_sigkill_while_the_template_is_built_leaves_nothing(pg_admin, tmp_path):
    account = Account(pg_admin).create()
    manage = build_slow_project(tmp_path / "project")

    def building(process, output) -> bool:  # 0001's sleep runs in the template database
        return active_in(account, r"tm\_scratch\_%\_template", "%pg_sleep%")

    try:
        killed = kill_when(slow_argv(manage, account), child_env(SLOW_BASE_SLEEP_S=str(SLEEP_S)), building,
                           cwd=manage.parent)
        # (`building` saw the template's own sleep running; with --jobs 2 the template's progress
        # lines are held while the project checks' block is printed, and a SIGKILL loses them)
        assert_the_run_left_nothing(killed, account)
        assert re.search(r"removed .*scratch database tm_scratch_[0-9a-f]{8}_\d+_template", killed.stderr), (
            killed.context())
    finally:
        account.drop()


def test_sigkill_while_the_template_is_cloned_leaves_nothing(pg_admin, tmp_path):
    account = Account(pg_admin).create()
    manage = build_slow_project(tmp_path / "project")
    holder: list = []  # this test's session on the template, once it exists

    def cloning(process, output) -> bool:
        if not holder and templates_of(account):
            with contextlib.suppress(psycopg2.Error):  # too early: not connectable yet
                holder.append(hold(account, templates_of(account)[0]))
        return bool(holder) and active_in(account, "%", "CREATE DATABASE % TEMPLATE %")

    try:
        killed = kill_when(slow_argv(manage, account), child_env(), cloning, cwd=manage.parent)
        assert_the_run_left_nothing(killed, account)
    finally:
        for connection in holder:
            with contextlib.suppress(psycopg2.Error):
                connection.close()
        account.drop()


def test_a_template_held_by_another_session_is_not_cloned_and_the_run_still_passes(pg_admin, tmp_path):
    """PostgreSQL refuses to clone a database someone is connected to (after 5 s): each chain
    then builds its database from scratch, says so, and the verdicts are still given."""
    account = Account(pg_admin).create()
    manage = build_slow_project(tmp_path / "project")
    holder: list = []
    try:
        process = subprocess.Popen(slow_argv(manage, account), cwd=manage.parent, env=child_env(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not holder and time.monotonic() < deadline and process.poll() is None:
            if templates_of(account):
                with contextlib.suppress(psycopg2.Error):
                    holder.append(hold(account, templates_of(account)[0]))
            time.sleep(0.05)
        stdout, stderr = process.communicate(timeout=600)
        assert holder, "the template never appeared:\n" + stdout
        assert process.returncode == 0, stdout + stderr
        assert "cloning the template for slow failed" in stdout, stdout
        assert "is being accessed by other users" in stdout, stdout
    finally:
        for connection in holder:
            with contextlib.suppress(psycopg2.Error):
                connection.close()
        account.drop()
