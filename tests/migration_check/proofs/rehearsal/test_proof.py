"""The rehearsal's judging helpers (rehearsal/proof.py), without a database: which tables get
traffic, which migrations are not rehearsed, how hazards are ordered, and the hook's guard."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from migration_check.config import Config
from migration_check.errors import Interrupted
from migration_check.processes.steps import StepResult
from migration_check.project.discovery import MigrationInfo, OperationInfo
from migration_check.proofs.deploy_safety.settings import DeploySafety
from migration_check.proofs.protocol import MigrationTest, ObservedState, ScratchUnavailable
from migration_check.proofs.registry import PROOFS
from migration_check.proofs.rehearsal.proof import (
    Rehearsal,
    RehearsalOptions,
    RehearsalProof,
    Run,
    lock_timeout_failure,
    nothing_to_rehearse,
    ordered_hazards,
    touched_tables,
)
from migration_check.results import Hazard, Impact, MigrationResult, TrafficStat

META = {"tables_before": {"shop_tag": {}, "shop_item": {}}, "tables_after": {}, "effects": [],
        "models_before": [{"table": "shop_tag"}, {"table": "shop_item"}, {"table": "shop_new"}]}


def result(locks) -> MigrationResult:
    return MigrationResult("shop", "0002_x", file=None, locks=locks)


def migration(*operations: str) -> MigrationInfo:
    return MigrationInfo("shop", "0002_x", Path("0002_x.py"), (), (), tuple(OperationInfo(o, True, o)
                                                                          for o in operations))


def test_touched_tables_are_those_locked_to_change_them():
    locks = [{"table": "shop_tag", "mode": "AccessExclusiveLock"}, {"table": "shop_item", "mode": "AccessShareLock"}]
    assert touched_tables(result(locks), META) == ["shop_tag"]


@pytest.mark.parametrize("locks", [None, []])
def test_without_an_observed_lock_every_existing_model_table(locks):
    assert touched_tables(result(locks), META) == ["shop_item", "shop_tag"]


@pytest.mark.parametrize(("operations", "locks", "skipped"), [
    (("CreateModel",), [], True),  # a new table: nobody's queries can meet it
    (("RunPython",), [], False),  # a backfill without DDL: rehearsed (its traffic shows no wait)
    (("CreateModel",), None, False),  # not observed: cannot tell
    (("AddField",), [{"table": "shop_tag", "mode": "AccessExclusiveLock"}], False),
])
def test_nothing_to_rehearse(operations, locks, skipped):
    assert nothing_to_rehearse(migration(*operations), result(locks)) is skipped


def test_hazards_longest_blocking_first_with_their_figure():
    hazards = [Hazard("index-without-concurrently", "shop_a", "ShareLock", "CREATE INDEX", "index on shop_a", "f"),
               Hazard("table-rewrite", "shop_b", "AccessExclusiveLock", "ALTER", "shop_b rewritten", "f"),
               Hazard("scan-under-lock", "shop_c", "ShareLock", "ALTER", "shop_c scanned", "f")]
    found = [Impact("shop_a", "ShareLock", ((100, 0.01),), 1000, 0.1, "flat", "catalog only"),
             Impact("shop_b", "AccessExclusiveLock", ((100, 1.0), (1000, 10.0)), 10_000, 100.0, "fitted",
                    "rewrite")]
    ordered = ordered_hazards(hazards, found)
    assert [h.table for h in ordered] == ["shop_b", "shop_a", "shop_c"]
    assert ordered[0].message.startswith("shop_b rewritten (rehearsal: ACCESS EXCLUSIVE on shop_b (rewrite): "
                                         "estimated 100 s at 10,000 rows")
    assert ordered[2].message == "shop_c scanned"
    assert ordered_hazards(ordered, found) == ordered  # the figure is added once


def test_lock_timeout_failure_from_the_step_output():
    failed = StepResult(["migrate"], 1, "", "django.db.utils.OperationalError: canceling statement due to lock "
                        "timeout", 0.4)
    assert lock_timeout_failure(failed)
    assert not lock_timeout_failure(StepResult(["migrate"], 1, "", "IntegrityError: duplicate key", 0.4))


def test_options_active():
    assert not RehearsalOptions().active
    assert RehearsalOptions(sessions=4).active and RehearsalOptions(long_query_s=1.0).active
    assert RehearsalOptions(table_sizes={}).active


def test_options_from_the_configuration():
    config = Config(Path("manage.py"), Path("."), "s", (), 5, None, None, None, frozenset(), frozenset(), True, True,
                    60.0, 1, 0, traffic_sessions=3, long_query=2.0, volume=500, max_blocking=1.5)
    assert RehearsalOptions.of(config) == RehearsalOptions(3, 2.0, None, 20_000, 1.5, 500)


def test_registered_and_not_run_on_replaced_paths():
    assert RehearsalProof in PROOFS
    assert not RehearsalProof.replaced_paths
    assert all(proof.replaced_paths for proof in PROOFS if proof is not RehearsalProof)


class BrokenScratch:
    """Scratch databases that fail as `error` says, before any database exists."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.asked: list[str] = []

    @contextlib.contextmanager
    def before(self, migration, purpose):
        self.asked.append(purpose)
        raise self.error
        yield


