"""The proof protocol on the fake database: dummy proofs registered beside the real ones see
each moment of a migration's test in order, can wrap (and repeat) the apply, and can get a
scratch database of their own in the state just before a migration."""

from __future__ import annotations

import io
from pathlib import Path

from migration_check.chain.window_chain import ChainContext, WindowChain
from migration_check.cli import build_parser, config_from_args
from migration_check.log import Log
from migration_check.project.window import AppWindow
from migration_check.proofs.data.seeding import SeedReport
from migration_check.proofs.protocol import Proof, ReleaseStart
from migration_check.proofs.registry import PROOFS
from tests.migration_check.chain.test_window_chain import LINEAR
from tests.migration_check.fake_database import FakeDatabase, failed_step

REPO_ROOT = Path(__file__).resolve().parents[3]
NAMES = ["0002_price", "0003_note", "0004_index"]


def run_with(proofs, database, open_database=None, names=NAMES):
    """Test `names` of LINEAR's shop as one chain on `database`, with `proofs` after the
    registered ones; returns (results by name, log)."""
    config = config_from_args(build_parser().parse_args(["--manage", str(REPO_ROOT / "manage.py")]))
    stream = io.StringIO()
    window = AppWindow("shop", [m for m in LINEAR.plan if m.name in names], config.project_dir)
    context = ChainContext(config=config, project=LINEAR, log=Log(1, stream), proofs=(*PROOFS, *proofs),
                           open_database=open_database or (lambda purpose: database))
    WindowChain(context, window, window.mark_irreversible(frozenset()), restore=True).check()
    return window.results, stream.getvalue()


def applied_names(database):
    return sorted(name for _, name in database.applied())


class Moments(Proof):
    """Records each hook with the migration and what the chain's database had applied then."""

    name = "moments"
    seen: list[tuple[str, str, list[str]]] = []

    def record(self, moment, test):
        self.seen.append((moment, test.migration.name, applied_names(test.database)))

    def before_apply(self, test):
        self.record("before_apply", test)

    def around_apply(self, test, apply):
        self.record("around_apply: before", test)
        verdict = apply()
        self.record(f"around_apply: after, {verdict.status}", test)
        return verdict

    def after_apply(self, test):
        self.record("after_apply", test)

    def before_rollback(self, test):
        self.record("before_rollback", test)

    def after_rollback(self, test):
        self.record("after_rollback", test)

    def after_reapply(self, test):
        self.record("after_reapply", test)

    def after_steps(self, test, scratch):
        self.record("after_steps", test)


def test_a_registered_proof_sees_every_moment_in_the_order_of_the_steps():
    Moments.seen = []
    database = FakeDatabase(LINEAR)
    results, _ = run_with([Moments], database, names=["0002_price", "0003_note"])
    assert [entry for entry in Moments.seen if entry[1] == "0003_note"] == [
        ("before_apply", "0003_note", ["0001_initial", "0002_price"]),
        ("around_apply: before", "0003_note", ["0001_initial", "0002_price"]),
        ("around_apply: after, passed", "0003_note", ["0001_initial", "0002_price", "0003_note"]),
        ("after_apply", "0003_note", ["0001_initial", "0002_price", "0003_note"]),
        ("before_rollback", "0003_note", ["0001_initial", "0002_price", "0003_note"]),
        ("after_rollback", "0003_note", ["0001_initial", "0002_price"]),
        ("after_reapply", "0003_note", ["0001_initial", "0002_price", "0003_note"]),
        ("after_steps", "0003_note", ["0001_initial", "0002_price", "0003_note"]),
    ]
    assert [moment for moment, name, _ in Moments.seen].count("after_steps") == 2  # one per migration
    assert results["0003_note"].rollback == "passed"


def test_after_a_failed_rollback_only_after_steps_is_left():
    Moments.seen = []
    # `migrate shop 0002_price`: 0002's apply, 0002's re-apply, then 0003's rollback
    database = FakeDatabase(LINEAR, {("shop", "0002_price", 3): failed_step("ProgrammingError: typo")})
    run_with([Moments], database, names=["0002_price", "0003_note"])
    moments = [moment for moment, name, _ in Moments.seen if name == "0003_note"]
    assert moments == ["before_apply", "around_apply: before", "around_apply: after, passed", "after_apply",
                       "before_rollback", "after_steps"]


class RetryOnce(Proof):
    """Wraps the apply and repeats it once when it fails (as an interrupted-apply proof would)."""

    name = "retry_once"

    def around_apply(self, test, apply):
        verdict = apply()
        return apply("again") if verdict.status == "failed" else verdict


