"""The default run on the host project, as `make migration-test` runs it: on the tool's throwaway
cluster (a superuser, so locks are observed), upstream's newest five migrations.

upstream.0020_alter_taxrate_rate (numeric(5,2) -> (6,3)) was shown with psql and an event trigger
to rewrite upstream_taxrate (table_rewrite reason 4); 0021 and 0022 build indexes on existing
tables with plain CREATE INDEX.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.migration_check.conftest import REPO_ROOT, RUN_TIMEOUT_S, SCRUBBED_ENV, TOOL

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    assert not (REPO_ROOT / ".env").exists(), "a .env would point the default run at another server"
    path = tmp_path_factory.mktemp("upstream") / "report.json"
    env = {key: value for key, value in os.environ.items()
           if key not in (*SCRUBBED_ENV, "DATABASE_URL", "HELLO_TEST_PG_SERVER_URL", "TEST_DATABASE_URL")}
    done = subprocess.run([sys.executable, str(TOOL), "--report-json", str(path)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Starting a throwaway PostgreSQL cluster" in done.stdout
    return json.loads(path.read_text())


def migration(report: dict, name: str) -> dict:
    (upstream,) = [app for app in report["apps"] if app["app"] == "upstream"]
    return next(m for m in upstream["migrations"] if m["name"] == name)


def test_the_throwaway_cluster_observes(report):
    assert report["observation"]["status"] == "observed" and report["observation"]["reason"] is None


def test_0020_rewrites_the_tax_rates(report):
    found = migration(report, "0020_alter_taxrate_rate")
    assert found["rewrites"] == ["upstream_taxrate"]
    (hazard,) = found["hazards"]
    assert hazard["rule"] == "table-rewrite" and hazard["table"] == "upstream_taxrate"
    assert "table_rewrite reason 4" in hazard["message"]


@pytest.mark.parametrize(("name", "table", "indexes"), [
    ("0021_payment_paid_on_idx", "upstream_payment", 1), ("0022_tag_slug", "upstream_tag", 2)])
def test_index_builds_on_existing_tables(report, name, table, indexes):
    hazards = migration(report, name)["hazards"]
    assert [(h["rule"], h["table"]) for h in hazards] == [("index-without-concurrently", table)] * indexes


@pytest.mark.parametrize("name", ["0023_alter_invoice_due_date", "0024_invoice_sent_at"])
def test_dropping_not_null_and_adding_a_nullable_column_are_no_hazards(report, name):
    found = migration(report, name)
    assert found["hazards"] == [] and found["locks"] == [{"table": "upstream_invoice", "mode": "AccessExclusiveLock"}]