def migration_test(locked: MigrationResult, sessions: int = 1, max_blocking: float | None = None,
                   operation: str = "AddField") -> MigrationTest:
    config = Config(Path("manage.py"), Path("."), "s", (), 5, None, None, None, frozenset(), frozenset(), True, True,
                    60.0, 1, 0, traffic_sessions=sessions, max_blocking=max_blocking)
    return MigrationTest(config=config, project=None, safety=DeploySafety(), migration=migration(operation),
                         meta=META, result=locked, database=None, before=ObservedState(columns={}))


@pytest.mark.parametrize(("error", "words"), [(RuntimeError("boom"), "RuntimeError: boom"),
                                              (ScratchUnavailable("no database"), "no database")])
def test_a_broken_rehearsal_is_a_finding_but_an_interruption_ends_the_run(error, words):
    locked = result([{"table": "shop_tag", "mode": "AccessExclusiveLock"}])
    locked.apply = "passed"
    RehearsalProof().after_steps(migration_test(locked), BrokenScratch(error))
    assert [(f.kind, f.rule) for f in locked.details] == [("rehearsal", "rehearsal-not-run")]
    assert words in locked.details[0].message and locked.rehearsal_problems == [] and locked.traffic == []
    with pytest.raises(Interrupted):
        RehearsalProof().after_steps(migration_test(locked), BrokenScratch(Interrupted()))


@pytest.mark.parametrize(("apply", "sessions"), [("failed", 1), ("passed", 0)])
def test_not_rehearsed_when_the_apply_failed_or_nothing_was_asked(apply, sessions):
    locked = result([{"table": "shop_tag", "mode": "AccessExclusiveLock"}])
    locked.apply = apply
    scratch = BrokenScratch(RuntimeError("never asked"))
    RehearsalProof().after_steps(migration_test(locked, sessions), scratch)
    assert (scratch.asked, locked.details) == ([], [])


@pytest.mark.parametrize(("apply", "locks", "operation", "error", "blocking"), [
    ("passed", [{"table": "shop_tag", "mode": "AccessExclusiveLock"}], "AddField", RuntimeError("boom"),
     "not_checked"),  # the rehearsal broke: no figures, never `within`
    ("failed", [{"table": "shop_tag", "mode": "AccessExclusiveLock"}], "AddField", None, "not_checked"),
    ("passed", [], "CreateModel", None, "within"),  # locks no existing table: nothing can block
])
def test_blocking_without_figures(apply, locks, operation, error, blocking):
    locked = result(locks)
    locked.apply = apply
    RehearsalProof().after_steps(migration_test(locked, max_blocking=1.0, operation=operation),
                                 BrokenScratch(error or RuntimeError("never asked")))
    assert locked.blocking == blocking


def test_blocking_is_off_without_max_blocking():
    locked = result([])
    locked.apply = "passed"
    RehearsalProof().after_steps(migration_test(locked, operation="CreateModel"), BrokenScratch(RuntimeError("x")))
    assert locked.blocking == "off"


@pytest.mark.parametrize(("queued", "rules"), [(True, ["rehearsal-lock-queue"]), (False, [])])
def test_a_lock_queue_is_said_only_when_the_migration_queued_behind_the_long_read(queued, rules):
    """Traffic that waited as long on M's own lock (a SHARE lock, which a read does not hold
    up) is no queue behind the slow query: the finding would say what did not happen."""
    locked = result([{"table": "shop_tag", "mode": "ShareLock"}])
    locked.traffic = [TrafficStat("shop_tag", "insert", 12, 0, 0.9, 0.01, 0.005)]  # waited most of 1 s
    rehearsal = Rehearsal(RehearsalOptions(sessions=1, long_query_s=1.0), migration_test(locked), None)
    run = Run(StepResult(["migrate"], 0, "", "", 1.2), {}, [], queued_behind_long_query=queued)
    assert [finding.rule for finding in rehearsal.traffic_findings(run)] == rules
