"""WindowChain, the steps of one migration's test, on a fake database (no PostgreSQL needed).

The fake moves its applied set the way `migrate` does; each test says which step fails and
asserts the verdicts written into the window's results.
"""

from __future__ import annotations

import io
from pathlib import Path

from migration_check.chain.window_chain import ChainContext, WindowChain
from migration_check.cli import build_parser, config_from_args
from migration_check.log import Log
from migration_check.project.window import AppWindow
from migration_check.proofs.data.seeding import PRE_RELEASE_PROFILES
from migration_check.proofs.protocol import Proof
from migration_check.proofs.registry import PROOFS
from tests.migration_check.fake_database import FakeDatabase, failed_step, migration, project_of

REPO_ROOT = Path(__file__).resolve().parents[3]

LINEAR = project_of(
    migration("shop", "0001_initial"),
    migration("shop", "0002_price", ("shop", "0001_initial")),
    migration("shop", "0003_note", ("shop", "0002_price")),
    migration("shop", "0004_index", ("shop", "0003_note")),
)
# 0002_left and 0002_right both follow 0001; 0003_merge joins them.
MERGE = project_of(
    migration("notes", "0001_initial"),
    migration("notes", "0002_left", ("notes", "0001_initial")),
    migration("notes", "0002_right", ("notes", "0001_initial")),
    migration("notes", "0003_merge", ("notes", "0002_left"), ("notes", "0002_right")),
)


def run_chain(project, app, names, database, *flags):
    """Test `names` of `app` as one chain on `database`; returns (results by name, app error, log)."""
    # --no-retry: the retry proof takes scratch databases of its own, which this fake hands out as
    # the chain's own one (the proof is tested on real databases: end_to_end/test_retry_project.py).
    config = config_from_args(build_parser().parse_args(["--manage", str(REPO_ROOT / "manage.py"), "--no-retry",
                                                         *flags]))
    stream = io.StringIO()
    window = AppWindow(app, [m for m in project.plan if m.app == app and m.name in names], config.project_dir)
    context = ChainContext(config=config, project=project, log=Log(1, stream), open_database=lambda purpose: database)
    error = WindowChain(context, window, window.mark_irreversible(frozenset()), restore=True).check()
    window.result([error])
    return window.results, error, stream.getvalue()


def verdicts(result):
    return (result.apply, result.rollback, result.reapply, result.schema)


def test_every_step_passes_oldest_first_and_head_is_restored():
    database = FakeDatabase(LINEAR)
    results, error, _ = run_chain(LINEAR, "shop", ["0002_price", "0003_note", "0004_index"], database)
    assert error is None
    for name in ("0002_price", "0003_note", "0004_index"):
        assert verdicts(results[name]) == ("passed", "passed", "passed", "identical"), name
    # built to 0001, then per migration: apply, roll back to its parent, re-apply
    assert database.calls == [("shop", "0002_price"), ("shop", "0001_initial"), ("shop", "0002_price"),
                              ("shop", "0003_note"), ("shop", "0002_price"), ("shop", "0003_note"),
                              ("shop", "0004_index"), ("shop", "0003_note"), ("shop", "0004_index")]
    assert database.closed


def test_a_rollback_that_fails_blocks_the_older_ones_and_ends_the_chain():
    # `migrate shop 0002_price` is 0002's apply, 0002's re-apply, then 0003's rollback
    database = FakeDatabase(LINEAR, {("shop", "0002_price", 3): failed_step("ProgrammingError: no such column")})
    results, _, _ = run_chain(LINEAR, "shop", ["0002_price", "0003_note", "0004_index"], database)
    assert results["0003_note"].rollback == "failed"
    assert results["0003_note"].error == "ProgrammingError: no such column"
    assert results["0003_note"].reapply == "not_run" and results["0003_note"].schema == "not_checked"
    assert (results["0002_price"].rollback, results["0002_price"].blocked_by) == ("blocked", "0003_note")
    assert verdicts(results["0002_price"]) == ("passed", "blocked", "passed", "identical")  # its own test's
    assert results["0002_price"].rollback_alone == "passed" and results["0002_price"].error is None


