"""fork_server.warm_up: renders the whole graph once on a real project, and falls back to the plain
path (nothing rendered, the steps unchanged) when it is turned off or Django's API is not there."""

from __future__ import annotations

import os
import subprocess
import sys

from migration_check.inside_django.fork_server import warm_up
from migration_check.inside_django.protocol import NO_WARMUP_ENV
from tests.migration_check.conftest import REPO_ROOT

# In the project's own `manage.py shell`: the warm-up's word, the historical models Django's
# registry has (the project's migrations are complete, so the last state has the same models),
# and how many objects the collector no longer scans.
SHELL_CODE = """
import gc
from django.apps import apps
from migration_check.inside_django.fork_server import preload, warm_up
print(warm_up(preload(), {}))
print(len(apps.get_models(include_auto_created=True)))
print(gc.get_freeze_count())
"""


def test_a_real_project_is_rendered_once_and_its_heap_frozen():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hello_world.settings",
           "DATABASE_URL": "postgres://nobody@127.0.0.1:9/never_connected"}  # warm-up connects nowhere
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", SHELL_CODE], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    said, models, frozen = done.stdout.strip().splitlines()[-3:]
    assert said == f"rendered {models} historical models"
    assert int(frozen) > 10_000


def test_turned_off_it_does_nothing():
    class Loader:
        def project_state(self):
            raise AssertionError("rendered although turned off")

    assert warm_up(Loader(), {NO_WARMUP_ENV: "1"}) == "skipped: TM_NO_WARMUP is set"  # type: ignore[arg-type]


def test_without_project_state_it_skips_rendering():
    assert warm_up(object(), {}) == "skipped: MigrationLoader.project_state is missing"  # type: ignore[arg-type]


def test_a_graph_that_cannot_be_rendered_is_left_to_the_steps():
    class Loader:
        def project_state(self):
            raise ValueError("Lookup failed for model referenced by field app.Item.other: app.Gone")

    assert warm_up(Loader(), {}) == "skipped: rendering failed (ValueError)"  # type: ignore[arg-type]
