"""parse_showmigrations_plan on real `showmigrations` output captured in tests/migration_check/project/data/.

The captures come from this repository's manage.py and from a generated project with a squashed
and a merge migration (tests/migration_check/project/data/capture_showmigrations.py regenerates them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from migration_check.project.discovery import PlanEntry, parse_showmigrations_plan

DATA = Path(__file__).resolve().parent / "data"
REPO_ROOT = Path(__file__).resolve().parents[3]

CONTRIB_PLAN = [
    ("contenttypes", "0001_initial"),
    ("auth", "0001_initial"),
    ("admin", "0001_initial"),
    ("admin", "0002_logentry_remove_auto_add"),
    ("admin", "0003_logentry_add_action_flag_choices"),
    ("contenttypes", "0002_remove_content_type_name"),
    ("auth", "0002_alter_permission_name_max_length"),
    ("auth", "0003_alter_user_email_max_length"),
    ("auth", "0004_alter_user_username_opts"),
    ("auth", "0005_alter_user_last_login_null"),
    ("auth", "0006_require_contenttypes_0002"),
    ("auth", "0007_alter_validators_add_error_messages"),
    ("auth", "0008_alter_user_username_max_length"),
    ("auth", "0009_alter_user_last_name_max_length"),
    ("auth", "0010_alter_group_name_max_length"),
    ("auth", "0011_update_proxy_permissions"),
    ("auth", "0012_alter_user_first_name_max_length"),
    ("sessions", "0001_initial"),
]
# The captures were taken when upstream had its first 24 migrations; newer ones are not in them.
UPSTREAM = sorted(p.stem for p in (REPO_ROOT / "upstream" / "migrations").glob("0*.py"))[:24]
SQUASH = "0001_squashed_0003_alter_book_title"
MERGE = "0005_merge_0004_book_pages_0004_book_year"


def captured(name: str) -> str:
    """A data file without its `# ` header: exactly what showmigrations printed."""
    text = (DATA / name).read_text(encoding="utf-8")
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("# "))


def keys(entries) -> list[tuple[str, str]]:
    return [entry.key for entry in entries]


def test_every_data_file_says_how_it_was_made():
    files = sorted(DATA.glob("*.txt"))
    assert len(files) == 11
    for path in files:
        header = [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("# ")]
        assert header, path.name
        assert any("manage.py showmigrations" in line for line in header), path.name


def test_repo_before_migrate_lists_every_migration_unapplied_in_plan_order():
    entries = parse_showmigrations_plan(captured("repo_plan_v2_before_migrate.txt"))
    assert len(UPSTREAM) == 24
    assert keys(entries) == CONTRIB_PLAN + [("upstream", name) for name in UPSTREAM]
    assert [e.applied for e in entries] == [False] * 42


def test_repo_after_migrate_lists_every_migration_applied():
    entries = parse_showmigrations_plan(captured("repo_plan_v2_after_migrate.txt"))
    assert keys(entries) == CONTRIB_PLAN + [("upstream", name) for name in UPSTREAM]
    assert all(e.applied for e in entries)


def test_repo_verbose_dependencies():
    entries = {e.key: e for e in parse_showmigrations_plan(captured("repo_plan_v2_after_migrate.txt"))}
    assert entries[("contenttypes", "0001_initial")].dependencies == ()
    assert entries[("upstream", "0001_initial")].dependencies == ()
    assert entries[("admin", "0001_initial")].dependencies == (
        ("auth", "0001_initial"), ("contenttypes", "0001_initial"))
    assert entries[("auth", "0011_update_proxy_permissions")].dependencies == (
        ("auth", "0010_alter_group_name_max_length"), ("contenttypes", "0002_remove_content_type_name"))
    assert entries[("upstream", "0024_invoice_sent_at")].dependencies == (("upstream", "0023_alter_invoice_due_date"),)


def test_repo_partial_plan_without_verbosity():
    """Plain --plan (no -v 2): no dependencies; upstream applied up to 0010 only."""
    entries = parse_showmigrations_plan(captured("repo_plan_partial.txt"))
    assert len(entries) == 42
    assert all(e.dependencies == () for e in entries)
    applied = [e.key for e in entries if e.applied]
    assert applied == [("upstream", name) for name in UPSTREAM[:10]]
    assert UPSTREAM[9] == "0010_invoice_unique_number"


def test_squash_and_merge_before_migrate():
    """System check warnings come first and are ignored; the squash replaces 0001-0003; the merge
    has two parents."""
    text = captured("squash_merge_plan_v2_before_migrate.txt")
    assert "(models.W042)" in text and "WARNINGS:" in text
    entries = parse_showmigrations_plan(text)
    assert keys(entries) == [
        ("library", SQUASH), ("library", "0004_book_year"), ("library", "0004_book_pages"),
        ("library", MERGE), ("shelf", "0001_initial"),
    ]
    assert not any(e.applied for e in entries)
    by_key = {e.key: e for e in entries}
    assert by_key[("library", SQUASH)].dependencies == ()
    assert by_key[("library", "0004_book_year")].dependencies == (("library", SQUASH),)
    assert by_key[("library", MERGE)].dependencies == (("library", "0004_book_pages"), ("library", "0004_book_year"))
    assert by_key[("shelf", "0001_initial")].dependencies == (("library", MERGE),)


def test_squash_partly_applied_plans_the_originals():
    entries = parse_showmigrations_plan(captured("squash_merge_plan_v2_partial_squash.txt"))
    assert [(e.app, e.name, e.applied) for e in entries] == [
        ("library", "0001_initial", True),
        ("library", "0002_book_isbn", False),
        ("library", "0003_alter_book_title", False),
        ("library", "0004_book_year", False),
        ("library", "0004_book_pages", False),
        ("library", MERGE, False),
        ("shelf", "0001_initial", False),
    ]
    assert entries[3].dependencies == (("library", "0003_alter_book_title"),)


@pytest.mark.parametrize("name", ["squash_merge_plan_v2_after_migrate.txt", "squash_merge_plan_after_migrate.txt"])
def test_squash_and_merge_after_migrate(name):
    entries = parse_showmigrations_plan(captured(name))
    assert [(e.key, e.applied) for e in entries] == [
        (("library", SQUASH), True), (("library", "0004_book_year"), True), (("library", "0004_book_pages"), True),
        (("library", MERGE), True), (("shelf", "0001_initial"), True),
    ]
    expected_deps = (("library", "0004_book_pages"), ("library", "0004_book_year")) if "v2" in name else ()
    assert entries[3].dependencies == expected_deps


def test_unrecorded_squash_is_applied_in_plan_mode():
    """All replaced migrations applied, the squash not recorded: --plan still says [X]."""
    entries = parse_showmigrations_plan(captured("squash_unrecorded_plan_v2.txt"))
    assert entries[0].key == ("library", SQUASH)
    assert [e.applied for e in entries] == [True] * 5


@pytest.mark.parametrize("name", ["squash_merge_list_partial_squash.txt", "squash_unrecorded_list.txt"])
def test_list_mode_output_is_not_mistaken_for_a_plan(name):
    """List mode (` [X] 0001_initial`, ` [-] 0001_squashed...`) has no app prefix: no entries."""
    text = captured(name)
    assert "[X]" in text
    assert parse_showmigrations_plan(text) == []


def test_list_mode_capture_has_the_dash_mark():
    assert " [-] 0001_squashed_0003_alter_book_title (3 squashed migrations)" in captured("squash_unrecorded_list.txt")


def test_no_migrations():
    text = captured("no_migrations_plan.txt")
    assert text.strip() == "(no migrations)"
    assert parse_showmigrations_plan(text) == []


def test_dash_mark_counts_as_not_applied():
    text = "[-]  library.0001_squashed_0003_alter_book_title\n[X]  library.0004_book_year ... (library.0003_x)\n"
    entries = parse_showmigrations_plan(text)
    assert [(e.key, e.applied) for e in entries] == [
        (("library", SQUASH), False), (("library", "0004_book_year"), True)]
    assert entries[1].dependencies == (("library", "0003_x"),)


def test_other_lines_are_ignored():
    text = (
        "Operations to perform:\n"
        "System check identified no issues (0 silenced).\n"
        "[ ] not_a_migration\n"
        "[Y]  app.0001_initial\n"
        "library\n"
        " [X] 0001_initial\n"
        "\n"
        "[ ]  shelf.0001_initial   \r\n"
    )
    entries = parse_showmigrations_plan(text)
    assert [(e.key, e.applied, e.dependencies) for e in entries] == [(("shelf", "0001_initial"), False, ())]


def test_plan_entry_key():
    entry = PlanEntry("upstream", "0001_initial", True)
    assert entry.key == ("upstream", "0001_initial")
    assert entry.dependencies == ()
