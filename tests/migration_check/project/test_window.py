"""AppWindow: irreversible operations named before anything runs, blocking, window splitting."""

from __future__ import annotations

from pathlib import Path

import pytest

from migration_check.project.discovery import split_window
from migration_check.project.window import AppWindow
from migration_check.results import Finding
from tests.migration_check.fake_database import migration

PROJECT_DIR = Path("/project")


def window_of(*specs):
    """A window of shop migrations 0001.., each reversible unless its spec says False."""
    migrations = []
    for number, reversible in enumerate(specs, start=1):
        previous = [("shop", migrations[-1].name)] if migrations else []
        migrations.append(migration("shop", f"{number:04d}_m", *previous, reversible=reversible))
    return AppWindow("shop", migrations, PROJECT_DIR)


def test_the_newest_irreversible_migration_is_named_and_only_newer_ones_are_testable():
    window = window_of(True, False, True, False, True)
    testable = window.mark_irreversible(frozenset())
    assert [m.name for m in testable] == ["0005_m"]
    result = window.results["0004_m"]
    assert result.rollback == "irreversible"
    assert result.error == "RunPython (operation of 0004_m) has no reverse operation, at None"
    assert result.acknowledged is False
    assert window.results["0002_m"].rollback == "not_run"  # named when blocked, below


def test_an_irreversible_migration_can_be_acknowledged_by_flag():
    window = window_of(True, False)
    window.mark_irreversible(frozenset({("shop", "0002_m")}))
    assert window.results["0002_m"].acknowledged is True
    assert window.results["0002_m"].problems == []


def test_everything_older_than_a_blocker_is_blocked():
    window = window_of(True, True, False, True)
    window.mark_irreversible(frozenset())
    window.results["0004_m"].rollback = "passed"
    app = window.result([None])
    assert [(m.name, m.rollback) for m in app.migrations] == [
        ("0004_m", "passed"), ("0003_m", "irreversible"), ("0002_m", "blocked"), ("0001_m", "blocked")]
    assert app.migrations[2].error == "not reached: 0003_m cannot be rolled back"
    assert app.error is None


def test_a_failed_rollback_blocks_the_older_ones_too():
    window = window_of(True, True, True)
    for name in ("0001_m", "0002_m", "0003_m"):
        window.results[name].rollback = "passed"
    window.results["0002_m"].rollback = "failed"
    window.mark_blocked()
    assert [window.results[n].rollback for n in ("0001_m", "0002_m", "0003_m")] == ["blocked", "failed", "passed"]


def test_app_errors_are_joined():
    assert window_of(True).result(["first", None, "second"]).error == "first; second"


@pytest.mark.parametrize(("size", "parts", "segments"), [
    (5, 2, [3, 2]), (4, 2, [2, 2]), (3, 2, [3]), (2, 2, [2]), (1, 2, [1]), (7, 3, [3, 2, 2]),
    (5, 1, [5]), (6, 8, [2, 2, 2]), (0, 2, []),
])
def test_split_window_makes_consecutive_segments_of_at_least_two(size, parts, segments):
    migrations = list(window_of(*[True] * size).window)
    split = split_window(migrations, parts)
    assert [len(segment) for segment in split] == segments
    assert [m for segment in split for m in segment] == migrations  # consecutive, in order, nothing lost


def test_blocking_keeps_what_the_older_migrations_own_tests_found():
    """Before: mark_blocked replaced the result, and 0002's data_lost finding was thrown away."""
    window = window_of(True, True, True)
    for name in ("0001_m", "0002_m", "0003_m"):
        window.results[name].rollback = "passed"
    lost = Finding("data_lost", "column shop_note.text: 3 row(s) changed or emptied after rolling back 0002_m",
                   {"table": "shop_note", "column": "text"})
    window.results["0002_m"].data = "lost"
    window.results["0002_m"].details.append(lost)
    window.results["0003_m"].rollback = "failed"
    window.mark_blocked()
    blocked = window.results["0002_m"]
    assert (blocked.rollback, blocked.data) == ("blocked", "not_checked")
    assert blocked.details[1:] == [lost]
    assert blocked.details[0].message.startswith("tested before it was known to be blocked: apply not_run, "
                                                 "rollback passed, re-apply not_run, schema not_checked, data lost")
