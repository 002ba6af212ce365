"""The architecture is checked, not described: the import-linter contracts in pyproject.toml (what
may import what) and the type checker (mypy, configured there too) both pass on the package. Each
tool runs from the virtualenv that runs the tests, on the repository as it is; its output is
printed when it fails, so the broken contract or the type error is in the test log."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = REPO_ROOT / "migration_check"
# The verdict fields of CONTRACT.md (and the check status, observation status, hazard source and
# finding kind), and every word of their vocabularies: written out here, not read from the code.
VERDICT_FIELDS = {"apply", "rollback", "reapply", "schema", "data", "compat", "compat_direction", "status",
                  "observation", "source", "kind", "rewrites", "locks", "statements", "hazards"}
VERDICT_WORDS = {"passed", "failed", "not_run", "irreversible", "blocked", "identical", "differs", "not_checked",
                 "preserved", "lost", "compatible", "breaks_old_code", "old_code_on_new_schema",
                 "new_code_on_old_schema", "skipped", "observed", "off", "squawk", "data_lost", "coverage", "info"}
# The tools installed beside the interpreter running the tests (.venv/bin, .venv-py311/bin).
VENV_BIN = Path(sys.executable).parent


def run_tool(*argv: str, timeout: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV_BIN / argv[0]), *argv[1:]], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_import_contracts_are_kept():
    # --no-cache: judge the files as they are now, and leave no cache folder behind.
    linted = run_tool("lint-imports", "--no-cache", timeout=300)
    assert linted.returncode == 0, f"lint-imports failed:\n{linted.stdout}\n{linted.stderr}"
    assert "0 broken" in linted.stdout, linted.stdout


def test_mypy_passes():
    # The settings are pyproject.toml's [tool.mypy]; the cache stays in .mypy_cache (git-ignored by mypy).
    checked = run_tool("mypy", "migration_check", timeout=600)
    assert checked.returncode == 0, f"mypy failed:\n{checked.stdout}\n{checked.stderr}"
    assert "Success: no issues found" in checked.stdout, checked.stdout


def bare_strings(node: ast.expr) -> list[str]:
    """The string constants `node` is or holds (a tuple, list or set of them)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [s for element in node.elts for s in bare_strings(element)]
    return []


def names_a_verdict(node: ast.expr) -> bool:
    # Attributes only (`m.rollback`, `check.status`): a plain name such as `kind` or `status` is as
    # often an event kind or a git status; a verdict word compared with it is caught all the same.
    return isinstance(node, ast.Attribute) and node.attr in VERDICT_FIELDS


def verdict_string_comparisons(source: str) -> list[str]:
    """Comparisons (==, !=, in, not in) of a verdict with a bare string: a verdict field on one
    side and any string on the other, or a word of a verdict vocabulary on either side."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        strings = [s for operand in operands for s in bare_strings(operand)]
        if (strings and any(names_a_verdict(o) for o in operands)) or VERDICT_WORDS & set(strings):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_the_verdict_check_finds_bare_strings():
    # The check below must be able to fail: each of these is a comparison it exists to catch.
    caught = ['m.rollback == "failed"', 'result.rollback in ("not_run", "blocked")', 'check.status != "passed"',
              'status == "observed"', 'x == "lost"', '"failed" == step', 'f.kind in ["schema", "compat"]']
    assert [source for source in caught if not verdict_string_comparisons(source)] == []
    allowed = ["m.rollback == Rollback.FAILED", 'check.name == "forward"', 'kind == "exited"',
               "result.apply in (StepOutcome.FAILED, StepOutcome.NOT_RUN)"]
    assert [source for source in allowed if verdict_string_comparisons(source)] == []


def test_no_verdict_is_compared_with_a_bare_string():
    offenders = [f"{path.relative_to(REPO_ROOT)} {found}" for path in sorted(PACKAGE.rglob("*.py"))
                 for found in verdict_string_comparisons(path.read_text(encoding="utf-8"))]
    assert offenders == [], "compare verdicts with members of migration_check/verdicts.py:\n" + "\n".join(offenders)
