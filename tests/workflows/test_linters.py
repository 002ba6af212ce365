"""The offline workflow linters, run on both workflow files and on the action (action.yml).

- check-jsonschema with the GitHub workflow schema (structure: keys, types, event names), and
  the action with the GitHub action schema (inputs, composite steps and their `shell:`);
- zizmor --offline (security: permissions, template injection, unpinned actions, persisted
  credentials), in its default persona and in the pedantic one, where the only findings are the
  `postgres:15` service images and the `uses: ./` of this repository's own action, each
  suppressed with a comment that says why;
- shellcheck on every `run:` block of the workflows and of the action, as bash (the runner's
  default shell), with `${{ }}` expressions replaced by a plain word as the runner would.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workflows.workflow_files import (
    ACTION,
    WORKFLOW_FILES,
    WORKFLOWS_DIR,
    action_run_blocks,
    run_blocks,
    substitute_expressions,
)

BIN = Path(sys.executable).parent
ALL_RUN_BLOCKS = [block for path in WORKFLOW_FILES for block in run_blocks(path)] + list(action_run_blocks())
# Each zizmor suppression in the workflows, and the reason written beside it.
JUSTIFIED_IGNORES = {
    r"\s*image: postgres:15 # zizmor: ignore\[unpinned-images\].*": "follows 15.x patch releases",
    r"\s*uses: \./ # zizmor: ignore\[self-repository\]": "the action under test is the one of this",
}


def tool(name: str) -> str:
    """The linter from this virtualenv (pinned in requirements-dev.txt), else from PATH."""
    candidate = BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: pip install -r requirements-dev.txt")
    return found


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, **kwargs)


def test_workflows_match_the_github_workflow_schema():
    result = run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                  *map(str, WORKFLOW_FILES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_action_matches_the_github_action_schema():
    result = run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", str(ACTION)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_action_schema_check_would_catch_a_broken_action(tmp_path):
    """Not vacuous: a composite `run:` step without its required `shell:` is refused."""
    broken = tmp_path / "action.yml"
    broken.write_text(ACTION.read_text().replace("      shell: bash\n", "", 1))
    result = run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", str(broken)])
    assert result.returncode != 0, result.stdout


def test_zizmor_finds_nothing():
    result = run([tool("zizmor"), "--offline", "--no-progress", "--color", "never", str(WORKFLOWS_DIR),
                  str(ACTION)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout, result.stdout


def test_zizmor_pedantic_findings_are_only_the_justified_suppressions():
    result = run([tool("zizmor"), "--offline", "--no-progress", "--color", "never", "--persona", "pedantic",
                  str(WORKFLOWS_DIR), str(ACTION)])
    assert result.returncode == 0, result.stdout + result.stderr
    ignores = [(path.name, line) for path in (*WORKFLOW_FILES, ACTION)
               for line in path.read_text().splitlines() if "zizmor: ignore" in line]
    assert ignores, "expected the postgres:15 images to carry their suppression"
    for name, line in ignores:
        assert any(re.fullmatch(pattern, line) for pattern in JUSTIFIED_IGNORES), (
            f"{name}: unexpected zizmor suppression: {line.strip()}")
    # The reason for each suppression is written next to it.
    for reason in JUSTIFIED_IGNORES.values():
        assert reason in WORKFLOW_FILES[0].read_text(), reason
    assert f"({len(ignores)} ignored)" in result.stdout, result.stdout


def test_there_are_run_blocks_to_check():
    assert len(ALL_RUN_BLOCKS) >= 10


@pytest.mark.parametrize("block", ALL_RUN_BLOCKS, ids=lambda block: f"{block.job}-{block.step}")
def test_run_block_passes_shellcheck(block):
    script = "set -eo pipefail\n" + substitute_expressions(block.script)
    result = run([tool("shellcheck"), "--shell=bash", "--severity=style", "--format=gcc", "-"],
                 input=script)
    assert result.returncode == 0, f"{block.where}:\n{result.stdout}{result.stderr}"


def test_shellcheck_would_catch_a_broken_block():
    """The check above is not vacuous: an unquoted expansion and a typo'd variable are reported."""
    script = 'set -eo pipefail\nfor f in $(ls reports); do echo $f; done\necho "$UNSET_TYPO"\n'
    result = run([tool("shellcheck"), "--shell=bash", "--format=gcc", "-"], input=script)
    assert result.returncode != 0
    assert "SC2045" in result.stdout or "SC2086" in result.stdout
