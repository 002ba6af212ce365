"""Regenerate the captured `showmigrations` outputs in this folder (run from the repository root).

    .venv/bin/python tests/migration_check/project/data/capture_showmigrations.py

It starts a throwaway PostgreSQL cluster with the migration tool's own EphemeralCluster, creates
scratch databases on it, and captures real output (stdout and stderr together, as a user sees it):

- from this repository's manage.py: before `migrate`, part-way (upstream at 0010), and after;
- from a small project generated in a temporary folder: app `library` with a squashed migration
  (`squashmigrations`) and a merge migration (`makemigrations --merge`), app `shelf` depending
  on it, models without DEFAULT_AUTO_FIELD (so system check warnings appear in the output), a
  partly applied squash (only the replaced 0001 applied), a squash whose originals are all applied
  but which is not recorded itself ([-] in list mode), and an empty INSTALLED_APPS
  ("(no migrations)").

Each file starts with `# ` header lines saying how it was made; tests strip them before parsing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[4]
DATA = Path(__file__).resolve().parent


def load_tool():
    spec = importlib.util.spec_from_file_location("test_migrations", REPO_ROOT / "scripts" / "test_migrations.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["test_migrations"] = module
    spec.loader.exec_module(module)
    return module


def run(argv: list[str], cwd: Path, url: str, settings: str) -> str:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env.update(DATABASE_URL=url, DJANGO_SETTINGS_MODULE=settings, PYTHONWARNINGS="ignore")
    result = subprocess.run([sys.executable, "manage.py", *argv], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=300)
    if result.returncode != 0:
        raise SystemExit(f"{argv} failed:\n{result.stdout}\n{result.stderr}")
    return result.stderr + result.stdout


def save(name: str, how: str, output: str) -> None:
    header = "".join(f"# {line}\n" for line in how.strip().splitlines())
    (DATA / name).write_text(header + output, encoding="utf-8")
    print(f"wrote {name}")


MANAGE_PY = """\
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tinysite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""

SETTINGS = """\
import dj_database_url

SECRET_KEY = "capture-only"
INSTALLED_APPS = ["library", "shelf"]
DATABASES = {"default": dj_database_url.config()}
USE_TZ = True
"""

LIBRARY_MODELS = [
    """
    from django.db import models

    class Book(models.Model):
        title = models.CharField(max_length=100)
    """,
    """
    from django.db import models

    class Book(models.Model):
        title = models.CharField(max_length=100)
        isbn = models.CharField(max_length=13, default="")
    """,
    """
    from django.db import models

    class Book(models.Model):
        title = models.CharField(max_length=200)
        isbn = models.CharField(max_length=13, default="")
    """,
]

BRANCH = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("library", "0003_alter_book_title")]
    operations = [migrations.AddField("book", "{field}", models.IntegerField(default=0))]
"""

FINAL_MODELS = """
from django.db import models

class Book(models.Model):
    title = models.CharField(max_length=200)
    isbn = models.CharField(max_length=13, default="")
    pages = models.IntegerField(default=0)
    year = models.IntegerField(default=0)
"""

SHELF_MODELS = """
from django.db import models

class Shelf(models.Model):
    books = models.ManyToManyField("library.Book")
