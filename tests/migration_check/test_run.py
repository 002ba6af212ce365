"""run.settings_guard: settings whose databases are not the scratch one are refused (pure); the
headings of the chains' blocks of lines."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from migration_check.errors import UsageError
from migration_check.run import chain_titles, settings_guard
from tests.migration_check.fake_database import project_of


def project(**aliases):
    found = project_of()
    found.database_name = "tm_scratch_1_0_head"
    found.databases = {alias: {"vendor": vendor, "name": name, "host": host, "port": "5432"}
                       for alias, (vendor, name, host) in aliases.items()}
    return found


SCRATCH = ("postgresql", "tm_scratch_1_0_head", "db.internal")


def test_every_alias_on_the_scratch_database_is_fine():
    settings_guard(project(default=SCRATCH, replica=SCRATCH), "tm_scratch_1_0_head", "shop.settings")


@pytest.mark.parametrize(("archive", "where"), [
    (("postgresql", "archive", "db.internal"), "the postgresql database 'archive' on db.internal:5432"),
    (("postgresql", "tm_scratch_1_0_head", "prod.example.com"),
     "the postgresql database 'tm_scratch_1_0_head' on prod.example.com:5432"),
    (("sqlite", "/srv/cache.sqlite3", ""), "the sqlite database '/srv/cache.sqlite3'"),
])
def test_another_alias_pointing_elsewhere_is_refused_naming_it(archive, where):
    """Before: only `default` was checked, and a RunPython writing through `archive` wrote there."""
    with pytest.raises(UsageError) as refused:
        settings_guard(project(default=SCRATCH, archive=archive), "tm_scratch_1_0_head", "shop.settings")
    assert str(refused.value) == (
        f"the settings shop.settings point the database alias 'archive' at {where}, not at the scratch database: "
        "a migration that uses it (RunPython with `using`, a router) would write there, so the tool stops here. "
        "While testing, point every alias at DATABASE_URL")
    assert "\n" not in str(refused.value)


def test_a_chains_heading_names_its_part_of_the_window_only_when_the_app_has_several():
    """With --jobs 2 and one app, its window is split over two chains: two blocks, told apart."""
    def chain(app, *names):
        return SimpleNamespace(app=app), SimpleNamespace(tested=[SimpleNamespace(name=name) for name in names])

    planned = [chain("shop", "0001_initial", "0002_item"), chain("shop", "0003_price"),
               chain("blog", "0001_initial", "0002_post", "0003_tag")]
    assert chain_titles(planned) == ["shop (0001_initial .. 0002_item)", "shop (0003_price)", "blog"]