IRREVERSIBLE_MIDDLE = project_of(
    migration("shop", "0001_initial"),
    migration("shop", "0002_price", ("shop", "0001_initial")),
    migration("shop", "0003_note", ("shop", "0002_price"), reversible=False),
    migration("shop", "0004_index", ("shop", "0003_note")),
)


def test_an_irreversible_migration_is_applied_and_stays_applied_and_the_older_ones_are_tested():
    """Before: 0003 (irreversible) and 0002 were never applied; only 0004 was tested."""
    database = FakeDatabase(IRREVERSIBLE_MIDDLE)
    results, error, log = run_chain(IRREVERSIBLE_MIDDLE, "shop", ["0002_price", "0003_note", "0004_index"],
                                    database)
    assert error is None
    assert verdicts(results["0003_note"]) == ("passed", "irreversible", "not_run", "not_checked")
    assert verdicts(results["0002_price"]) == ("passed", "blocked", "passed", "identical")
    assert (results["0002_price"].blocked_by, results["0002_price"].rollback_alone) == ("0003_note", "passed")
    assert verdicts(results["0004_index"]) == ("passed", "passed", "passed", "identical")
    # 0003 is applied once and never rolled back; 0004 is tested on top of it
    assert database.calls == [("shop", "0002_price"), ("shop", "0001_initial"), ("shop", "0002_price"),
                              ("shop", "0003_note"),
                              ("shop", "0004_index"), ("shop", "0003_note"), ("shop", "0004_index")]
    assert "shop.0003_note: apply passed, compat not_checked; irreversible, not rolled back" in log


def test_an_irreversible_migration_whose_apply_fails_keeps_both_errors():
    database = FakeDatabase(IRREVERSIBLE_MIDDLE, {("shop", "0003_note", 1): failed_step("DataError: invalid json")})
    results, _, _ = run_chain(IRREVERSIBLE_MIDDLE, "shop", ["0003_note", "0004_index"], database)
    assert (results["0003_note"].apply, results["0003_note"].rollback) == ("failed", "irreversible")
    assert "DataError: invalid json" in results["0003_note"].error
    assert results["0003_note"].error.endswith("has no reverse operation, at None")
    assert verdicts(results["0004_index"]) == ("passed", "passed", "passed", "identical")


def test_a_reapply_that_fails_does_not_hide_the_newer_ones():
    """Before: 0004 was `not tested: 0003_note could not be re-applied`. The forward path through
    0003 works (it is its second application that failed), so 0004 is tested on a fresh database
    built forward past 0003, with verdicts of its own."""
    database = FakeDatabase(LINEAR, {("shop", "0003_note", 2): failed_step("ProgrammingError: already exists")})
    results, error, log = run_chain(LINEAR, "shop", ["0002_price", "0003_note", "0004_index"], database)
    assert verdicts(results["0003_note"]) == ("passed", "passed", "failed", "identical")
    assert results["0003_note"].error == "ProgrammingError: already exists"
    assert results["0004_index"].error is None
    assert verdicts(results["0004_index"]) == ("passed", "passed", "passed", "identical")
    assert results["0002_price"].problems == []
    assert database.builds == [["0002_price", "0003_note", "0004_index"], ["0004_index"]]
    assert "0003_note could not be re-applied; this database stops here" in log
    assert error is None


def test_a_rollback_that_times_out_does_not_hide_the_newer_ones():
    database = FakeDatabase(LINEAR, {("shop", "0002_price", 3): failed_step(timed_out=True)})
    results, _, _ = run_chain(LINEAR, "shop", ["0002_price", "0003_note", "0004_index"], database)
    assert results["0003_note"].rollback == "failed" and "timed out" in results["0003_note"].error
    assert verdicts(results["0004_index"]) == ("passed", "passed", "passed", "identical")
    assert results["0002_price"].rollback == "blocked"  # production cannot get past 0003's rollback


