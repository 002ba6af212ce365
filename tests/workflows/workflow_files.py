"""Reading the GitHub Actions workflow files the way the tests need them.

The YAML is parsed with ruamel.yaml (installed with check-jsonschema; PyYAML is not a
dependency), in YAML 1.2 mode as GitHub does, so the `on:` key stays the string "on".
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = REPO_ROOT / ".github" / "workflows"
MIGRATION_TESTS = WORKFLOWS_DIR / "migration-tests.yml"
CI = WORKFLOWS_DIR / "ci.yml"
WORKFLOW_FILES = (MIGRATION_TESTS, CI)
# The reusable composite action (`uses: ./` in migration-tests.yml, `uses: owner/repo@ref` elsewhere).
ACTION = REPO_ROOT / "action.yml"

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.DOTALL)
# Contexts GitHub offers in job and step expressions.
KNOWN_CONTEXTS = {"github", "env", "vars", "job", "jobs", "steps", "runner", "secrets",
                  "strategy", "matrix", "needs", "inputs"}
DOTTED_NAME = r"(?<![\w.'-])([A-Za-z_][\w-]*(?:\.[A-Za-z_*][\w-]*)*)"
LITERALS = {"true", "false", "null"}
KNOWN_FUNCTIONS = {"always", "success", "failure", "cancelled", "contains", "startsWith",
                   "endsWith", "format", "join", "toJSON", "fromJSON", "hashFiles"}


def load(path: Path) -> dict:
    yaml = YAML(typ="safe", pure=True)
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle)


@dataclass(frozen=True)
class RunBlock:
    """One `run:` script of a workflow step."""

    workflow: str
    job: str
    step: str
    script: str
    env: dict

    @property
    def where(self) -> str:
        return f"{self.workflow}: job {self.job}, step {self.step!r}"


def run_blocks(path: Path) -> Iterator[RunBlock]:
    workflow = load(path)
    for job_id, job in workflow["jobs"].items():
        for index, step in enumerate(job.get("steps", [])):
            if "run" in step:
                yield RunBlock(path.name, job_id, step.get("name", f"#{index}"), step["run"],
                               dict(step.get("env") or {}))


def action_run_blocks(path: Path = ACTION) -> Iterator[RunBlock]:
    """The `run:` steps of a composite action, as RunBlocks of the pseudo-job `runs`."""
    for index, step in enumerate(load(path)["runs"]["steps"]):
        if "run" in step:
            yield RunBlock(path.name, "runs", step.get("name", f"#{index}"), step["run"],
                           dict(step.get("env") or {}))


def action_inputs(path: Path = ACTION) -> dict[str, str]:
    """Each input of the action with its default ('' when it has none), as the runner fills them."""
    return {name: str(spec.get("default", "")) for name, spec in load(path)["inputs"].items()}


def action_step_value(value: str, inputs: dict[str, str], action_path: Path) -> str:
    """A step's `env:`/`working-directory:` value with its expressions evaluated as the runner would.

    Only what the action may use is known: `inputs.<name>` and `github.action_path`; anything
    else is an AssertionError, so a new expression cannot slip past the tests unevaluated."""
    def evaluate(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression == "github.action_path":
            return str(action_path)
        name = expression.removeprefix("inputs.")
        if name == expression or name not in inputs:
            raise AssertionError(f"action.yml: unsupported expression ${{{{ {expression} }}}}")
        return inputs[name]

    return EXPRESSION.sub(evaluate, value)


def find_step(path: Path, job_id: str, name: str) -> dict:
    for step in load(path)["jobs"][job_id]["steps"]:
        if step.get("name") == name:
            return step
    raise AssertionError(f"{path.name}: job {job_id} has no step named {name!r}")


def substitute_expressions(script: str, value: str = "placeholder") -> str:
    """Replace every ``${{ ... }}`` by a plain word, as the runner would by a value."""
    return EXPRESSION.sub(value, script)


def expressions(node: object) -> Iterator[str]:
    """Every ``${{ }}`` expression in a parsed workflow (values only; keys hold none)."""
    if isinstance(node, dict):
        for value in node.values():
            yield from expressions(value)
    elif isinstance(node, list):
        for value in node:
            yield from expressions(value)
    elif isinstance(node, str):
        yield from EXPRESSION.findall(node)


def if_conditions(job: dict) -> Iterator[str]:
    """`if:` values of a job and its steps (implicit expressions, with or without ${{ }})."""
    for holder in [job, *job.get("steps", [])]:
        condition = holder.get("if")
        if isinstance(condition, str):
            match = EXPRESSION.fullmatch(condition.strip())
            yield match.group(1) if match else condition


def context_references(expression: str) -> Iterator[tuple[str, ...]]:
    """Dotted property paths of an expression, string literals removed: ('needs', 'test', ...)."""
    without_strings = re.sub(r"'(?:[^']|'')*'", "''", expression)
    for match in re.finditer(DOTTED_NAME, without_strings):
        end = match.end()
        if without_strings[end:end + 1] == "(":
            continue  # a function call
        yield tuple(match.group(1).split("."))


def load_verify_backup():
    """scripts/verify_backup.py as a module (it is a script; it imports test_migrations itself)."""
    if "verify_backup" in sys.modules:
        return sys.modules["verify_backup"]
    spec = importlib.util.spec_from_file_location(
        "verify_backup", REPO_ROOT / "scripts" / "verify_backup.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["verify_backup"] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def _as_list(value: object) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def semantic_problems(workflow: dict) -> list[str]:
    """What actionlint would report about references, as readable lines (empty: none).

    - every `needs:` names another job, and the needs contain no cycle;
    - every `needs.X` in a job's expressions is one of that job's needs, used as .result/.outputs;
    - every `steps.X` names an earlier step id of the same job;
    - every `job.services.X` names a service of the job;
    - every `env.X` is defined at workflow or job level (step-level env is not visible there);
    - every expression starts with a context GitHub has.
    """
    problems: list[str] = []
    jobs = workflow.get("jobs", {})
    needs = {job_id: _as_list(job.get("needs")) for job_id, job in jobs.items()}
    for job_id, wanted in needs.items():
        for other in wanted:
            if other not in jobs or other == job_id:
                problems.append(f"job {job_id} needs {other!r}, which is not another job")
    done: set[str] = set()
    while len(done) < len(needs):
        ready = {job for job, wanted in needs.items() if job not in done and set(wanted) <= done}
        if not ready:
            problems.append(f"the needs of {sorted(set(needs) - done)} form a cycle")
            break
        done |= ready
    for expression in expressions({k: v for k, v in workflow.items() if k != "jobs"}):
        for reference in context_references(expression):
            if reference[0] not in {"github", "vars", "inputs", "secrets"} | LITERALS:
                problems.append(
                    f"workflow level: {reference[0]!r} is not available in {expression!r}")
    for job_id, job in jobs.items():
        checked = list(expressions({k: v for k, v in job.items() if k != "steps"}))
        checked += [c for c in if_conditions({"if": job.get("if")})]
        step_ids: list[str] = []
        for step in job.get("steps", []):
            step_expressions = list(expressions({k: v for k, v in step.items() if k != "if"}))
            step_expressions += list(if_conditions({"if": step.get("if")}))
            for expression in step_expressions:
                for reference in context_references(expression):
                    if reference[0] == "steps" and reference[1:2] not in [(i,) for i in step_ids]:
                        problems.append(f"job {job_id}: {expression!r} refers to a step that is "
                                        "not an earlier step id")
            if "id" in step:
                step_ids.append(step["id"])
            checked += step_expressions
        visible_env = {**(workflow.get("env") or {}), **(job.get("env") or {})}
        for expression in checked:
            for reference in context_references(expression):
                root = reference[0]
                if root in {"true", "false", "null"}:
                    continue
                if root not in KNOWN_CONTEXTS:
                    problems.append(f"job {job_id}: unknown context {root!r} in {expression!r}")
                elif root == "needs" and (len(reference) < 3 or reference[1] not in needs[job_id]
                                          or reference[2] not in {"result", "outputs"}):
                    problems.append(f"job {job_id}: {expression!r} is not <a need of the job>"
                                    f".result/.outputs (needs: {needs[job_id]})")
                elif root == "job" and reference[1:2] == ("services",) and (
                        len(reference) < 3 or reference[2] not in (job.get("services") or {})):
                    problems.append(f"job {job_id}: {expression!r} names a service the job "
                                    "does not have")
                elif root == "env" and (len(reference) < 2 or reference[1] not in visible_env):
                    problems.append(f"job {job_id}: {expression!r}: no such workflow/job env")
    return problems


# ---------------------------------------------------------------------------------------------
# Running the shell of the workflows and of the action locally
# ---------------------------------------------------------------------------------------------

# What the runner's bash gets: the venv's python first on PATH (setup-python's role).
PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
# Set by GitHub or by the developer's shell; a block must only see what the test gives it.
RUNNER_VARIABLES = ("DATABASE_URL", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_WORKSPACE", "PYTHONPATH")


def run_bash(script: str, cwd: Path, env: dict[str, str] | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess:
    """A `run:` block as the runner runs it: `bash --noprofile --norc -eo pipefail`."""
    environment = {key: value for key, value in os.environ.items() if key not in RUNNER_VARIABLES}
    environment.update({"PATH": PATH, **(env or {})})
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                          cwd=cwd, env=environment, capture_output=True, text=True,
                          timeout=timeout)


def run_action(workspace: Path, given: dict[str, str], env: dict[str, str] | None = None,
               timeout: float = 120, action_path: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    """The action's steps as the runner runs a composite action: the inputs (`with:`) over their
    defaults, each step's `env:` and `working-directory:` evaluated, one bash per step, stopping
    at the first that fails. Returns the last step's status and every step's output."""
    inputs = action_inputs()
    unknown = set(given) - set(inputs)
    assert not unknown, f"action.yml has no input {sorted(unknown)}"
    inputs.update(given)
    stdout, stderr = [], []
    result = None
    for step in load(ACTION)["runs"]["steps"]:
        assert step.get("shell") == "bash", step.get("name")
        step_env = {key: action_step_value(str(value), inputs, action_path)
                    for key, value in (step.get("env") or {}).items()}
        folder = workspace / action_step_value(step.get("working-directory", "."), inputs, action_path)
        result = run_bash(step["run"], folder, env={**(env or {}), **step_env}, timeout=timeout)
        stdout.append(result.stdout)
        stderr.append(result.stderr)
        if result.returncode != 0:
            break
    assert result is not None, "action.yml has no run steps"
    return subprocess.CompletedProcess(result.args, result.returncode, "".join(stdout), "".join(stderr))
