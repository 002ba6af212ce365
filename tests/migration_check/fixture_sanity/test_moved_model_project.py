"""moved_model_project really contains its case, shown without the tool (plain manage.py on
databases of their own): the whole project migrates and kinds.0003 rolls back and re-applies, but
the state of kinds.0003's own dependencies does not render (holders.Holder points at a kinds.Kind
that kinds.0002 removed; holders.0002, which points it at moved.Kind, is not among them), and a
database migrated one app at a time in that order fails as django-oscar's customer.0008 does. The
twin (settings_twin: 0003 depends on holders.0002) renders. test_moved_model_project.py in
end_to_end/ asserts what the tool says about them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .test_defect_corpus import FixtureDb, fixture_db

pytestmark = pytest.mark.slow

PROJECT = "moved_model_project"
# What the tool's description of the window does for each migration (inside_django/prepare.py).
RENDER_DEPENDENCIES = (
    "from django.db.migrations.loader import MigrationLoader\n"
    "state = MigrationLoader(None).project_state(('kinds', '0003_note'), at_end=False)\n"
    "print(sorted(model._meta.label for model in state.apps.get_models()))\n"
)


@pytest.fixture
def db(pg_admin) -> Iterator[FixtureDb]:
    yield from fixture_db(pg_admin, PROJECT, migrate=False)


@pytest.fixture
def twin(pg_admin) -> Iterator[FixtureDb]:
    yield from fixture_db(pg_admin, PROJECT, migrate=False, settings=f"{PROJECT}.settings_twin")


def test_the_project_migrates_and_0003_round_trips(db):
    applied = db.migrate().stdout
    # Django's full plan points Holder.kind at moved.Kind before kinds.0002 removes kinds.Kind
    assert applied.index("holders.0002_kind_moved") < applied.index("kinds.0002_move_kind"), applied
    assert db.manage("makemigrations", "--check", "--dry-run").returncode == 0
    db.rows("INSERT INTO kinds_kind (name) VALUES ('a')")
    db.rows("INSERT INTO holders_holder (kind_id) SELECT id FROM kinds_kind")
    db.migrate("kinds", "0002_move_kind")
    assert db.value("SELECT to_regclass('kinds_note')") is None
    db.migrate("kinds", "0003_note")
    assert db.value("SELECT count(*) FROM holders_holder") == 1


def test_the_state_of_0003s_own_dependencies_does_not_render(db):
    done = db.manage("shell", "-c", RENDER_DEPENDENCIES)
    assert done.returncode != 0
    assert "ValueError" in done.stderr and "lazy reference to 'kinds.kind'" in done.stderr, done.stderr[-2000:]


def test_migrated_one_app_at_a_time_the_same_state_breaks_migrate(db):
    db.migrate("kinds", "0002_move_kind")  # with moved.0001, which it depends on
    error = db.migrate_fails("holders", "0001_initial")
    assert "ValueError: Related model 'kinds.kind' cannot be resolved" in error, error[-2000:]


def test_the_twins_state_renders(twin):
    done = twin.manage("shell", "-c", RENDER_DEPENDENCIES)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "['holders.Holder', 'moved.Kind']" in done.stdout
    twin.migrate()
    twin.migrate("kinds", "0002_move_kind")
    twin.migrate("kinds")