def test_when_a_rebuild_fails_the_newer_ones_say_why():
    class FailsSecondBuild(FakeDatabase):
        def build(self, app, targets, window):
            step, response = super().build(app, targets, window)
            return (failed_step("django.db.utils.OperationalError: full"), None) if len(self.builds) > 1 \
                else (step, response)

    database = FailsSecondBuild(LINEAR, {("shop", "0003_note", 2): failed_step("ProgrammingError: already exists")})
    results, error, _ = run_chain(LINEAR, "shop", ["0002_price", "0003_note", "0004_index"], database)
    assert results["0004_index"].error == ("not tested: 0003_note could not be re-applied, and building a "
                                           "database past it failed: OperationalError: full")
    assert error is None


def test_an_apply_that_cannot_be_done_at_all_leaves_the_newer_ones_untested():
    """The forward path is what failed: no database can be built past it."""
    database = FakeDatabase(LINEAR, {("shop", "0003_note", 1): failed_step("IntegrityError: null value"),
                                     ("shop", "0003_note", 2): failed_step("IntegrityError: still")})
    results, _, _ = run_chain(LINEAR, "shop", ["0003_note", "0004_index"], database)
    assert results["0004_index"].error == "not tested: 0003_note could not be applied"
    assert len(database.builds) == 1


class HalfReversing(FakeDatabase):
    """`migrate shop 0002_price` (0003's rollback) fails after reversing part of 0003: the schema
    is no longer the applied one, and 0003 is still recorded as applied."""

    def migrate(self, app=None, target=None):
        step = super().migrate(app, target)
        if not step.ok and (app, target) == ("shop", "0002_price"):
            self.leftovers = {"column shop_item.note": {"type": "gone"}}
        elif (app, target) == ("shop", "0003_note"):
            self.leftovers = {}
        return step


NON_ATOMIC = project_of(
    migration("shop", "0001_initial"),
    migration("shop", "0002_price", ("shop", "0001_initial")),
    migration("shop", "0003_note", ("shop", "0002_price"), atomic=False),
    migration("shop", "0004_index", ("shop", "0003_note")),
)


def test_a_non_atomic_migration_left_half_reversed_stops_its_database():
    """Before: 0004 was tested on the half-reversed database (its verdicts were about a state no
    production database is in). Now that database stops, with a message saying so, and 0004 is
    tested on one built forward past 0003."""
    database = HalfReversing(NON_ATOMIC, {("shop", "0002_price", 3): failed_step("ProgrammingError: typo")})
    results, _, log = run_chain(NON_ATOMIC, "shop", ["0002_price", "0003_note", "0004_index"], database)
    assert results["0003_note"].rollback == "failed"
    assert results["0003_note"].error.startswith("ProgrammingError: typo; atomic = False: the operations reversed "
                                                 "before the failure stay reversed, the database is left half reversed")
    assert "the failed rollback of 0003_note (atomic = False) left it half reversed; this database stops here" in log
    assert database.builds == [["0002_price", "0003_note", "0004_index"], ["0004_index"]]
    assert verdicts(results["0004_index"]) == ("passed", "passed", "passed", "identical")


def test_after_an_atomic_migration_whose_rollback_failed_the_newer_ones_stay_on_the_same_database():
    """A failed atomic rollback changes nothing (its transaction is rolled back)."""
    database = FakeDatabase(LINEAR, {("shop", "0002_price", 3): failed_step("ProgrammingError: typo")})
    results, _, _ = run_chain(LINEAR, "shop", ["0002_price", "0003_note", "0004_index"], database)
    assert results["0003_note"].error == "ProgrammingError: typo"
    assert len(database.builds) == 1
    assert verdicts(results["0004_index"]) == ("passed", "passed", "passed", "identical")


def test_an_apply_that_fails_over_data_is_retried_on_empty_tables():
    database = FakeDatabase(LINEAR, {("shop", "0003_note", 1): failed_step("IntegrityError: null value")})
    results, _, _ = run_chain(LINEAR, "shop", ["0003_note", "0004_index"], database)
    assert results["0003_note"].apply == "failed"
    assert results["0003_note"].error.startswith("applying 0003_note over pre-release data failed: IntegrityError")
    assert results["0003_note"].rollback == "passed"
    assert verdicts(results["0004_index"]) == ("passed", "passed", "passed", "identical")


