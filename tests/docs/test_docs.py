"""The documentation site: it builds with `mkdocs build --strict`, every rule id the code can
emit has its page, the command line reference is the parser's, the README is a front page."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import yaml

from migration_check import rules
from migration_check.proofs.deploy_safety.hazards import RULES as HAZARD_RULES

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS = REPO_ROOT / "docs"
PACKAGE = REPO_ROOT / "migration_check"
PAGE_SECTIONS = ("## What was observed", "## Why it hurts", "## Unsafe", "## Safe", "## How to acknowledge")
# Finding kinds that are findings (not information): each must carry a rule id where it is made.
RULED_KINDS = {"schema", "data_lost", "compat", "coverage"}


def rule_references_in_code() -> set[str]:
    """Every `rules.NAME` the package uses (outside rules.py), resolved to its id."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        if path.name == "rules.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "rules":
                names.add(node.attr)
    return {getattr(rules, name) for name in names if isinstance(getattr(rules, name), str)
            and re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", getattr(rules, name))}


def findings_without_rule() -> list[str]:
    """`Finding("schema" | "data_lost" | "compat" | "coverage", ...)` calls that pass no rule."""
    missing = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Finding"
                    and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value in RULED_KINDS
                    and len(node.args) < 4 and not any(k.arg == "rule" for k in node.keywords)):
                missing.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    return missing


def test_every_rule_the_code_emits_has_its_page():
    emitted = rule_references_in_code() | set(HAZARD_RULES) | set(rules.CHECK_RULES.values())
    assert emitted, "no rule ids found in the code"
    assert emitted <= set(rules.ALL_RULES), f"ids used in the code but not registered: {emitted - set(rules.ALL_RULES)}"
    for rule in sorted(set(rules.ALL_RULES) | emitted):
        page = DOCS / "rules" / f"{rule}.md"
        assert page.is_file(), f"rule {rule} has no page {page.relative_to(REPO_ROOT)}"
        text = page.read_text(encoding="utf-8")
        assert text.startswith(f"# `{rule}`"), page
        for section in PAGE_SECTIONS:
            assert section in text, f"{page.name} lacks {section!r}"


def test_no_orphan_rule_pages_and_each_is_in_the_navigation():
    pages = {path.stem for path in (DOCS / "rules").glob("*.md")} - {"index"}
    assert pages == set(rules.ALL_RULES), f"pages without a rule: {pages - set(rules.ALL_RULES)}"
    nav = (REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for rule in rules.ALL_RULES:
        assert f"rules/{rule}.md" in nav, f"mkdocs.yml nav lacks rules/{rule}.md"


def test_every_finding_that_is_not_information_carries_a_rule():
    assert findings_without_rule() == []


def test_every_hazard_rule_is_registered():
    assert set(HAZARD_RULES) == set(rules.HAZARD_RULES)


def test_cli_reference_is_current():
    completed = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "cli_reference.py"), "--check"],
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr


def test_readme_is_a_front_page():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode()) <= 15_000
    for needed in ("make migration-test", "make test", "pip install django-migration-check",
                   'SILENCED_SYSTEM_CHECKS = ["mail.E001"]'):
        assert needed in readme
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (REPO_ROOT / link).is_file(), f"README links to a missing {link}"


def test_mkdocs_yml_is_valid_yaml_with_the_nav():
    config = yaml.safe_load((REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["theme"]["name"] == "material" and config["strict"] is True


def test_mkdocs_build_strict(tmp_path):
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")]
    completed = subprocess.run(command,
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=180,
                               env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1", "HOME": str(tmp_path)})
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert (tmp_path / "site" / "rules" / "table-rewrite" / "index.html").is_file()
    assert (tmp_path / "site" / "report.schema.json").is_file()
