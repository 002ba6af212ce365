"""The pure side of build once, clone many (chain/templates.py): which state every chain starts
from, and the `migrate` targets each build runs, staged through it, with and without a clone.

The expected targets are written out by hand from the graphs below.
"""

from __future__ import annotations

from migration_check.chain.templates import (
    Route,
    clone_strategy,
    common_base,
    path_to,
    route_through,
    template_tree,
    worth_a_template,
)
from tests.migration_check.fake_database import migration, project_of

# shop: 0001 -> 0002 -> 0003 -> 0004; blog: 0001 -> 0002 -> 0003, blog.0002 needs shop.0002.
PROJECT = project_of(
    migration("shop", "0001_initial"),
    migration("shop", "0002_price", ("shop", "0001_initial")),
    migration("blog", "0001_initial"),
    migration("blog", "0002_link", ("blog", "0001_initial"), ("shop", "0002_price")),
    migration("shop", "0003_note", ("shop", "0002_price")),
    migration("blog", "0003_tags", ("blog", "0002_link")),
    migration("shop", "0004_index", ("shop", "0003_note")),
)
SHOP = {m.name: m for m in PROJECT.plan if m.app == "shop"}
BLOG = {m.name: m for m in PROJECT.plan if m.app == "blog"}
TEMPLATE = "tm_scratch_0000abcd_1_template"


def test_the_base_leaves_out_every_window_and_what_depends_on_it():
    base = common_base(PROJECT, [[SHOP["0003_note"], SHOP["0004_index"]], [BLOG["0003_tags"]]])
    assert base == {("shop", "0001_initial"), ("shop", "0002_price"), ("blog", "0001_initial"),
                    ("blog", "0002_link")}


def test_a_window_another_app_depends_on_takes_that_app_out_too():
    # blog.0002 needs shop.0002: testing shop.0002 means no database starts with blog.0002 applied
    base = common_base(PROJECT, [[SHOP["0002_price"]]])
    assert base == {("shop", "0001_initial"), ("blog", "0001_initial")}


BASE = frozenset({("shop", "0001_initial"), ("shop", "0002_price"), ("blog", "0001_initial"), ("blog", "0002_link")})
# The state before shop.0004: everything but it.
BEFORE_SHOP_0004 = [("blog", "0003_tags"), ("shop", "0003_note")]


def test_a_clone_migrates_only_what_the_template_lacks():
    assert route_through(PROJECT, [BASE], BEFORE_SHOP_0004, TEMPLATE, cloned=1) == Route(
        TEMPLATE, [("shop", "0003_note"), ("blog", "0003_tags")])


def test_without_a_template_the_same_commands_run_from_an_empty_database():
    """--no-clone: the base's targets first (its one leaf: blog.0002 needs shop.0002), a stage of
    their own (the template's one `migrate`), then exactly what a clone runs."""
    assert route_through(PROJECT, [BASE], BEFORE_SHOP_0004) == Route(
        None, [("blog", "0002_link"), ("shop", "0003_note"), ("blog", "0003_tags")], (1,))


def test_a_state_equal_to_the_base_needs_no_migrate_after_the_clone():
    state = [("shop", "0002_price"), ("blog", "0002_link")]
    assert route_through(PROJECT, [BASE], state, TEMPLATE, cloned=1) == Route(TEMPLATE, [])


def test_a_state_without_the_whole_base_is_built_from_scratch_as_asked():
    targets = [("shop", "0002_price"), ("blog", "0001_initial")]  # blog.0002 is in the base, not here
    assert route_through(PROJECT, [BASE], targets, TEMPLATE, cloned=1) == Route(None, targets)


def test_targets_outside_the_plan_stay_last_in_their_order():
    """A squash's replaced migrations (no node of the plan) come after the planned targets."""
    targets = [("blog", "0003_tags"), ("shop", "0003_note"), ("shop", "0003a_replaced"), ("shop", "0003b_replaced")]
    assert route_through(PROJECT, [BASE], targets, TEMPLATE, cloned=1) == Route(
        TEMPLATE, [("shop", "0003_note"), ("blog", "0003_tags"),
                   ("shop", "0003a_replaced"), ("shop", "0003b_replaced")])


def test_an_empty_base_changes_nothing():
    assert route_through(PROJECT, [], BEFORE_SHOP_0004, TEMPLATE, cloned=1) == Route(None, BEFORE_SHOP_0004)


def test_a_template_needs_two_chains_and_a_base():
    for mode in ("auto", "always"):
        assert [worth_a_template(n, 900, mode) for n in (0, 1, 2, 20)] == [False, False, True, True]
        assert worth_a_template(20, 0, mode) is False