def test_a_timed_out_apply_ends_the_chain():
    database = FakeDatabase(LINEAR, {("shop", "0003_note", 1): failed_step(timed_out=True)})
    results, _, _ = run_chain(LINEAR, "shop", ["0003_note", "0004_index"], database)
    assert results["0003_note"].apply == "failed" and "timed out after 5s" in results["0003_note"].error
    assert results["0004_index"].error == "not tested: 0003_note could not be applied"


def test_a_schema_left_behind_by_the_reverse_is_reported():
    class LeakyDatabase(FakeDatabase):
        def migrate(self, app=None, target=None):
            step = super().migrate(app, target)
            if (app, target) == ("shop", "0003_note"):  # 0004's rollback leaves its index behind
                self.leftovers = {"index shop_item_idx": {"definition": "CREATE INDEX ..."}}
            elif (app, target) == ("shop", "0004_index"):  # which the re-apply makes again
                self.leftovers = {}
            return step

    results, _, _ = run_chain(LINEAR, "shop", ["0004_index"], LeakyDatabase(LINEAR))
    assert results["0004_index"].schema == "differs"
    assert [f.message for f in results["0004_index"].details if f.kind == "schema"] == [
        "index shop_item_idx still exists after rolling back 0004_index"]


def test_rolling_back_one_branch_of_a_merge_puts_the_sibling_back_before_comparing():
    database = FakeDatabase(MERGE)
    results, error, _ = run_chain(MERGE, "notes", ["0002_right"], database)
    assert error is None
    assert verdicts(results["0002_right"]) == ("passed", "passed", "passed", "identical")
    infos = [f.message for f in results["0002_right"].details if f.kind == "info"]
    assert infos == ["Django cannot roll back 0002_right alone: `migrate notes 0001_initial` also rolled back "
                     "0002_left, re-applied before comparing"]
    rollback = database.calls.index(("notes", "0001_initial"))
    assert database.calls[rollback + 1] == ("notes", "0002_left")  # the sibling, before the comparison


def test_a_sibling_that_cannot_be_put_back_is_a_failure_not_a_schema_difference():
    """apply_forward used to ignore the failed step: the comparison then ran on a database
    without the sibling and reported `schema: differs` instead of the real failure."""
    # the first `migrate notes 0002_left` is the re-apply after the rollback (the build applied it)
    database = FakeDatabase(MERGE, {("notes", "0002_left", 1): failed_step("ProgrammingError: sibling broke")})
    results, _, _ = run_chain(MERGE, "notes", ["0002_right"], database)
    result = results["0002_right"]
    assert (result.rollback, result.reapply, result.schema) == ("passed", "failed", "not_checked")
    assert result.error == ("rolling back 0002_right also rolled back notes.0002_left, and re-applying "
                            "notes.0002_left failed: ProgrammingError: sibling broke")
    assert "re-apply failed" in result.problems
    assert not [f for f in result.details if f.kind == "schema"]


def test_what_a_migration_needs_from_another_app_is_applied_first():
    project = project_of(
        migration("alpha", "0001_initial"),
        migration("alpha", "0002_more", ("alpha", "0001_initial")),
        migration("beta", "0001_initial"),
        migration("beta", "0002_uses_alpha", ("beta", "0001_initial"), ("alpha", "0002_more")),
    )
    database = FakeDatabase(project)
    results, error, _ = run_chain(project, "alpha", ["0002_more"], database)
    assert error is None
    # alpha.0002's rollback takes beta.0002 with it: the sibling rule puts it back too
    assert verdicts(results["0002_more"]) == ("passed", "passed", "passed", "identical")
    assert database.applied() == {m.key for m in project.plan}


