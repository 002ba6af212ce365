"""inside_django/stages.py: a stage of a build is one `migrate` to all its targets, in this project's
own Django process on a real database, and it gives the database one `migrate` per target gives.

The stage below is what a chain of upstream's newest migrations starts from when a template
holds the contrib apps: upstream up to 0019, sessions, admin's newest; Django counts its
commands here by its own `pre_migrate` signal (sent once per `migrate`).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest
from django.db.migrations.graph import MigrationGraph

from migration_check.inside_django.stages import can_take_one_pass, stage_leaves
from tests.migration_check.conftest import REPO_ROOT

TARGETS = [["upstream", "0019_invoice_status_cancelled"], ["sessions", "0001_initial"],
           ["admin", "0003_logentry_add_action_flag_choices"]]

# What the stage ran (pre_migrate signals) and left behind, as JSON on the last line.
SHELL_CODE = """
import json, os
from django.core.management import call_command
from django.db import connection
from django.db.models.signals import pre_migrate
from migration_check.inside_django.stages import migrate_stage

commands = []
# `migrate` sends pre_migrate once to each app with models: upstream hears each command once
pre_migrate.connect(lambda sender, **kwargs: commands.append(sender.label) if sender.label == "upstream" else None,
                    weak=False)
call_command("migrate", "contenttypes", verbosity=0)  # what a template would already hold
commands.clear()
migrate_stage([tuple(t) for t in json.loads(os.environ["STAGE"])])
with connection.cursor() as cursor:
    cursor.execute("SELECT app, name FROM django_migrations ORDER BY 1, 2")
    applied = cursor.fetchall()
    cursor.execute("SELECT app_label, model FROM django_content_type ORDER BY 1, 2")
    types = cursor.fetchall()
    cursor.execute("SELECT codename FROM auth_permission ORDER BY 1")
    permissions = [row[0] for row in cursor.fetchall()]
    cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")
    tables = [row[0] for row in cursor.fetchall()]
print(json.dumps({"commands": len(commands), "applied": applied,
                  "types": types, "permissions": permissions, "tables": tables}))
"""


def build_stage(pg_admin, extra_env: dict[str, str]) -> dict:
    name = f"tm_e2e_stage_{secrets.token_hex(4)}"
    pg_admin.create_database(name)
    try:
        env = {key: value for key, value in os.environ.items() if not key.startswith("TM_")}
        env.update({"DJANGO_SETTINGS_MODULE": "hello_world.settings", "DATABASE_URL": pg_admin.url_for(name),
                    "PYTHONPATH": str(REPO_ROOT), "STAGE": json.dumps(TARGETS), **extra_env})
        done = subprocess.run([sys.executable, "manage.py", "shell", "-c", SHELL_CODE], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        pg_admin.drop_database(name)


@pytest.fixture(scope="module")
def builds(pg_admin) -> dict[str, dict]:
    return {"one_pass": build_stage(pg_admin, {}), "per_target": build_stage(pg_admin, {"TM_BUILD_PER_TARGET": "1"})}


def test_one_migrate_builds_the_stage(builds):
    assert builds["one_pass"]["commands"] == 1
    assert builds["per_target"]["commands"] == 3


def test_the_stage_reaches_exactly_its_targets(builds):
    applied = {tuple(row) for row in builds["one_pass"]["applied"]}
    assert ("upstream", "0019_invoice_status_cancelled") in applied
    assert ("upstream", "0020_alter_taxrate_rate") not in applied
    assert ("admin", "0003_logentry_add_action_flag_choices") in applied
    assert ("auth", "0001_initial") in applied  # admin.0001 needs auth's first migration, no more
    assert ("auth", "0012_alter_user_first_name_max_length") not in applied
    assert ("sessions", "0001_initial") in applied


def test_one_pass_and_one_command_per_target_give_the_same_database(builds):
    for key in ("applied", "types", "permissions", "tables"):
        assert builds["one_pass"][key] == builds["per_target"][key], key
    assert ["upstream", "invoice"] in builds["one_pass"]["types"]
    assert "add_invoice" in builds["one_pass"]["permissions"]


def graph_of(*edges: tuple[tuple[str, str], tuple[str, str]]) -> MigrationGraph:
    graph = MigrationGraph()
    for key in {key for edge in edges for key in edge}:
        graph.add_node(key, None)
    for child, parent in edges:
        graph.add_dependency(None, child, parent)
    return graph


def test_leaves_are_counted_per_app_as_django_counts_them():
    # shop.0002 needs blog.0001; shop.0002 is the newest of shop in the state, blog.0001 of blog
    graph = graph_of((("shop", "0002"), ("shop", "0001")), (("shop", "0002"), ("blog", "0001")),
                     (("blog", "0002"), ("blog", "0001")))
    state = {("shop", "0001"), ("shop", "0002"), ("blog", "0001")}
    assert stage_leaves(graph, state) == [("blog", "0001"), ("shop", "0002")]


def test_a_stage_that_stops_inside_a_branch_has_two_leaves_in_one_app():
    # shop.0002a and shop.0002b both follow shop.0001; the merge shop.0003 is not in the state
    graph = graph_of((("shop", "0002a"), ("shop", "0001")), (("shop", "0002b"), ("shop", "0001")),
                     (("shop", "0003"), ("shop", "0002a")), (("shop", "0003"), ("shop", "0002b")))
    assert stage_leaves(graph, {("shop", "0001"), ("shop", "0002a"), ("shop", "0002b")}) == [
        ("shop", "0002a"), ("shop", "0002b")]


class LoaderWithConflicts:
    """What can_take_one_pass asks of Django's loader: the project graph's real conflicts."""

    def __init__(self, conflicts: dict[str, list[str]]) -> None:
        self.conflicts = conflicts

    def detect_conflicts(self) -> dict[str, list[str]]:
        return self.conflicts


def test_two_leaves_in_one_app_or_a_real_conflict_fall_back_to_one_command_per_target():
    one_each = [("blog", "0001"), ("shop", "0002")]
    assert can_take_one_pass(LoaderWithConflicts({}), one_each)
    assert not can_take_one_pass(LoaderWithConflicts({}), [("shop", "0002a"), ("shop", "0002b")])
    assert not can_take_one_pass(LoaderWithConflicts({"shop": ["0003a", "0003b"]}), one_each)


def test_a_django_newer_than_the_supported_ones_takes_the_plain_path():
    one_each = [("blog", "0001"), ("shop", "0002")]
    assert can_take_one_pass(LoaderWithConflicts({}), one_each, (4, 2))
    assert can_take_one_pass(LoaderWithConflicts({}), one_each, (6, 1))
    assert not can_take_one_pass(LoaderWithConflicts({}), one_each, (6, 2))
    assert not can_take_one_pass(LoaderWithConflicts({}), one_each, (4, 1))
