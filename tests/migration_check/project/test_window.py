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


def test_every_irreversible_migration_is_named_and_every_migration_is_tested():
    """Before: only the newest irreversible one was named, and only the newer ones were tested."""
    window = window_of(True, False, True, False, True)
    testable = window.mark_irreversible(frozenset())
    assert [m.name for m in testable] == ["0001_m", "0002_m", "0003_m", "0004_m", "0005_m"]
    assert [window.results[n].rollback for n in ("0001_m", "0002_m", "0003_m", "0004_m", "0005_m")] == [
        "not_run", "irreversible", "not_run", "irreversible", "not_run"]
    result = window.results["0004_m"]
    assert result.error == "RunPython (operation of 0004_m) has no reverse operation, at None"
    assert result.acknowledged is False


def test_an_irreversible_migration_can_be_acknowledged_by_flag():
    window = window_of(True, False)
    window.mark_irreversible(frozenset({("shop", "0002_m")}))
    assert window.results["0002_m"].acknowledged is True
    assert window.results["0002_m"].problems == []


def own_verdicts(window, **rollbacks):
    """Each migration's own test as the chain leaves it: applied, rolled back as given."""
    for name, result in window.results.items():
        result.apply = "passed"
        result.rollback = rollbacks.get(name, result.rollback if result.rollback == "irreversible" else "passed")


def test_everything_older_than_a_blocker_is_blocked_by_the_nearest_one_and_keeps_its_own_verdict():
    window = window_of(True, True, False, True, True)
    window.mark_irreversible(frozenset())
    own_verdicts(window, **{"0002_m": "failed"})
    app = window.result([None])
    assert [(m.name, m.rollback, m.blocked_by, m.own_rollback) for m in app.migrations] == [
        ("0005_m", "passed", None, "passed"), ("0004_m", "passed", None, "passed"),
        ("0003_m", "irreversible", None, "irreversible"), ("0002_m", "blocked", "0003_m", "failed"),
        ("0001_m", "blocked", "0002_m", "passed")]  # the nearest newer one that cannot be rolled back
    assert app.error is None
    # its own failed rollback is a problem; being blocked is not
    assert [m.problems for m in app.migrations[2:]] == [["rollback irreversible"], ["rollback failed"], []]


def test_acknowledging_one_migration_never_changes_another_ones_verdicts():
    """Before: `--allow-irreversible shop.0004` left 0002 and 0003 untested, and the run said OK."""
    window = window_of(True, True, True, False)
    window.mark_irreversible(frozenset({("shop", "0004_m")}))
    own_verdicts(window)
    window.results["0002_m"].compat = "breaks_old_code"
    window.mark_blocked()
    assert window.results["0004_m"].problems == []
    assert (window.results["0002_m"].rollback, window.results["0002_m"].problems) == ("blocked", ["breaks old code"])


def test_blocking_twice_keeps_the_own_verdict():
    window = window_of(True, False)
    window.mark_irreversible(frozenset())
    own_verdicts(window, **{"0001_m": "failed"})
    window.mark_blocked()
    window.mark_blocked()
    assert (window.results["0001_m"].rollback_alone, window.results["0001_m"].blocked_by) == ("failed", "0002_m")


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


def test_blocking_keeps_every_verdict_of_the_older_migrations_own_tests():
    """Before: mark_blocked replaced the result (data not_checked), keeping only the findings."""
    window = window_of(True, True, True)
    own_verdicts(window, **{"0003_m": "failed"})
    lost = Finding("data_lost", "column shop_note.text: 3 row(s) changed or emptied after rolling back 0002_m",
                   {"table": "shop_note", "column": "text"})
    window.results["0002_m"].data = "lost"
    window.results["0002_m"].details.append(lost)
    window.mark_blocked()
    blocked = window.results["0002_m"]
    assert (blocked.rollback, blocked.rollback_alone, blocked.apply, blocked.data) == (
        "blocked", "passed", "passed", "lost")
    assert blocked.details == [lost]
    assert blocked.problems == ["data lost"]
