"""cross_squash_project really contains its case, shown without the tool (plain manage.py migrate
and SQL on databases of their own): `phones`' squash replaces the migrations of another app,
`devices`, which Django accepts, on both paths: a new database applies the squash, and one
migrated before `phones` existed goes on through devices' migrations and phones.0001_initial.
`solo`, the twin, squashes its own migrations only. test_cross_squash_project.py in end_to_end/
asserts what the tool says about them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .test_defect_corpus import FixtureDb, fixture_db

pytestmark = pytest.mark.slow

PROJECT = "cross_squash_project"


@pytest.fixture
def db(pg_admin) -> Iterator[FixtureDb]:
    yield from fixture_db(pg_admin, PROJECT, migrate=False)


def recorded(db: FixtureDb, app: str) -> list[str]:
    return [row[0] for row in db.rows("SELECT name FROM django_migrations WHERE app = %s ORDER BY name", (app,))]


def test_a_new_database_applies_the_squash_in_place_of_the_other_apps_migrations(db):
    plan = db.manage("showmigrations", "devices", "phones", "solo").stdout
    assert "devices\n (no migrations)" in plan, plan  # every devices migration is replaced
    assert "0001_squashed_0001_initial (4 squashed migrations)" in plan, plan
    db.migrate()
    # Django records a squash as the migrations it replaces, in both apps
    assert recorded(db, "devices") == ["0001_initial", "0002_device_number", "0003_delete_device"]
    assert "0001_initial" in recorded(db, "phones")
    db.rows("INSERT INTO devices_device (name) VALUES ('desk phone')")
    db.migrate("phones", "zero")  # the squash rolls back: its CreateModel drops the table
    assert db.value("SELECT to_regclass('devices_device')") is None
    db.migrate("phones")


def test_an_older_database_migrates_through_the_other_apps_migrations(db):
    db.manage("migrate", "--noinput", "--settings", f"{PROJECT}.settings_before")  # before phones existed
    assert recorded(db, "devices") == ["0001_initial", "0002_device_number", "0003_delete_device"]
    db.rows("INSERT INTO devices_device (name, number) VALUES ('desk phone', '+1555')")
    plan = db.manage("showmigrations", "phones").stdout
    assert "[ ] 0001_initial" in plan, plan  # the replaced path, not the squash
    db.migrate("phones")
    assert db.rows("SELECT name, number FROM devices_device") == [("desk phone", "+1555")]
    # phones.0001_initial ran (the squash's CreateModel would have met the table); once every
    # replaced migration is recorded, Django records the squash too
    assert recorded(db, "phones") == ["0001_initial", "0001_squashed_0001_initial"]


def test_the_twin_squash_replaces_its_own_migrations_only(db):
    plan = db.manage("showmigrations", "solo").stdout
    assert "0001_squashed_0002_record_value (2 squashed migrations)" in plan, plan
    db.migrate("solo")
    assert recorded(db, "solo") == ["0001_initial", "0001_squashed_0002_record_value", "0002_record_value"]
    db.migrate("solo", "zero")