def test_an_unbuildable_base_is_an_app_error():
    class Unbuildable(FakeDatabase):
        def build(self, app, targets, window):
            return failed_step("django.db.utils.OperationalError: cannot"), None

    results, error, _ = run_chain(LINEAR, "shop", ["0004_index"], Unbuildable(LINEAR))
    assert error == "could not build the state before 0004_index: OperationalError: cannot"
    assert results["0004_index"].error == error


def test_an_unexpected_exception_is_an_app_error_and_the_database_is_closed():
    class Broken(FakeDatabase):
        def schema(self):
            raise KeyError("boom")

    database = Broken(LINEAR)
    _, error, _ = run_chain(LINEAR, "shop", ["0004_index"], database)
    assert error == "internal error while testing shop: KeyError: 'boom'"
    assert database.closed


def test_proofs_off_leave_schema_and_data_not_checked():
    results, _, _ = run_chain(LINEAR, "shop", ["0004_index"], FakeDatabase(LINEAR), "--no-schema", "--no-data")
    assert (results["0004_index"].schema, results["0004_index"].data) == ("not_checked", "not_checked")
    assert results["0004_index"].rollback == "passed"


def test_without_the_schema_proof_a_failed_non_atomic_rollback_may_have_left_it_half_reversed():
    database = FakeDatabase(NON_ATOMIC, {("shop", "0002_price", 3): failed_step("ProgrammingError: typo")})
    results, _, _ = run_chain(NON_ATOMIC, "shop", ["0002_price", "0003_note", "0004_index"], database, "--no-schema")
    assert results["0003_note"].error == ("ProgrammingError: typo; atomic = False: the database may be left half "
                                          "reversed")
    assert database.builds == [["0002_price", "0003_note", "0004_index"], ["0004_index"]]
    assert results["0004_index"].rollback == "passed"


def test_a_failed_non_atomic_rollback_that_changed_nothing_keeps_its_database():
    database = FakeDatabase(NON_ATOMIC, {("shop", "0002_price", 3): failed_step("ProgrammingError: typo")})
    results, _, _ = run_chain(NON_ATOMIC, "shop", ["0002_price", "0003_note", "0004_index"], database)
    assert results["0003_note"].error == "ProgrammingError: typo"
    assert len(database.builds) == 1


class SeedCounting(FakeDatabase):
    """The fake, counting the seedings of pre-release and post-release rows."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seeded_profiles: list[tuple[str, ...]] = []

    def seed(self, tables, profiles, round_token=None, choices=None):
        self.seeded_profiles.append(tuple(profiles))
        return super().seed(tables, profiles, round_token, choices)


def release_starts(database, *flags):
    """Each migration's `release_start` as the proofs saw it (where its pre-release rows come from)."""
    seen = {}

    class Recorder(Proof):
        name = "recorder"

        def before_apply(self, test):
            start = test.release_start
            seen[test.migration.name] = (start.migration.name, start.through) if start else None

    config = config_from_args(build_parser().parse_args(["--manage", str(REPO_ROOT / "manage.py"), "--no-retry",
                                                         *flags]))
    window = AppWindow("shop", [m for m in LINEAR.plan if m.name != "0001_initial"], config.project_dir)
    context = ChainContext(config=config, project=LINEAR, log=Log(1, io.StringIO()),
                           open_database=lambda purpose: database, proofs=[*PROOFS, Recorder])
    WindowChain(context, window, window.mark_irreversible(frozenset()), restore=True).check()
    return seen


def test_with_since_the_release_is_seeded_once_at_its_start_and_carried():
    database = SeedCounting(LINEAR)
    assert release_starts(database, "--since", "main") == {
        "0002_price": None,
        "0003_note": ("0002_price", ("0002_price",)),
        "0004_index": ("0002_price", ("0002_price", "0003_note")),
    }
    pre_release = [p for p in database.seeded_profiles if p == tuple(PRE_RELEASE_PROFILES)]
    assert len(pre_release) == 1 and len(database.seeded_profiles) == 4  # once before, three post-release


