"""inside_django/warm_states.py: the states a step server renders for its children are the ones
Django computes, they are used where a chain needs them, and nothing goes wrong when they cannot
be built.

The steps run in this project's own Django process on a real database, as a chain runs them:
the server's part (`prepare`) before each `migrate`, then the child's (`in_child`), with each
state handed out also checked against Django's own (TM_WARM_STATES_CHECK=1: a difference fails
the step). After each step the test compares, with Django's own equality and the models each
renders, the state the server keeps for the database's applied migrations (walked with the lazy
`field_is_referenced`) with the one Django's executor computes for them with Django's own.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from migration_check.inside_django.warm_states import (
    KNOWN_SOURCES,
    lazy_field_is_referenced,
    leaves_the_applied_state,
    unknown_methods,
)
from tests.migration_check.conftest import FIXTURES, REPO_ROOT

# A chain on upstream: everything from an empty database, its newest three rolled back, applied
# again, rolled back again (the server now holds the state that rollback leaves), then contrib's
# sessions to zero and back.
STEPS = [[], ["upstream", "0021"], ["upstream"], ["upstream", "0021"], ["upstream"], ["sessions", "zero"], []]

SHELL_CODE = """
import json, os
from django.core.management import call_command
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations import state as django_state
from django.db.migrations.recorder import MigrationRecorder
from migration_check.inside_django.warm_states import WarmStates

def labels(state):
    return sorted(model._meta.label_lower for model in state.apps.get_models(include_auto_created=True))

from django.db.backends.signals import connection_created

states, said = WarmStates.install(os.environ, freeze=False)
created, server_connected = [], []
connection_created.connect(lambda **kwargs: created.append(1), weak=False)
uses, same = [], []
for args in json.loads(os.environ["STEPS"]):
    states.in_child = False
    connections.close_all()
    opened = len(created)
    states.prepare(["migrate", *args])
    server_connected.append(len(created) > opened or connection.connection is not None)
    states.in_child = True  # as in a freshly forked child: nothing handed out yet
    for warm in states.kept.values():
        warm.handed = False
    before = dict(states.used)
    call_command("migrate", *args, verbosity=0)
    uses.append({use: states.used[use] - before[use] for use in states.used})
    states.in_child = False  # Django's own path from here, with Django's own field_is_referenced
    applied = frozenset(MigrationRecorder(connection).applied_migrations())
    kept = states.kept.get(applied)
    lazy, django_state.field_is_referenced = django_state.field_is_referenced, states.original_field_is_referenced
    own = MigrationExecutor(connection)._create_project_state(with_applied_migrations=True)
    django_state.field_is_referenced = lazy
    same.append(None if kept is None else kept.state == own and labels(kept.state) == labels(own))
connections.close_all()
print(json.dumps({"said": said, "uses": uses, "same": same, "built": states.built,
                  "server_connected": server_connected}))