def test_by_default_a_template_must_save_enough_builds():
    """upstream's default run: a base of 37 migrations, two chains (one build saved): not worth
    a step server's start and a clone; 20 apps x 50 migrations at depth 5 (900, 20 chains): worth."""
    assert worth_a_template(2, 37) is False
    assert worth_a_template(20, 900) is True
    assert worth_a_template(2, 37, "always") is True


def test_never_means_never():
    assert worth_a_template(20, 900, "never") is False


def test_the_copy_strategy_is_named_from_postgresql_15_on():
    assert clone_strategy(140011) is None
    assert clone_strategy(150010) in ("FILE_COPY", "WAL_LOG")


def test_a_state_built_to_its_leaves_routes_to_the_clone():
    targets = [("blog", "0002_link"), ("shop", "0003_note")]  # the leaves of BASE + shop.0003
    assert route_through(PROJECT, [BASE], targets, TEMPLATE, cloned=1) == Route(
        TEMPLATE, [("shop", "0003_note")])


# Four independent apps a..d: 0001 .. 0003 each; every window is the app's 0003. Written out by
# hand: the root holds every 0001 and 0002 (8); the half {a, b} adds c.0003 and d.0003, the half
# {c, d} adds a.0003 and b.0003; a quarter {a} would add b.0003 to its half.
FOUR = project_of(*[m for app in "abcd" for m in (
    migration(app, "0001"), migration(app, "0002", (app, "0001")), migration(app, "0003", (app, "0002")))])
FOUR_WINDOWS = [[m for m in FOUR.plan if m.app == app and m.name == "0003"] for app in "abcd"]
ROOT = frozenset((app, name) for app in "abcd" for name in ("0001", "0002"))
HALF_AB = ROOT | {("c", "0003"), ("d", "0003")}
HALF_CD = ROOT | {("a", "0003"), ("b", "0003")}


def tree_of(chains: list[int], mode: str) -> list[tuple]:
    return [(n.state, n.parent, n.chains) for n in template_tree(FOUR, FOUR_WINDOWS, chains, mode)]


def test_the_tree_splits_the_windows_in_halves_while_a_template_is_worth_it():
    # a half of two chains adds two migrations: worth it when asked always; a single chain never
    assert tree_of([1, 1, 1, 1], "always") == [(ROOT, None, 4), (HALF_AB, 0, 2), (HALF_CD, 0, 2)]
    # auto: (chains - 1) x migrations added >= 100 for the root, >= 200 for a template cloned from another
    assert tree_of([60, 60, 60, 60], "auto") == [(ROOT, None, 240), (HALF_AB, 0, 120), (HALF_CD, 0, 120)]
    assert tree_of([30, 30, 30, 30], "auto") == [(ROOT, None, 120)]  # a half: 59 x 2 < 200
    assert tree_of([3, 3, 3, 3], "auto") == []  # the root: 11 x 8 < 100
    assert tree_of([1, 1, 1, 1], "never") == []


def test_a_chain_goes_down_to_the_deepest_template_its_state_contains():
    nodes = template_tree(FOUR, FOUR_WINDOWS, [1, 1, 1, 1], "always")
    before_a = frozenset(m.key for m in FOUR.plan) - {("a", "0003")}
    assert path_to(nodes, before_a) == [0, 1]
    assert path_to(nodes, before_a - {("c", "0003")}) == [0]  # not the half's: c.0003 is missing
    assert path_to(nodes, frozenset({("a", "0001")})) == []


def test_a_clone_of_the_deepest_template_migrates_only_the_rest():
    before_a = [("b", "0003"), ("c", "0003"), ("d", "0003"), ("a", "0002")]
    assert route_through(FOUR, [ROOT, HALF_AB], before_a, "T1", cloned=2) == Route("T1", [("b", "0003")])


def test_without_its_template_a_build_runs_the_same_stages_from_the_root_or_from_empty():
    """--no-clone, or a half whose template could not be built: the stages the templates ran,
    then the rest, each one `migrate`."""
    before_a = [("b", "0003"), ("c", "0003"), ("d", "0003"), ("a", "0002")]
    root_targets = [("a", "0002"), ("b", "0002"), ("c", "0002"), ("d", "0002")]
    assert route_through(FOUR, [ROOT, HALF_AB], before_a) == Route(
        None, [*root_targets, ("c", "0003"), ("d", "0003"), ("b", "0003")], (4, 6))
    assert route_through(FOUR, [ROOT, HALF_AB], before_a, "T0", cloned=1) == Route(
        "T0", [("c", "0003"), ("d", "0003"), ("b", "0003")], (2,))
