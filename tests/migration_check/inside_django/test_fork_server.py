"""fork_server.warm_up: in a real project's Django process it freezes the server's objects out of
the collector's view; turned off (TM_NO_WARMUP=1) it leaves them alone."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.migration_check.conftest import REPO_ROOT

# In the project's own `manage.py shell`, as the step server runs: what warm_up says, and how
# many objects the collector no longer tracks (gc's own count, read after it).
SHELL_CODE = """
import gc, os
from migration_check.inside_django.fork_server import preload, warm_up
preload()
print(gc.get_freeze_count())
print(warm_up(os.environ))
print(gc.get_freeze_count())
"""


def warm_up_in_django(extra_env: dict[str, str]) -> list[str]:
    env = {key: value for key, value in os.environ.items() if key != "TM_NO_WARMUP"}
    env.update({"DJANGO_SETTINGS_MODULE": "hello_world.settings",
                "DATABASE_URL": "postgres://nobody@127.0.0.1:9/never_connected", **extra_env})  # never connected
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", SHELL_CODE], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-3:]


def test_the_servers_objects_are_frozen():
    before, said, after = warm_up_in_django({})
    assert int(after) > int(before) + 10_000  # Django, the project, its migration modules
    assert said == f"froze {after} objects"


def test_turned_off_nothing_is_frozen():
    before, said, after = warm_up_in_django({"TM_NO_WARMUP": "1"})
    assert said == "skipped: TM_NO_WARMUP is set"
    assert after == before