def test_a_proof_around_the_apply_can_repeat_it_and_its_verdict_is_the_migration_s():
    database = FakeDatabase(LINEAR, {("shop", "0003_note", 1): failed_step("IntegrityError: null value")})
    results, log = run_with([RetryOnce], database)
    assert results["0003_note"].apply == "passed"
    assert results["0003_note"].error is None
    assert "shop.0003_note: apply again ... OK" in log
    # without the wrapper the same failure is the migration's verdict
    plain, _ = run_with([], FakeDatabase(LINEAR, {("shop", "0003_note", 1): failed_step("IntegrityError: null")}))
    assert plain["0003_note"].apply == "failed"


class OwnDatabaseProbe(Proof):
    """Asks for a scratch database in the state just before the migration."""

    name = "own_database"
    seen: list[tuple[str, list[str], bool]] = []

    def after_steps(self, test, scratch):
        with scratch.before(test.migration, "probe") as own:
            own.migrate("shop", test.migration.name)
            self.seen.append((test.migration.name, applied_names(own), own is test.database))


def test_a_proof_gets_a_database_of_its_own_built_just_before_the_migration_and_dropped_after():
    OwnDatabaseProbe.seen = []
    chain_database = FakeDatabase(LINEAR)
    opened: list[tuple[str, FakeDatabase]] = []

    def open_database(purpose):
        database = chain_database if not opened else FakeDatabase(LINEAR)
        opened.append((purpose, database))
        return database

    results, _ = run_with([OwnDatabaseProbe], chain_database, open_database, names=["0002_price", "0003_note"])
    assert [purpose for purpose, _ in opened] == ["shop", "probe", "probe"]
    assert [database.builds for _, database in opened[1:]] == [[["0002_price"]], [["0003_note"]]]
    # built to just before the migration, then the proof applied it there
    assert OwnDatabaseProbe.seen == [("0002_price", ["0001_initial", "0002_price"], False),
                                     ("0003_note", ["0001_initial", "0002_price", "0003_note"], False)]
    assert all(database.closed for _, database in opened[1:])
    assert [verdict for verdict in (results["0003_note"].apply, results["0003_note"].rollback)] == ["passed"] * 2


class Unbuildable(FakeDatabase):
    def build(self, app, targets, window):
        step, _ = super().build(app, targets, window)
        return failed_step("could not connect"), None


def test_an_own_database_that_cannot_be_built_is_information_not_a_failure():
    OwnDatabaseProbe.seen = []
    chain_database = FakeDatabase(LINEAR)
    spare = Unbuildable(LINEAR)

    def open_database(purpose):
        return chain_database if purpose == "shop" else spare

    results, _ = run_with([OwnDatabaseProbe], chain_database, open_database, names=["0002_price", "0003_note"])
    assert OwnDatabaseProbe.seen == []
    assert spare.closed
    result = results["0003_note"]
    assert (result.apply, result.rollback, result.reapply, result.problems) == ("passed", "passed", "passed", [])
    (note,) = [f.message for f in result.details if f.message.startswith("own_database:")]
    assert "state before 0003_note" in note and "could not connect" in note


def test_every_registered_proof_is_a_named_documented_unit():
    names = [proof.name for proof in PROOFS]
    assert len(set(names)) == len(names)
    for proof in PROOFS:
        assert issubclass(proof, Proof) and proof.name and (proof.__doc__ or "").strip(), proof
        assert proof.__doc__ != Proof.__doc__, f"{proof.__name__} says why it matters in its own docstring"


def test_a_release_start_names_what_the_release_created_since():
    start = ReleaseStart(migration=LINEAR.plan[1], tables={}, columns={"shop_item": {"id", "name"}},
                         old_models=None, seeded=SeedReport(), through=("0002_price",))
    later = {"shop_item": {"id", "name", "code"}, "shop_tag": {"id"}}
    assert start.new_in_release(later) == {("shop_item", "code"), ("shop_tag", None)}
    assert start.new_in_release({"shop_item": {"id"}}) == frozenset()  # a column gone is not new


def test_a_rename_in_the_release_is_not_taken_for_something_it_created():
    """When unsure, pre-release: a renamed table or column holds the values written before the
    release (RenameModel then RemoveField: the loss is the release's, not 'new')."""
    start = ReleaseStart(migration=LINEAR.plan[1], tables={}, columns={"shop_item": {"id", "name"}},
                         old_models=None, seeded=SeedReport(), through=("0002_price",))
    assert start.new_in_release({"shop_goods": {"id", "name"}}) == frozenset()  # RenameModel
    assert start.new_in_release({"shop_item": {"id", "title"}}) == frozenset()  # RenameField
    assert start.new_in_release({"shop_goods": {"id", "name"}, "shop_tag": {"id"}}) == frozenset()