def test_without_since_every_migration_seeds_its_own_rows():
    database = SeedCounting(LINEAR)
    assert release_starts(database) == {"0002_price": None, "0003_note": None, "0004_index": None}
    assert database.seeded_profiles.count(tuple(PRE_RELEASE_PROFILES)) == 3


def test_rows_emptied_by_a_failed_apply_are_not_carried():
    # 0003's apply fails over the rows (`migrate shop 0003_note`, first call): the tables are
    # emptied and it is applied without data, so 0004 seeds rows of its own.
    database = SeedCounting(LINEAR, {("shop", "0003_note", 1): failed_step("IntegrityError: null value")})
    assert release_starts(database, "--since", "main") == {
        "0002_price": None, "0003_note": ("0002_price", ("0002_price",)), "0004_index": None}


def test_rows_are_not_carried_past_a_failed_rollback():
    # 0003's rollback (`migrate shop 0002_price`, third call) fails: there is no re-apply, so the
    # post-release rows seeded after 0003 never went through its code again; 0004 seeds its own
    # (wagtailcore.0086 -> 0087 in survey 4).
    database = SeedCounting(LINEAR, {("shop", "0002_price", 3): failed_step("DataError: negative substring length")})
    assert release_starts(database, "--since", "main") == {
        "0002_price": None, "0003_note": ("0002_price", ("0002_price",)), "0004_index": None}


# b.0002 depends on shop.0002 (django-oscar: order.0008 re-points a foreign key once customer.0006
# has moved its model): a database built forward to just before shop.0003 holds it.
DEPENDENT_APP = project_of(
    migration("shop", "0001_initial"),
    migration("shop", "0002_price", ("shop", "0001_initial")),
    migration("b", "0001_initial"),
    migration("b", "0002_points_at_price", ("b", "0001_initial"), ("shop", "0002_price")),
    migration("shop", "0003_note", ("shop", "0002_price")),
)


def test_each_migration_is_tested_in_the_state_a_fresh_database_before_it_holds():
    """Before: b.0002 was never applied in this chain, so shop.0003 was tested without it (and
    with the window split before shop.0003, with it: verdicts depended on --jobs)."""
    database = FakeDatabase(DEPENDENT_APP)
    results, error, log = run_chain(DEPENDENT_APP, "shop", ["0002_price", "0003_note"], database)
    assert error is None
    assert database.calls == [("shop", "0002_price"), ("shop", "0001_initial"), ("shop", "0002_price"),
                              ("b", "0002_points_at_price"),  # caught up before shop.0003
                              ("shop", "0003_note"), ("shop", "0002_price"), ("shop", "0003_note")]
    assert "shop: apply b.0002_points_at_price first ... OK" in log
    assert verdicts(results["0003_note"]) == ("passed", "passed", "passed", "identical")


def test_a_catch_up_that_fails_starts_again_on_a_fresh_database():
    database = FakeDatabase(DEPENDENT_APP, {("b", "0002_points_at_price", 1): failed_step("IntegrityError: x")})
    results, error, log = run_chain(DEPENDENT_APP, "shop", ["0002_price", "0003_note"], database)
    assert error is None
    assert database.builds == [["0002_price", "0003_note"], ["0003_note"]]
    assert "catching up with the state before 0003_note failed on this database" in log
    assert verdicts(results["0003_note"]) == ("passed", "passed", "passed", "identical")


def test_a_sibling_branch_of_the_window_is_not_caught_up_before_its_own_test():
    """notes 0002_left and 0002_right both follow 0001: testing 0002_left, a fresh database holds
    neither of the window's branches (clean_project's notes; the catch-up first applied 0002_right,
    whose columns the rollback of 0002_left then took along)."""
    database = FakeDatabase(MERGE)
    results, error, _ = run_chain(MERGE, "notes", ["0002_left", "0002_right", "0003_merge"], database)
    assert error is None
    assert database.calls[:3] == [("notes", "0002_left"), ("notes", "0001_initial"), ("notes", "0002_left")]
    assert ("notes", "0002_right") not in database.calls[:3]
