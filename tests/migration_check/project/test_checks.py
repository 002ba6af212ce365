"""checks: how the project-wide checks' output becomes a one-line detail (pure, no database).

The outputs are real: captured from `makemigrations --check --dry-run` on
missing_migration_project and `check --deploy` on this repository's project (see the `# ` header
of each file in data/checks/); the end-to-end verdicts are in end_to_end/test_check_projects.py.
"""

from __future__ import annotations

from pathlib import Path

from migration_check.postgres.catalog import SequenceBehind
from migration_check.project.checks import (
    deploy_warnings,
    describe_missing_migrations,
    run_sequences_check,
    sequences_check,
)
from migration_check.results import CheckResult

DATA = Path(__file__).resolve().parent / "data" / "checks"  # apart from the showmigrations captures


def captured(name: str) -> str:
    """A capture without its `# ` header lines."""
    lines = (DATA / name).read_text().splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("# "))


def test_missing_migration_is_named_with_its_app():
    output = captured("makemigrations_check_missing_migration_project.txt")
    assert describe_missing_migrations(output) == "inventory: + Add field barcode to item"


def test_changes_of_several_apps_in_both_django_markings():
    """Django 5 marks changes with +/-/~, older versions with "- "; the file lines are no change."""
    output = ("Migrations for 'shop':\n  shop/migrations/0003_item_sku.py\n    + Add field sku to item\n"
              "    ~ Alter field name on item\nMigrations for 'ledger':\n"
              "  ledger/migrations/0002_remove_entry_note.py\n    - Remove field note from entry\n")
    assert describe_missing_migrations(output) == (
        "shop: + Add field sku to item, ~ Alter field name on item; ledger: - Remove field note from entry")


def test_no_changes_is_an_empty_description():
    assert describe_missing_migrations("No changes detected\n") == ""


def test_deploy_warnings_are_the_warning_lines_only():
    warnings = deploy_warnings(captured("check_deploy_hello_world.txt"))
    assert [warning.split(" ", 2)[:2] for warning in warnings] == [
        ["?:", f"(security.W{number})"] for number in ("004", "008", "009", "012", "016", "018", "020")]
    assert warnings[-1] == "?: (security.W020) ALLOWED_HOSTS must not be empty in deployment."


def test_an_error_or_a_header_is_no_warning():
    output = ("System check identified some issues:\n\nERRORS:\n"
              "?: (admin.E403) A 'django.template.backends.django.DjangoTemplates' instance must be configured.\n"
              "shop.Item: (models.W042) Auto-created primary key used when not defining a primary key type.\n")
    assert deploy_warnings(output) == [
        "shop.Item: (models.W042) Auto-created primary key used when not defining a primary key type."]


def test_the_sequences_check_passes_when_none_is_behind_and_names_each_one_that_is():
    assert sequences_check([], 0.01) == CheckResult("sequences", "passed", 0.01)
    behind = [SequenceBehind("shop_colour", "id", "shop_colour_id_seq", 1, 3),
              SequenceBehind('"my table"', "code", '"my table_code_seq"', 5, 9)]
    check = sequences_check(behind, 0.02)
    assert (check.name, check.status) == ("sequences", "failed")
    first, second = check.detail.split("; " + '"my table"')
    assert first == ("shop_colour.id holds values up to 3, but its sequence shop_colour_id_seq gives 1 next: it will "
                     "hand out values the column already holds, and each row inserted without id then fails "
                     "(duplicate key); the migration that wrote rows with their id must move it on "
                     "(RunSQL(\"SELECT setval('shop_colour_id_seq', (SELECT max(\"id\") FROM shop_colour))\"))")
    assert second.startswith(".code holds values up to 9")


def test_a_sequences_read_that_fails_skips_the_check_with_the_reason():
    def unreadable() -> list[SequenceBehind]:
        raise RuntimeError("permission denied for sequence shop_colour_id_seq")

    check = run_sequences_check(unreadable)
    assert (check.name, check.status, check.detail) == (
        "sequences", "skipped", "could not read the sequences: RuntimeError: permission denied for sequence "
        "shop_colour_id_seq")
    assert run_sequences_check(list).status == "passed"
