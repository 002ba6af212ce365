"""template_fault_project really contains its case, shown without the tool (plain manage.py
migrate on databases of their own): `gamma.0002` applies on a database of any name but one
ending in "_template" (the tool's templates are named `tm_scratch_<run>_<n>_template`), where
it fails with its own message and leaves gamma at 0001. end_to_end/test_clone_verdicts.py
asserts what the tool makes of it: the one template whose build applies it is left out, and its
chains clone the root template instead.
"""

from __future__ import annotations

import pytest

from .test_defect_corpus import FixtureDb

pytestmark = pytest.mark.slow

PROJECT = "template_fault_project"
APPLIED_GAMMA = "SELECT name FROM django_migrations WHERE app = 'gamma' ORDER BY name"


@pytest.mark.parametrize(("suffix", "fails"), [("", False), ("_template", True), ("_template_copy", False)])
def test_gamma_0002_fails_only_in_a_database_named_like_a_template(pg_admin, suffix, fails):
    db = FixtureDb(pg_admin, PROJECT, suffix=suffix)
    try:
        db.migrate("gamma", "0001")
        if fails:
            assert f"gamma.0002 refuses to run in {db.name}" in db.migrate_fails("gamma")
            assert [name for (name,) in db.rows(APPLIED_GAMMA)] == ["0001_initial"]
            assert db.value("SELECT count(*) FROM information_schema.columns WHERE table_name = 'gamma_entry' "
                            "AND column_name = 'note'") == 0
        else:
            db.migrate()
            assert [name for (name,) in db.rows(APPLIED_GAMMA)] == ["0001_initial", "0002_entry_note"]
    finally:
        db.drop()
