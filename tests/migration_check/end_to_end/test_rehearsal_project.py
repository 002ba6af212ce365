"""End to end: the deploy rehearsal on rehearsal_project (each case shown real, without the
tool, in fixture_sanity/test_rehearsal_project.py).

Three runs side by side, as a superuser (the lock observation needs event triggers): one with the whole
rehearsal (--volume, traffic, --long-query, --table-sizes, --max-blocking), one with the same
--volume and no rehearsal (the verdicts and the data proof's fingerprints must not change), and
one of the `flat` app with the settings that set a lock_timeout. The plain run keeps the retry
proof (the non-atomic twins are written to be retried safely); the other two leave it out with
`--no-retry` to stay short (the retry proof has its own fixture). Timing assertions compare
cases with each other (orderings and classes), never with absolute times, so that a loaded
machine does not decide them.
"""

from __future__ import annotations

import json
from functools import partial

import pytest

from tests.migration_check.conftest import ToolRun, assert_cleaned_up, side_by_side

pytestmark = pytest.mark.slow

VOLUME = "600"
PRODUCTION = 2_000_000
TABLES = ("rewrite_counter", "flat_member", "backfill_tag", "backfill_split_tag", "index_event",
          "index_concurrently_event")
VERDICTS = ("apply", "rollback", "reapply", "schema", "data", "compat", "acknowledged", "rewrites", "locks",
            "statements")
WRITES = ("insert", "update", "delete_inserted")


@pytest.fixture(scope="module")
def all_runs(run_tool, tmp_path_factory) -> dict[str, ToolRun]:
    """The three runs, side by side: the rehearsal mostly waits (its traffic queues behind locks
    and --long-query reads), so the others use the time; its timing assertions compare cases
    within the rehearsed run."""
    sizes = tmp_path_factory.mktemp("rehearsal-sizes") / "sizes.json"
    sizes.write_text(json.dumps(dict.fromkeys(TABLES, PRODUCTION)))
    arguments = {
        "rehearsed": (("--volume", VOLUME, "--traffic-sessions", "2", "--long-query", "1", "--table-sizes", str(sizes),
                       "--volume-max", VOLUME, "--max-blocking", "30", "--no-retry"), {}),
        "plain": (("--volume", VOLUME, "--no-traffic"), {}),
        "lock_timeout": (("--app", "flat", "--long-query", "3", "--traffic-sessions", "1", "--no-retry"),
                         {"settings": "rehearsal_project.settings_lock_timeout"}),
    }
    return side_by_side({name: partial(run_tool, "rehearsal_project", *extra, superuser=True, **options)
                         for name, (extra, options) in arguments.items()})


@pytest.fixture(scope="module")
def runs(all_runs) -> tuple[ToolRun, ToolRun]:
    return all_runs["rehearsed"], all_runs["plain"]


@pytest.fixture(scope="module")
def lock_timeout_run(all_runs) -> ToolRun:
    return all_runs["lock_timeout"]


def impact(run: ToolRun, app: str, name: str) -> list[dict]:
    return run.migration(app, name)["impact"]


def longest_wait(run: ToolRun, app: str, name: str) -> float:
    """The longest wait of any of the old release's queries on the migration's tables. Not only
    the writes: each session runs one query at a time, so when every session is queued on a read
    behind the lock, no write starts inside the window (the CI run that showed it: the in-lock
    backfill's writes waited 5 ms, the batches' 7 ms, while its reads waited the whole window)."""
    traffic = run.migration(app, name)["traffic"]
    assert {stat["kind"] for stat in traffic} >= set(WRITES), traffic
    return max(stat["max_wait_s"] for stat in traffic)


def test_runs_clean_up(runs, lock_timeout_run):
    for run in (*runs, lock_timeout_run):
        assert_cleaned_up(run)
        assert run.leftover_backends == [], run.context()


def test_rehearsal_changes_no_verdict_and_no_finding(runs):
    rehearsed, plain = runs
    for app in rehearsed.require_report()["apps"]:
        for migration in app["migrations"]:
            other = plain.migration(app["app"], migration["name"])
            assert {k: migration[k] for k in VERDICTS} == {k: other[k] for k in VERDICTS}, migration["name"]
            chain_findings = [d for d in migration["details"] if d["kind"] != "rehearsal"]
            assert chain_findings == other["details"], migration["name"]
            assert other["traffic"] == [] and other["impact"] == []
            assert other["blocking"] == "off" and other["rehearsal_problems"] == []


def test_rehearsal_changes_no_data_fingerprint(runs):
    """The rehearsal works on clones: the rows the data proof fingerprinted on the chain's
    database (seeded before and after each migration, and after its rollback) are the same
    with and without it, digest for digest. One digest differs between any two runs, and shows
    that the comparison sees a change: `rewrite`'s column has a volatile default
    (gen_random_uuid()), so the rows it filled differ after its apply (post_release) and are
    gone again after its rollback."""
    rehearsed, plain = runs
    compared, differ = 0, []
    for app in rehearsed.require_report()["apps"]:
        for migration in app["migrations"]:
            digests = migration["data_fingerprints"]
            other = plain.migration(app["app"], migration["name"])["data_fingerprints"]
            assert set(digests) == set(other) == {"pre_release", "post_release", "rolled_back"}, migration["name"]
            differ += [f"{app['app']}.{migration['name']} {moment}" for moment in sorted(digests)
                       if digests[moment] != other[moment]]
            compared += len(digests)
    assert differ == ["rewrite.0002_counter_token post_release"], differ
    assert compared == 3 * sum(len(app["migrations"]) for app in rehearsed.require_report()["apps"])


