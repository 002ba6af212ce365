"""A clone of the template is the database building gives, row for row, on real PostgreSQL 15.

For a chain of the upstream app and one of cross_app_project (beta's newest migration needs
alpha's), the state before the chain's migrations is reached twice on one server: as a clone of
the deepest template on its way down the tree `--always-clone` builds (upstream: the root, then
a half's template cloned from it, then a quarter's) migrated through the rest, and from an empty
database through the same stages (`--no-clone`). Then both are compared: the schema snapshot,
the fingerprint of every row of every table (content types and permissions written by
`post_migrate`, rows of data migrations, and django_migrations in the order applied), the window
described the same, and the pre-release rows the chain seeds next (same round token)
fingerprinted again.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from migration_check.chain.scratch import ScratchDatabase
from migration_check.chain.templates import Builds, path_to, state_of, template_tree
from migration_check.log import Log
from migration_check.postgres.address import ServerAddress
from migration_check.postgres.server import Server
from migration_check.processes.steps import StepRunner
from migration_check.project.discovery import dependents_closure, forward_targets
from migration_check.proofs.data.seeding import PRE_RELEASE_PROFILES
from migration_check.run import discover

REPO_ROOT = Path(__file__).resolve().parents[3]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
RECORDED = "SELECT id, app, name FROM django_migrations ORDER BY id"  # in the order applied, not when

# (manage.py, settings, app, the window's newest N, where the chain starts in it, tables that
# must hold rows: what the comparison is not vacuous about)
CASES = {
    "upstream": (REPO_ROOT / "manage.py", "hello_world.settings", "upstream", 5, 2,
                 ("django_content_type", "auth_permission")),
    "cross_app": (FIXTURES / "cross_app_project" / "manage.py", "cross_app_project.settings", "beta", 1, 0, ()),
}

# How deep the chain's path goes down the tree --always-clone builds (counted by hand: upstream's
# window and the newest migration of each of its 6 contrib apps, 7 windows: halves of 4 and 3,
# the chain's window first, then of 2 and 2, then single windows: no template for one chain;
# cross_app: beta's window and alpha's newest, 2 windows: single-window halves).
DEPTH = {"upstream": 3, "cross_app": 1}


@pytest.fixture
def server(pg_server_url):
    server = Server(ServerAddress.from_url(pg_server_url), ephemeral=False)
    yield server
    server.drop_all_scratch()
    server.close()


@pytest.fixture
def runners():
    """The step runners a test makes, each killed at the end (their step servers, and the
    servers' output folder: a runner left alive left an empty /tmp/tm-steps-* per case)."""
    made: list[StepRunner] = []
    yield made
    for runner in made:
        runner.kill_all()


def built_both_ways(server: Server, case: str, runners: list[StepRunner]):
    manage, settings, app, depth, start, _ = CASES[case]
    runner = StepRunner(manage, settings, 300.0, Log(0, io.StringIO()), isolation="fork")
    runners.append(runner)
    project, _, head_url = discover(runner, server)
    runner.release(head_url)
    window = project.migrations_of(app)[-depth:]
    # every app's newest migration is in a window, as in a run of the project's apps
    windows = [window, *([m] for other in project.apps if other != app and project.migrations_of(other)
                         for m in project.migrations_of(other)[-1:])]
    tested = window[start:]
    excluded = dependents_closure([m.key for m in tested], project.dependencies())
    targets = forward_targets(project.plan, {m.key for m in project.plan} - excluded)
    log = Log(0, io.StringIO())
    tree = template_tree(project, windows, [1] * len(windows), "always")  # --always-clone's, one chain a window
    cloning = Builds(server, runner, project, log)
    cloning.plan_tree(tree)
    cloning.build_template(jobs=2)
    path = path_to(tree, state_of(project, targets))
    assert len(path) == DEPTH[case], path  # the root, then the templates of the halves it is in
    assert set(cloning.templates) == set(range(len(tree))), "a template was not built"
    assert cloning.route(targets).template == cloning.templates[path[-1]]  # the deepest one is cloned
    plain = Builds(server, runner, project, log)  # no template built: --no-clone
    plain.plan_tree(tree)
    databases = []
    for builds in (cloning, plain):
        database = ScratchDatabase(server, runner, project, case, builds=builds)
        databases.append(database)
        step, described = database.build(app, targets, [m.name for m in tested])
        assert described is not None, step.error_summary()
        databases[-1].described = described
    return databases, tested


def rows(database: ScratchDatabase, sql: str) -> list[tuple]:
    with database.connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_clone_is_the_database_building_gives(server, case, runners):
    (clone, built), tested = built_both_ways(server, case, runners)
    try:
        assert clone.schema() == built.schema()
        clone_rows, built_rows = clone.fingerprint({}), built.fingerprint({})
        # not comparing two empty databases: post_migrate and the migrations wrote rows
        for table in CASES[case][-1]:
            assert clone_rows[table].rows, f"{table} is empty"
        assert clone_rows == built_rows
        assert rows(clone, RECORDED) == rows(built, RECORDED)
        assert len(rows(clone, RECORDED)) > len(tested), "no migration recorded?"
        assert clone.described == built.described
        tables = sorted(clone.described[tested[0].name]["tables_before"])
        assert tables, "nothing to seed"
        for database in (clone, built):
            database.seed(tables, PRE_RELEASE_PROFILES, round_token=7)
        seeded = clone.fingerprint({})
        assert seeded != clone_rows, "the seeding wrote nothing"
        assert seeded == built.fingerprint({})
    finally:
        for database in (clone, built):
            database.close()