"""


# branch_project: branchy.0002_alpha and 0002_beta both follow 0001, 0003_merge joins them. The
# rollback to 0001 unapplies both branches; the second time, the server holds the state of what it
# leaves applied, but Django's state keeps the models of the branch that comes first in the full
# plan (it starts from the state before the plan's last migration): not to be handed out.
BRANCH_STEPS = [[], ["branchy", "0001_initial"], ["branchy"], ["branchy", "0001_initial"]]
BRANCH_MANAGE = FIXTURES / "branch_project" / "manage.py"


def in_django(env: dict[str, str], code: str = SHELL_CODE, manage: Path = REPO_ROOT / "manage.py",
              settings: str = "hello_world.settings") -> subprocess.CompletedProcess[str]:
    child_env = {key: value for key, value in os.environ.items() if not key.startswith("TM_")}
    child_env.update({"DJANGO_SETTINGS_MODULE": settings, "PYTHONPATH": str(REPO_ROOT), **env})
    return subprocess.run([sys.executable, str(manage), "shell", "-c", code], cwd=REPO_ROOT, env=child_env,
                          capture_output=True, text=True, timeout=300)


def run_chain(pg_admin, steps: list[list[str]], **where: Any) -> dict:
    name = f"tm_e2e_warm_{secrets.token_hex(4)}"
    pg_admin.create_database(name)
    try:
        done = in_django({"DATABASE_URL": pg_admin.url_for(name), "STEPS": json.dumps(steps),
                          "TM_WARM_STATES_CHECK": "1"}, **where)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        pg_admin.drop_database(name)


@pytest.fixture(scope="module")
def chain(pg_admin) -> dict:
    return run_chain(pg_admin, STEPS)


def test_a_rollback_of_two_branches_and_their_merge_takes_the_state_django_leaves(pg_admin):
    # Django unapplies 0003_merge, 0002_alpha, 0002_beta and starts from the state before
    # 0002_beta, which its full plan puts first of the three: what is left applied. The second
    # time, the server holds it, and the child (checking it against Django's own) takes it.
    branches = run_chain(pg_admin, BRANCH_STEPS, manage=BRANCH_MANAGE, settings="branch_project.settings")
    assert [uses["left"] for uses in branches["uses"]] == [0, 0, 0, 1], branches
    assert branches["same"] == [None, None, True, True], branches


class Migration:
    """What leaves_the_applied_state reads of a Django migration."""

    def __init__(self, name: str, replaces: tuple = ()) -> None:
        self.app_label, self.name, self.replaces = "shop", name, list(replaces)


BASE, ALPHA, BETA, MERGE = (Migration(name) for name in ("0001", "0002_alpha", "0002_beta", "0003_merge"))
FULL_PLAN = [(BASE, False), (BETA, False), (ALPHA, False), (MERGE, False)]


@pytest.mark.parametrize(("plan", "expected"), [
    ([MERGE, ALPHA, BETA], True),  # the last one (beta) comes first in the full plan
    ([MERGE, BETA, ALPHA], False),  # beta comes before alpha: Django's state keeps beta's models
    ([ALPHA], True),
    ([], False),
    ([Migration("0002_squashed", replaces=[("shop", "0002_alpha")])], False),  # it unrecords what it replaces
    ([Migration("0009_elsewhere")], False),  # not in the full plan
])
def test_which_rollbacks_leave_the_state_of_what_stays_applied(plan, expected):
    assert leaves_the_applied_state([(migration, True) for migration in plan], FULL_PLAN) is expected


def test_the_installed_django_is_one_the_patches_were_checked_against():
    assert unknown_methods() == []


def test_a_method_whose_source_is_not_known_is_named():
    known = {**KNOWN_SOURCES, "MigrationExecutor._migrate_all_backwards": frozenset({"0" * 64})}
    assert unknown_methods(known) == ["MigrationExecutor._migrate_all_backwards"]


class Rendered:
    """A state whose models are rendered (ProjectState caches them as `apps` in its __dict__)."""

    def __init__(self) -> None:
        self.apps = object()


class NotRendered:
    pass


def test_field_is_referenced_searches_only_for_a_rendered_state():
    searched = []

    def original(state, model_tuple, field_tuple):
        searched.append(model_tuple)
        return False

    lazy = lazy_field_is_referenced(original)
    assert lazy(NotRendered(), ("shop", "item"), ("note", None)) is True
    assert searched == []
    assert lazy(Rendered(), ("shop", "item"), ("note", None)) is False
    assert searched == [("shop", "item")]


def test_the_server_reads_without_djangos_connection(chain):
    # Its connection_created receivers (contrib.postgres caches type ids per process) and a pool
    # (threads) must not run in the server, whose memory every child starts from.
    assert chain["server_connected"] == [False] * len(STEPS), chain


def test_every_step_ran_checked(chain):
    assert chain["said"] == "on, checked against Django's own"


def test_each_kept_state_is_the_one_django_computes(chain):
    # None: the set a step left is not one the server has built yet (everything, after the first
    # step; the first rollback's; the one without sessions). It builds it before the next step.
    assert chain["same"] == [None, None, True, True, True, None, True], chain


def test_the_children_take_the_graph_and_the_state_before_each_step(chain):
    assert [uses["graph"] >= 1 and uses["state"] >= 1 for uses in chain["uses"]] == [True] * len(STEPS), chain


def test_a_rollback_takes_the_state_it_leaves_once_the_server_has_built_it(chain):
    # The first rollback to 0021 leaves a set the server never saw; the second leaves the one the
    # re-apply started from.
    assert [uses["left"] for uses in chain["uses"]] == [0, 0, 0, 1, 0, 0, 0], chain


def test_each_applied_set_is_built_once(chain):
    # empty, everything, up to 0021, without sessions: seven steps start from these four.
    assert chain["built"] == 4, chain


SKIPPING_CODE = """
import os
from migration_check.inside_django.warm_states import WarmStates
states, said = WarmStates.install(os.environ, freeze=False)
print(said)
if states is not None:
    states.prepare(["showmigrations"])  # not a migrate: nothing read
    print(len(states.kept))
    states.prepare(["migrate"])  # the database is not there: nothing built, no error
    print(len(states.kept))
"""


def test_an_unreachable_database_or_another_command_builds_nothing_and_raises_nothing():
    done = in_django({"DATABASE_URL": "postgres://nobody@127.0.0.1:9/never_there"}, SKIPPING_CODE)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-3:] == ["on", "0", "0"]


def test_switched_off_nothing_is_patched():
    code = SKIPPING_CODE + ("\nfrom django.db.migrations.loader import MigrationLoader"
                            "\nprint(MigrationLoader.build_graph.__module__)")
    done = in_django({"DATABASE_URL": "postgres://nobody@127.0.0.1:9/never_there", "TM_NO_WARM_STATES": "1"}, code)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-2:] == ["skipped: TM_NO_WARM_STATES is set",
                                                     "django.db.migrations.loader"]