"""


def build_tiny_project(root: Path, url: str) -> None:
    (root / "manage.py").write_text(MANAGE_PY)
    for package in ("tinysite", "library", "shelf"):
        (root / package).mkdir()
        (root / package / "__init__.py").write_text("")
    (root / "tinysite" / "settings.py").write_text(SETTINGS)
    (root / "tinysite" / "settings_empty.py").write_text(SETTINGS.replace('["library", "shelf"]', "[]"))
    (root / "shelf" / "models.py").write_text("")
    for models in LIBRARY_MODELS:
        (root / "library" / "models.py").write_text(textwrap.dedent(models))
        run(["makemigrations", "library", "--no-color"], root, url, "tinysite.settings")
    run(["squashmigrations", "library", "0003", "--noinput", "--no-color"], root, url, "tinysite.settings")
    for number, name in (("0004", "pages"), ("0004", "year")):
        (root / "library" / "migrations" / f"{number}_book_{name}.py").write_text(BRANCH.format(field=name))
    (root / "library" / "models.py").write_text(textwrap.dedent(FINAL_MODELS))
    run(["makemigrations", "--merge", "--noinput", "--no-color"], root, url, "tinysite.settings")
    (root / "shelf" / "models.py").write_text(textwrap.dedent(SHELF_MODELS))
    run(["makemigrations", "shelf", "--no-color"], root, url, "tinysite.settings")


def main() -> None:
    tool = load_tool()
    bindir = tool.find_postgres_bindir()
    with tool.EphemeralCluster(bindir) as cluster:
        server = tool.Server(cluster.address, ephemeral=True)
        try:
            repo_url = server.url_for(server.create_database("capture_repo"))
            v2 = ["showmigrations", "--plan", "-v", "2", "--no-color"]
            how = "DATABASE_URL=<empty scratch database> python manage.py showmigrations --plan -v 2 --no-color\n"
            save("repo_plan_v2_before_migrate.txt", "this repository's manage.py (hello_world settings)\n" + how,
                 run(v2, REPO_ROOT, repo_url, "hello_world.settings"))
            run(["migrate", "upstream", "0010", "--noinput"], REPO_ROOT, repo_url, "hello_world.settings")
            save("repo_plan_partial.txt",
                 "this repository's manage.py (hello_world settings), after `migrate upstream 0010`\n"
                 "DATABASE_URL=<scratch database> python manage.py showmigrations --plan --no-color",
                 run(["showmigrations", "--plan", "--no-color"], REPO_ROOT, repo_url, "hello_world.settings"))
            run(["migrate", "--noinput"], REPO_ROOT, repo_url, "hello_world.settings")
            save("repo_plan_v2_after_migrate.txt",
                 "this repository's manage.py (hello_world settings), after `migrate`\n" + how,
                 run(v2, REPO_ROOT, repo_url, "hello_world.settings"))

            with tempfile.TemporaryDirectory(prefix="tm-capture-") as folder:
                root = Path(folder)
                url = server.url_for(server.create_database("capture_tiny"))
                build_tiny_project(root, url)
                made = ("a generated project (see build_tiny_project in capture_showmigrations.py): library with\n"
                        "0001_squashed_0003 (squashmigrations) and 0005_merge (makemigrations --merge), shelf\n"
                        "depending on library; no DEFAULT_AUTO_FIELD, so system check warnings come first\n")
                save("squash_merge_plan_v2_before_migrate.txt", made + "empty database\n" + how,
                     run(v2, root, url, "tinysite.settings"))
                squash = next((root / "library" / "migrations").glob("0001_squashed_*.py"))
                parked = root / squash.name
                shutil.move(squash, parked)
                run(["migrate", "library", "0001_initial", "--noinput"], root, url, "tinysite.settings")
                shutil.move(parked, squash)
                save("squash_merge_plan_v2_partial_squash.txt",
                     made + "only library.0001_initial applied (squash partly applied: originals are planned)\n" + how,
                     run(v2, root, url, "tinysite.settings"))
                save("squash_merge_list_partial_squash.txt",
                     made + "only library.0001_initial applied; list mode, not --plan\n"
                     "DATABASE_URL=<scratch database> python manage.py showmigrations --no-color",
                     run(["showmigrations", "--no-color"], root, url, "tinysite.settings"))
                run(["migrate", "--noinput"], root, url, "tinysite.settings")
                save("squash_merge_plan_v2_after_migrate.txt", made + "after `migrate`\n" + how,
                     run(v2, root, url, "tinysite.settings"))
                save("squash_merge_plan_after_migrate.txt",
                     made + "after `migrate`\nDATABASE_URL=<scratch database> python manage.py showmigrations --plan "
                     "--no-color", run(["showmigrations", "--plan", "--no-color"], root, url, "tinysite.settings"))
                # Every replaced migration applied but the squash itself not recorded: list mode
                # marks it [-] ("Run 'manage.py migrate' to finish recording").
                connection = server.connect(url.rsplit("/", 1)[1])
                with connection.cursor() as cursor:
                    cursor.execute("DELETE FROM django_migrations WHERE app = 'library' AND name LIKE '%squashed%'")
                connection.close()
                save("squash_unrecorded_list.txt",
                     made + "after `migrate`, then the squash's row deleted from django_migrations; list mode\n"
                     "DATABASE_URL=<scratch database> python manage.py showmigrations --no-color",
                     run(["showmigrations", "--no-color"], root, url, "tinysite.settings"))
                save("squash_unrecorded_plan_v2.txt",
                     made + "after `migrate`, then the squash's row deleted from django_migrations\n" + how,
                     run(v2, root, url, "tinysite.settings"))
                save("no_migrations_plan.txt",
                     "the same generated project with settings INSTALLED_APPS = []\n"
                     "DATABASE_URL=<scratch database> python manage.py showmigrations --plan -v 2 --no-color "
                     "--settings tinysite.settings_empty",
                     run(v2, root, url, "tinysite.settings_empty"))
        finally:
            server.drop_all_scratch()
            server.close()


if __name__ == "__main__":
    main()
