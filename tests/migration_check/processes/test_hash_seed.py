"""Why the steps get a fixed PYTHONHASHSEED, shown with plain manage.py on this repository's project.

Django re-renders a migration's models through sets of model keys (`ProjectState` reloads), so
the order in which `post_migrate` creates the content types (and permissions) of the models one
`migrate` adds follows Python's string hashing, random per process. `upstream.0001` adds four
related models: with different seeds their content types get different ids; with one seed, the
same ones. The steps therefore get PYTHONHASHSEED=0 (`steps.DJANGO_ORDER_SEED`) unless the user
set it, so that a run's data (and its `data_fingerprints`) is the same run after run.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator

import pytest

from migration_check.log import Log
from migration_check.processes.steps import DJANGO_ORDER_SEED, StepRunner
from tests.migration_check.conftest import REPO_ROOT, PgAdmin

MANAGE = REPO_ROOT / "manage.py"
SETTINGS = "hello_world.settings"


@pytest.fixture(scope="module")
def contrib_template(pg_admin: PgAdmin) -> Iterator[str]:
    """A database with contenttypes and auth migrated, upstream not yet: cloned per run."""
    name = f"tm_hashseed_{secrets.token_hex(4)}"
    pg_admin.create_database(name)
    for app in ("contenttypes", "auth"):
        manage(pg_admin.url_for(name), ["migrate", "--noinput", app], {"PYTHONHASHSEED": "0"})
    yield name
    pg_admin.drop_database(name)


def manage(url: str, args: list[str], extra: dict[str, str]) -> None:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": SETTINGS, "PYTHONWARNINGS": "ignore", **extra}
    done = subprocess.run([sys.executable, str(MANAGE), *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


def content_type_order(pg_admin: PgAdmin, template: str, migrate) -> list[str]:
    """upstream's content types in id order after `migrate upstream 0001` (run by `migrate`)
    on a fresh clone of the template."""
    name = f"tm_hashseed_{secrets.token_hex(4)}"
    pg_admin.rows(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        migrate(pg_admin.url_for(name))
        return [row[0] for row in pg_admin.rows(
            "SELECT model FROM django_content_type WHERE app_label = 'upstream' ORDER BY id", dbname=name)]
    finally:
        pg_admin.drop_database(name)


def with_seed(seed: str):
    return lambda url: manage(url, ["migrate", "--noinput", "upstream", "0001"], {"PYTHONHASHSEED": seed})


def test_django_orders_the_content_types_one_migrate_adds_by_the_hash_seed(pg_admin, contrib_template):
    orders = {seed: content_type_order(pg_admin, contrib_template, with_seed(seed)) for seed in ("1", "2", "3")}
    assert all(sorted(order) == ["client", "invoice", "invoiceline", "project"] for order in orders.values()), orders
    assert len({tuple(order) for order in orders.values()}) > 1, orders
    assert content_type_order(pg_admin, contrib_template, with_seed("1")) == orders["1"]


def test_the_steps_get_a_fixed_seed_unless_the_user_set_one(monkeypatch):
    runner = StepRunner(MANAGE, SETTINGS, 60, Log(0))
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    assert runner.environment("postgresql://x/y")["PYTHONHASHSEED"] == DJANGO_ORDER_SEED == "0"
    monkeypatch.setenv("PYTHONHASHSEED", "random")
    assert runner.environment("postgresql://x/y")["PYTHONHASHSEED"] == "random"


def test_a_step_without_a_seed_of_the_users_orders_them_as_the_fixed_seed_does(pg_admin, contrib_template,
                                                                               monkeypatch):
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    runner = StepRunner(MANAGE, SETTINGS, 60, Log(0))

    def step(url: str) -> None:
        result = runner.run(["migrate", "--noinput", "upstream", "0001"], url)
        assert result.ok, result.error_summary()

    expected = content_type_order(pg_admin, contrib_template, with_seed(DJANGO_ORDER_SEED))
    assert [content_type_order(pg_admin, contrib_template, step) for _ in range(2)] == [expected, expected]
