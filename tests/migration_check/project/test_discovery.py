"""Discovery and app selection: project_from_probe, select_apps, windows and dependency closures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from migration_check.config import MARKER_ALLOW_DATA_LOSS, MARKER_ALLOW_IRREVERSIBLE
from migration_check.errors import UsageError
from migration_check.inside_django.protocol import MARKER, bootstrap_code, parse_response
from migration_check.project.discovery import (
    AppInfo,
    OperationInfo,
    dependency_closure,
    dependents_closure,
    effective_applied,
    forward_targets,
    is_project_app,
    operation_lines,
    project_from_probe,
    select_apps,
    window_of,
)

REPO_ROOT = Path(__file__).resolve().parents[3]


def probe_app(label: str, path: Path, has_migrations: bool = True, name: str | None = None) -> dict:
    return {"label": label, "name": name or label, "path": str(path), "has_migrations": has_migrations}


def probe_migration(app: str, name: str, deps=(), file=None, operations=(), replaces=()) -> dict:
    return {"app": app, "name": name, "file": str(file) if file else None,
            "dependencies": [list(d) for d in deps], "replaces": [list(r) for r in replaces],
            "operations": [{"type": t, "reversible": r, "description": d} for t, r, d in operations]}


@pytest.fixture
def project_dir(tmp_path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    return folder


@pytest.fixture
def project(project_dir):
    """A project as the probe describes it: two own apps (one without migrations), Django contrib,
    a site-packages app, an app outside the project folder, and a virtualenv inside it."""
    site = project_dir.parent / "venv" / "lib" / "python3.12" / "site-packages"
    data = {
        "vendor": "postgresql",
        "apps": [
            probe_app("contenttypes", site / "django" / "contrib" / "contenttypes", name="django.contrib.contenttypes"),
            probe_app("shop", project_dir / "shop"),
            probe_app("blog", project_dir / "blog", has_migrations=False),
            probe_app("thirdparty", site / "thirdparty"),
            probe_app("vendored", project_dir / ".venv" / "lib" / "python3.12" / "site-packages" / "vendored"),
            probe_app("outside", project_dir.parent / "elsewhere" / "outside"),
            probe_app("billing", project_dir / "apps" / "billing", name="apps.billing"),
        ],
        "migrations": [
            probe_migration("contenttypes", "0001_initial"),
            probe_migration("shop", "0001_initial", [("contenttypes", "0001_initial")]),
            probe_migration("shop", "0002_item_price", [("shop", "0001_initial")]),
            probe_migration("billing", "0001_initial", [("shop", "0002_item_price")]),
            probe_migration("shop", "0003_item_note", [("shop", "0002_item_price")],
                            operations=[("AddField", True, "Add field note to item"),
                                        ("RunPython", False, "Raw Python operation")]),
            probe_migration("billing", "0002_invoice_item", [("billing", "0001_initial"), ("shop", "0003_item_note")]),
            probe_migration("thirdparty", "0001_initial"),
            probe_migration("vendored", "0001_initial"),
            probe_migration("outside", "0001_initial"),
        ],
    }
    return project_from_probe(data)


def test_project_from_probe(project, project_dir):
    assert project.vendor == "postgresql"
    assert list(project.apps) == ["contenttypes", "shop", "blog", "thirdparty", "vendored", "outside", "billing"]
    assert project.apps["blog"] == AppInfo("blog", "blog", project_dir / "blog", False)
    assert [m.label for m in project.migrations_of("shop")] == [
        "shop.0001_initial", "shop.0002_item_price", "shop.0003_item_note"]
    by_key = {m.key: m for m in project.plan}
    note = by_key[("shop", "0003_item_note")]
    assert note.dependencies == (("shop", "0002_item_price"),)
    assert note.file is None
    assert note.operations == (OperationInfo("AddField", True, "Add field note to item", None),
                               OperationInfo("RunPython", False, "Raw Python operation", None))
    assert by_key[("billing", "0002_invoice_item")].dependencies == (
        ("billing", "0001_initial"), ("shop", "0003_item_note"))


def test_default_selection_is_the_project_apps_with_migrations(project, project_dir):
    selected, skipped = select_apps(project, [], project_dir)
    assert selected == ["shop", "billing"]
    site = project_dir.parent / "venv" / "lib" / "python3.12" / "site-packages"
    vendored = project_dir / ".venv" / "lib" / "python3.12" / "site-packages" / "vendored"
    assert [skip.note for skip in skipped] == [
        f"contenttypes (Django contrib: {site / 'django' / 'contrib' / 'contenttypes'})",
        f"thirdparty (outside the project: {site / 'thirdparty'})",
        f"vendored (outside the project: {vendored})",
        f"outside (outside the project: {project_dir.parent / 'elsewhere' / 'outside'})",
    ]
    assert [skip.label for skip in skipped] == ["contenttypes", "thirdparty", "vendored", "outside"]
    assert not any(skip.nothing_to_test for skip in skipped)  # each has migrations of its own: --app takes it


def test_explicit_selection_includes_contrib_and_third_party(project, project_dir):
    assert select_apps(project, ["contenttypes", "thirdparty", "shop"], project_dir) == (
        ["contenttypes", "thirdparty", "shop"], [])


def test_unknown_label_lists_the_known_apps(project, project_dir):
    with pytest.raises(UsageError) as raised:
        select_apps(project, ["shop", "nope"], project_dir)
    assert str(raised.value) == ("unknown app label nope; apps with migrations: "
                                 "billing, contenttypes, outside, shop, thirdparty, vendored")


def test_several_unknown_labels(project, project_dir):
    with pytest.raises(UsageError, match=r"^unknown app labels nope, Shop; apps with migrations: billing, "):
        select_apps(project, ["nope", "Shop"], project_dir)


def test_app_without_migrations_is_a_usage_error(project, project_dir):
    with pytest.raises(UsageError) as raised:
        select_apps(project, ["blog"], project_dir)
    assert str(raised.value) == "app blog has no migrations to test"


def test_unknown_label_in_a_project_without_migrations(project_dir):
    empty = project_from_probe({"vendor": "postgresql", "apps": [], "migrations": []})
    with pytest.raises(UsageError, match=r"apps with migrations: none$"):
        select_apps(empty, ["x"], project_dir)
    assert select_apps(empty, [], project_dir) == ([], [])


def test_is_project_app(project_dir):
    def app(path: Path, name: str = "x") -> object:
        return AppInfo("x", name, path, True)

    assert is_project_app(app(project_dir), project_dir)
    assert is_project_app(app(project_dir / "a" / "b"), project_dir)
    assert not is_project_app(app(project_dir.parent / "proj2"), project_dir)
    assert not is_project_app(app(project_dir / "env" / "lib" / "dist-packages" / "x"), project_dir)
    assert not is_project_app(app(project_dir / "django_fork", "django.contrib.admin"), project_dir)
    assert is_project_app(app(project_dir / "djangoish", "djangoish"), project_dir)
    (project_dir / "real").mkdir()
    (project_dir.parent / "link").symlink_to(project_dir / "real")
    assert is_project_app(app(project_dir.parent / "link"), project_dir)


def test_window_of(project):
    shop = project.migrations_of("shop")
    assert [m.name for m in window_of(shop, 2)] == ["0002_item_price", "0003_item_note"]
    assert [m.name for m in window_of(shop, 1)] == ["0003_item_note"]
    assert window_of(shop, 5) == shop
    assert window_of(shop, None) == shop
    assert window_of([], 3) == []


@pytest.fixture
def deps(project):
    return {m.key: m.dependencies for m in project.plan}


def test_dependency_closure(deps):
    assert dependency_closure([("billing", "0001_initial")], deps) == {
        ("billing", "0001_initial"), ("shop", "0002_item_price"), ("shop", "0001_initial"),
        ("contenttypes", "0001_initial")}
    assert dependency_closure([], deps) == set()
    assert dependency_closure([("x", "unknown")], deps) == {("x", "unknown")}


def test_dependents_closure_is_what_a_rollback_unapplies(deps):
    assert dependents_closure([("shop", "0003_item_note")], deps) == {
        ("shop", "0003_item_note"), ("billing", "0002_invoice_item")}
    assert dependents_closure([("shop", "0002_item_price")], deps) == {
        ("shop", "0002_item_price"), ("shop", "0003_item_note"), ("billing", "0001_initial"),
        ("billing", "0002_invoice_item")}
    assert dependents_closure([("outside", "0001_initial")], deps) == {("outside", "0001_initial")}


def test_forward_targets(project, deps):
    everything = {m.key for m in project.plan}
    base = everything - dependents_closure([("shop", "0003_item_note")], deps)
    targets = forward_targets(project.plan, base)
    assert targets == [("billing", "0001_initial"), ("thirdparty", "0001_initial"), ("vendored", "0001_initial"),
                       ("outside", "0001_initial")]
    # migrating to the targets from an empty database applies exactly `base`
    assert dependency_closure(targets, deps) == base


def test_forward_targets_leave_out_what_later_targets_need(project):
    wanted = {("contenttypes", "0001_initial"), ("shop", "0001_initial"), ("shop", "0002_item_price")}
    assert forward_targets(project.plan, wanted) == [("shop", "0002_item_price")]
    assert forward_targets(project.plan, set()) == []


def test_operation_lines_and_markers(tmp_path):
    migration = tmp_path / "0002_x.py"
    migration.write_text(textwrap.dedent("""\
        # test_migrations: allow-data-loss (the column was never read)
        from django.db import migrations


        class Migration(migrations.Migration):
            dependencies = [("shop", "0001_initial")]

            operations = [
                migrations.RemoveField("item", "legacy"),
                migrations.RunSQL(
                    "SELECT 1",
                ),
            ]
            note = "test_migrations: allow-irreversible"
        """))
    assert operation_lines(migration) == [9, 10]
    assert operation_lines(tmp_path / "missing.py") == []
    assert operation_lines(None) == []
    data = {"vendor": "postgresql", "apps": [probe_app("shop", tmp_path)],
            "migrations": [probe_migration("shop", "0002_x", file=migration, operations=[
                ("RemoveField", True, "Remove field legacy from item"), ("RunSQL", True, "Raw SQL operation"),
                ("Extra", True, "more operations than the file shows")])]}
    info = project_from_probe(data).plan[0]
    assert [op.line for op in info.operations] == [9, 10, None]
    assert info.marker_present(MARKER_ALLOW_DATA_LOSS)
    assert not info.marker_present(MARKER_ALLOW_IRREVERSIBLE)  # in code, not in a comment

    broken = tmp_path / "0003_broken.py"
    broken.write_text("operations = [\n")
    assert operation_lines(broken) == []


def test_parse_response_takes_the_last_marked_line():
    output = f"noise\n{MARKER}{{\"a\": 1}}\nmore noise\n{MARKER}[2]\ntrailing\n"
    assert parse_response(output) == [2]
    with pytest.raises(ValueError, match="no probe output"):
        parse_response("nothing here")


def test_real_probe_of_this_repository(pg_server_url):
    """The probe run in this repository's manage.py: upstream is the only project app."""
    env = {**os.environ, "DATABASE_URL": pg_server_url, "DJANGO_SETTINGS_MODULE": "hello_world.settings",
           "PYTHONWARNINGS": "ignore"}
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", bootstrap_code("probe")], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    data = parse_response(out.stdout)
    assert json.loads(json.dumps(data)) == data
    project = project_from_probe(data)
    assert project.vendor == "postgresql"
    selected, skipped = select_apps(project, [], REPO_ROOT)
    assert selected == ["upstream"]
    assert sorted(skip.label for skip in skipped) == ["admin", "auth", "contenttypes", "sessions"]
    assert all(skip.reason.startswith("Django contrib: ") for skip in skipped)
    upstream = project.migrations_of("upstream")
    on_disk = sorted(p.stem for p in (REPO_ROOT / "upstream" / "migrations").glob("[0-9]*.py"))
    assert [m.name for m in upstream] == on_disk
    assert upstream[0].file == REPO_ROOT / "upstream" / "migrations" / "0001_initial.py"
    assert upstream[0].dependencies == ()
    assert upstream[1].dependencies == (("upstream", "0001_initial"),)
    assert all(op.line is not None for m in upstream for op in m.operations)
    assert [m.name for m in window_of(upstream, 5)] == on_disk[-5:]


# -- squashed migrations as django_migrations records them ----------------------------------------

SQUASH = ("legacy", "0001_squashed_0002")
REPLACED = (("legacy", "0001_initial"), ("legacy", "0002_value"))


def test_a_squash_recorded_with_its_replaced_migrations_reads_as_the_squash():
    """`migrate` records the replaced migrations and then the squash itself (check_replacements)."""
    recorded = {*REPLACED, SQUASH, ("legacy", "0003_more")}
    assert effective_applied(recorded, {SQUASH: REPLACED}) == {SQUASH, ("legacy", "0003_more")}


def test_a_squash_counts_when_all_it_replaces_are_recorded_even_without_its_own_row():
    assert effective_applied(set(REPLACED), {SQUASH: REPLACED}) == {SQUASH}


def test_a_partly_applied_squash_is_not_applied():
    assert effective_applied({REPLACED[0]}, {SQUASH: REPLACED}) == {REPLACED[0]}