def test_the_non_atomic_twins_are_safe_to_retry(runs):
    _, plain = runs
    for app, name in (("index_concurrently", "0002_event_index_conc_happened_idx"),
                      ("backfill_split", "0003_fill_tag_slug")):
        assert plain.migration(app, name)["retry"] == "passed", plain.context()


def test_only_the_blocking_budget_fails_the_run(runs):
    rehearsed, plain = runs
    assert plain.returncode == 0, plain.context()
    assert rehearsed.returncode == 1, rehearsed.context()
    # the problem lines only (the list of migrations without every verdict follows them)
    failed = "\n".join(line for line in rehearsed.stdout.split("FAILED:")[1].splitlines() if line.startswith("  - "))
    assert "backfill.0002_tag_slug: blocks writes longer than --max-blocking 30 s: ACCESS EXCLUSIVE on " \
           "backfill_tag (rows written): estimated" in failed, failed
    assert "at 2,000,000 rows" in failed
    # The rewrite grows with rows too, but whether its estimate passes 30 s depends on how fast this
    # machine copied a few hundred rows: the run must fail on it exactly when its estimate says so.
    (rewrite,) = impact(rehearsed, "rewrite", "0002_counter_token")
    assert (rewrite["estimated_held_s"] > 30) == ("rewrite.0002_counter_token: blocks writes" in failed), \
        (rewrite, failed)
    for twin in ("flat.0002", "backfill_split.", "index_concurrently."):
        assert twin not in failed, failed
    # the verdict table's `blocking` says the same as the problem lines
    assert rehearsed.migration("backfill", "0002_tag_slug")["blocking"] == "exceeds"
    assert rehearsed.migration("flat", "0002_member_nickname")["blocking"] == "within"
    assert rehearsed.migration("backfill_split", "0003_fill_tag_slug")["blocking"] == "within"


def test_backfill_in_one_transaction_grows_and_the_catalog_change_is_flat(runs):
    rehearsed, _ = runs
    (backfill,) = impact(rehearsed, "backfill", "0002_tag_slug")
    (flat,) = impact(rehearsed, "flat", "0002_member_nickname")
    (rewrite,) = impact(rehearsed, "rewrite", "0002_counter_token")
    assert (backfill["basis"], flat["basis"]) == ("fitted", "flat")
    assert rewrite["basis"] in ("fitted", "proportional")
    for found in (backfill, flat, rewrite):
        assert len(found["measured"]) == 3 and found["production_rows"] == PRODUCTION
        rows = [rows for rows, _ in found["measured"]]
        assert rows[-1] >= 10 * rows[0]
    assert flat["estimated_held_s"] == max(held for _, held in flat["measured"])
    assert backfill["estimated_held_s"] > 100 * max(held for _, held in backfill["measured"])
    assert rewrite["estimated_held_s"] > flat["estimated_held_s"]


def test_split_backfill_holds_no_lock_and_the_traffic_waits_less(runs):
    rehearsed, _ = runs
    assert impact(rehearsed, "backfill_split", "0003_fill_tag_slug") == []
    # The in-lock backfill queues every query behind the --long-query (1 s) and then its own hold;
    # the batches take row locks only, which reads never wait for.
    assert longest_wait(rehearsed, "backfill", "0002_tag_slug") > 5 * longest_wait(rehearsed, "backfill_split",
                                                                                   "0003_fill_tag_slug")


def test_index_without_concurrently_blocks_writes_and_concurrently_does_not(runs):
    rehearsed, _ = runs
    (plain_index,) = impact(rehearsed, "index", "0002_event_index_happened_idx")
    assert plain_index["mode"] == "ShareLock"
    assert impact(rehearsed, "index_concurrently", "0002_event_index_conc_happened_idx") == []
    hazard = rehearsed.migration("index", "0002_event_index_happened_idx")["hazards"][0]
    assert "(rehearsal: SHARE on index_event" in hazard["message"]


def test_long_query_queues_the_traffic_behind_the_migration(runs):
    rehearsed, _ = runs
    found = [d for d in rehearsed.migration("flat", "0002_member_nickname")["details"] if d["kind"] == "rehearsal"]
    assert [d["rule"] for d in found] == ["rehearsal-lock-queue"], found
    assert "behind a 1 s read transaction" in found[0]["message"]
    # the concurrent index build takes no lock that the long read is in the way of
    concurrently = rehearsed.migration("index_concurrently", "0002_event_index_conc_happened_idx")
    assert not [d for d in concurrently["details"] if d.get("rule") == "rehearsal-lock-queue"]


def test_lock_timeout_in_the_settings_fails_fast_as_a_finding(lock_timeout_run):
    migration = lock_timeout_run.migration("flat", "0002_member_nickname")
    assert migration["apply"] == "passed" and lock_timeout_run.returncode == 0, lock_timeout_run.context()
    found = [d for d in migration["details"] if d["kind"] == "rehearsal"]
    assert [d["rule"] for d in found] == ["rehearsal-lock-timeout"], found
    assert "failed fast on the settings' lock_timeout behind a 3 s read transaction" in found[0]["message"]
