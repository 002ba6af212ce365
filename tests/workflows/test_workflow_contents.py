"""What users and branch protection rely on in the workflow files, read from the YAML.

Also the semantic checks actionlint would make (it does not install offline here): every
`needs:` names a job, every `needs.X` is a need of its job, every `steps.X` an earlier step,
every `job.services.X` a service, every expression context exists.
"""

from __future__ import annotations

import re
import shlex

import pytest

from migration_check.cli import build_parser
from tests.workflows.workflow_files import (
    CI,
    MIGRATION_TESTS,
    REPO_ROOT,
    WORKFLOW_FILES,
    find_step,
    load,
    load_verify_backup,
    run_blocks,
    semantic_problems,
)

BRANCHES = ["main", "develop"]
# The action step's `with: args:` (one line after YAML folding): the reports, and on pull_request
# only what the pull request adds or modifies since its base branch.
MIGRATION_TEST_ARGS = "--verbose --junit-xml reports/migrations-junit.xml --report-json reports/migrations.json"
PULL_REQUEST_EXPRESSION = (
    "${{ github.event_name == 'pull_request' && format('--since=origin/{0}', github.base_ref) || '' }}")
SERVICE_DATABASE_URL = "postgres://postgres:postgres@localhost:5432/migration_test_db"
# Oldest major versions allowed (older ones run on the deprecated node20).
PINNED_USES = r"\s*(?:- )?uses: ([\w.-]+/[\w.-]+)@([0-9a-f]{40}) # v(\d+)\.\d+\.\d+"
MINIMUM_ACTION_MAJOR = {"actions/checkout": 5, "actions/setup-python": 6,
                        "actions/upload-artifact": 6}
SCRIPT_PATH = r"(?:python|bash|sh) ((?:scripts|benchmarks)/[\w./-]+)"
CI_JOBS = {"test", "performance", "backup-verification", "all-checks"}


def ids(paths):
    return [path.name for path in paths]


@pytest.fixture(scope="module")
def migration_workflow() -> dict:
    return load(MIGRATION_TESTS)


@pytest.fixture(scope="module")
def ci_workflow() -> dict:
    return load(CI)


def all_steps(workflow: dict):
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


def health_options(options: str) -> dict[str, str]:
    return dict(re.findall(r"--(health-[a-z]+)[ =](\"[^\"]*\"|\S+)", options))


# ---------------------------------------------------------------------------------------------
# Both workflows
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=ids(WORKFLOW_FILES))
def test_triggers_are_push_and_pull_request_on_main_and_develop(path):
    triggers = load(path)["on"]
    assert set(triggers) == {"push", "pull_request"}
    assert triggers["push"]["branches"] == BRANCHES
    assert triggers["pull_request"]["branches"] == BRANCHES


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=ids(WORKFLOW_FILES))
def test_least_privilege_and_superseded_runs_cancelled(path):
    workflow = load(path)
    assert workflow["permissions"] == {"contents": "read"}
    for job_id, job in workflow["jobs"].items():
        assert "permissions" not in job, f"job {job_id} widens the permissions"
    assert workflow["concurrency"] == {
        "group": "${{ github.workflow }}-${{ github.head_ref || github.run_id }}",
        "cancel-in-progress": True,
    }


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=ids(WORKFLOW_FILES))
def test_every_job_has_a_timeout_and_runs_on_ubuntu_latest(path):
    for job_id, job in load(path)["jobs"].items():
        assert job["runs-on"] == "ubuntu-latest", job_id
        assert isinstance(job.get("timeout-minutes"), int), f"job {job_id}: no timeout-minutes"
        assert 1 <= job["timeout-minutes"] <= 60, job_id


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=ids(WORKFLOW_FILES))
def test_actions_are_pinned_to_commits_of_current_majors(path):
    """`uses: owner/repo@<40 hex> # vX.Y.Z`, with X at least the node24 release of each action."""
    lines = [line for line in path.read_text().splitlines() if re.match(r"\s*(- )?uses:", line)]
    assert lines
    for line in lines:
        if re.fullmatch(r"\s*(- )?uses: \./ # zizmor: ignore\[self-repository\]", line):
            continue  # this repository's own action, at the checked-out commit
        match = re.fullmatch(PINNED_USES, line)
        assert match, f"{path.name}: not pinned to a commit with a version comment: {line.strip()}"
        action, _, major = match.groups()
        assert action in MINIMUM_ACTION_MAJOR, f"unexpected action {action}"
        assert int(major) >= MINIMUM_ACTION_MAJOR[action], line.strip()


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=ids(WORKFLOW_FILES))
def test_the_same_action_is_pinned_to_the_same_commit_everywhere(path):
    pins: dict[str, set[str]] = {}
    for workflow_path in WORKFLOW_FILES:
        for action, sha in re.findall(r"uses: ([\w.-]+/[\w.-]+)@(\w+)", workflow_path.read_text()):
            pins.setdefault(action, set()).add(sha)
    assert {action: len(shas) for action, shas in pins.items()} == dict.fromkeys(pins, 1)


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=ids(WORKFLOW_FILES))
def test_checkout_does_not_persist_credentials(path):
    for job_id, step in all_steps(load(path)):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False, job_id


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=ids(WORKFLOW_FILES))
def test_python_is_312_with_a_pip_cache_keyed_on_existing_requirements(path):
    setups = [step for _, step in all_steps(load(path))
              if str(step.get("uses", "")).startswith("actions/setup-python@")]
    assert setups
    for step in setups:
        options = step["with"]
        assert options["python-version"] == "3.12"
        assert options["cache"] == "pip"
        for name in options["cache-dependency-path"].split():
            assert (REPO_ROOT / name).is_file(), f"cache-dependency-path names missing {name}"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=ids(WORKFLOW_FILES))
def test_postgres_services_are_postgres_15_with_health_checks(path):
    services = [(job_id, job["services"]["postgres"])
                for job_id, job in load(path)["jobs"].items() if "services" in job]
    assert services
    for job_id, service in services:
        assert service["image"] == "postgres:15", job_id
        assert service["env"]["POSTGRES_PASSWORD"] == "postgres", job_id
        assert service["ports"] == ["5432:5432"], job_id
        health = health_options(service["options"])
        assert "pg_isready" in health["health-cmd"], job_id
        assert {"health-interval", "health-timeout", "health-retries"} <= set(health), job_id


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=ids(WORKFLOW_FILES))
def test_files_the_run_blocks_use_exist(path):
    for block in run_blocks(path):
        for relative in re.findall(SCRIPT_PATH, block.script):
            assert (REPO_ROOT / relative).is_file(), f"{block.where}: {relative} does not exist"
        for relative in re.findall(r"pytest ((?:tests)/[\w./-]+)", block.script):
            assert (REPO_ROOT / relative).exists(), f"{block.where}: {relative} does not exist"
        for relative in re.findall(r"-r (requirements[\w.-]*\.txt)", block.script):
            assert (REPO_ROOT / relative).is_file(), f"{block.where}: {relative} does not exist"


# ---------------------------------------------------------------------------------------------
# Semantic checks (what actionlint would do)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=ids(WORKFLOW_FILES))
def test_needs_steps_services_and_contexts_referenced_exist(path):
    assert semantic_problems(load(path)) == []


BROKEN_WORKFLOW = {
    "on": {"push": {}},
    "env": {"LEVEL": "${{ needs.a.result }}"},
    "jobs": {
        "a": {"needs": ["ghost"], "steps": [
            {"id": "first", "run": "echo ${{ steps.later.outputs.x }}"},
            {"id": "later", "run": "echo ${{ steps.first.outputs.x }}"},
        ]},
        "b": {"needs": "a", "if": "needs.c.result == 'success'", "steps": [
            {"run": "echo", "env": {"X": "${{ job.services.redis.id }}", "Y": "${{ nedds.a }}",
                                    "Z": "${{ env.UNDEFINED }}", "W": "${{ needs.a.status }}"}},
        ]},
        "c": {"needs": ["d"], "steps": []},
        "d": {"needs": ["c"], "steps": []},
    },
}


def test_semantic_checks_catch_broken_references():
    problems = "\n".join(semantic_problems(BROKEN_WORKFLOW))
    for expected in (
        "job a needs 'ghost', which is not another job",
        "form a cycle",
        "workflow level: 'needs' is not available",
        "job a: 'steps.later.outputs.x' refers to a step that is not an earlier step id",
        "job b: \"needs.c.result == 'success'\" is not <a need of the job>",
        "job b: 'job.services.redis.id' names a service the job does not have",
        "job b: unknown context 'nedds'",
        "job b: 'env.UNDEFINED': no such workflow/job env",
        "job b: 'needs.a.status' is not <a need of the job>.result/.outputs",
    ):
        assert expected in problems
    assert "steps.first" not in problems  # an earlier step id is fine


# ---------------------------------------------------------------------------------------------
# migration-tests.yml
# ---------------------------------------------------------------------------------------------


def test_migration_tests_service_database(migration_workflow):
    job = migration_workflow["jobs"]["migration-tests"]
    service = job["services"]["postgres"]
    assert service["env"] == {"POSTGRES_PASSWORD": "postgres", "POSTGRES_DB": "migration_test_db"}
    assert "-d migration_test_db" in health_options(service["options"])["health-cmd"]


def test_migration_tests_steps_in_order(migration_workflow):
    names = [step.get("name") for step in migration_workflow["jobs"]["migration-tests"]["steps"]]
    assert names == [
        "Check out the repository",
        "Set up Python 3.12",
        "Install the system libraries WeasyPrint needs",
        "Install the Python requirements",
        "Create .env from .env.example",
        "Test the migrations",
        "Upload the reports",
        "Print the PostgreSQL server log",
    ]


def test_migration_tests_installs_weasyprint_libraries_and_requirements():
    libraries = find_step(MIGRATION_TESTS, "migration-tests",
                          "Install the system libraries WeasyPrint needs")
    packages = shlex.split(libraries["run"].replace("\\\n", " "))
    assert {"libpango-1.0-0", "libpangoft2-1.0-0", "libcairo2"} <= set(packages)
    requirements = find_step(MIGRATION_TESTS, "migration-tests", "Install the Python requirements")
    assert "python -m pip install -r requirements.txt" in requirements["run"]


def test_migration_tests_env_file_points_at_the_service():
    script = find_step(MIGRATION_TESTS, "migration-tests", "Create .env from .env.example")["run"]
    assert "cp .env.example .env" in script
    assert f"DATABASE_URL={SERVICE_DATABASE_URL}" in script
    assert "openssl rand -hex 32" in script
    assert "DEBUG=True" in script
    assert (REPO_ROOT / ".env.example").is_file(), "the workflow copies .env.example"


def test_migration_tests_runs_this_repositorys_action():
    """The step other projects adopt (action.yml), with --since on pull requests (an expression
    in `with:`, which the action hands to the shell through the environment), the default window
    on pushes, and the service's database."""
    step = find_step(MIGRATION_TESTS, "migration-tests", "Test the migrations")
    assert step["uses"] == "./"
    assert "run" not in step and "env" not in step
    assert step["with"] == {
        "database-url": SERVICE_DATABASE_URL,
        "args": f"{MIGRATION_TEST_ARGS} {PULL_REQUEST_EXPRESSION}",
    }


def test_migration_tests_checks_out_the_history_since_needs_on_pull_requests():
    checkout = find_step(MIGRATION_TESTS, "migration-tests", "Check out the repository")
    # '0' (every branch, full history) on pull_request; a number 0 would be falsy and give 1.
    assert checkout["with"]["fetch-depth"] == "${{ github.event_name == 'pull_request' && '0' || '1' }}"


def test_migration_tests_uploads_reports_always():
    step = find_step(MIGRATION_TESTS, "migration-tests", "Upload the reports")
    assert step["if"] == "always()"
    assert step["uses"].startswith("actions/upload-artifact@")
    assert step["with"]["path"] == "reports/"
    for report in ("reports/migrations-junit.xml", "reports/migrations.json"):
        assert report in MIGRATION_TEST_ARGS
        assert report.startswith(step["with"]["path"])


def test_migration_tests_prints_the_service_log_on_failure():
    step = find_step(MIGRATION_TESTS, "migration-tests", "Print the PostgreSQL server log")
    assert step["if"] == "failure()"
    assert step["env"] == {"POSTGRES_CONTAINER": "${{ job.services.postgres.id }}"}
    assert step["run"].strip() == 'docker logs "$POSTGRES_CONTAINER"'


def test_migration_tests_comments_explain_each_part():
    """A reviewer reads this file: every job part and step has a comment saying why."""
    text = MIGRATION_TESTS.read_text()
    comments = [line for line in text.splitlines() if line.strip().startswith("#")]
    assert len(comments) >= 30
    for anchor in ("permissions:", "concurrency:", "timeout-minutes:", "image: postgres:15",
                   "options: >-", "persist-credentials: false", "cache: pip",
                   "name: Create .env from .env.example", "name: Test the migrations", "uses: ./",
                   "if: always()", "if: failure()"):
        index = text.index(anchor)
        before = text[:index].rstrip().splitlines()[-3:]
        assert any(line.strip().startswith("#") or "#" in line for line in before) or "#" in (
            text[index:].splitlines()[0] + "".join(text[index:].splitlines()[1:3])
        ), f"no comment near {anchor!r}"


# ---------------------------------------------------------------------------------------------
# ci.yml
# ---------------------------------------------------------------------------------------------


def test_ci_jobs(ci_workflow):
    assert set(ci_workflow["jobs"]) == CI_JOBS
    for job_id, job in ci_workflow["jobs"].items():
        assert job.get("name") == job_id, "the status name branch protection shows"


def test_all_checks_needs_every_job_and_always_runs(ci_workflow):
    job = ci_workflow["jobs"]["all-checks"]
    assert job["needs"] == ["test", "performance", "backup-verification"]
    assert job["if"] == "always()"
    step = job["steps"][0]
    assert step["env"] == {
        "TEST_RESULT": "${{ needs.test.result }}",
        "PERFORMANCE_RESULT": "${{ needs.performance.result }}",
        "BACKUP_VERIFICATION_RESULT": "${{ needs.backup-verification.result }}",
    }
    assert '!= "success"' in step["run"]


def test_test_job_runs_sqlite_unit_tests_then_the_full_suite_on_postgresql_15(ci_workflow):
    steps = {step.get("name"): step for step in ci_workflow["jobs"]["test"]["steps"]}
    install = steps["Install PostgreSQL 15 and the libraries WeasyPrint needs"]["run"]
    assert "apt.postgresql.org.sh -y" in install
    assert "postgresql-15" in shlex.split(install.replace("\\\n", " "))
    sqlite = steps["Unit tests on SQLite"]
    assert sqlite["env"]["TEST_DATABASE_URL"].startswith("sqlite:///")
    assert sqlite["run"].startswith("python -m pytest tests/")
    full = steps["Full test suite on PostgreSQL 15"]
    assert full["run"].strip() == "python -m pytest"
    assert "TEST_DATABASE_URL" not in full.get("env", {})
    names = list(steps)
    assert names.index("Install PostgreSQL 15 and the libraries WeasyPrint needs") < names.index(
        "Full test suite on PostgreSQL 15")


def test_performance_job_runs_query_budgets_and_the_benchmark(ci_workflow):
    job = ci_workflow["jobs"]["performance"]
    steps = {step.get("name"): step for step in job["steps"]}
    budgets = steps["Query-count budgets (invoice list, detail, PDF)"]
    assert "tests/upstream/test_performance.py" in budgets["run"]
    assert budgets["env"]["TEST_DATABASE_URL"].startswith("postgres://postgres:postgres@localhost:5432/")
    benchmark = steps["Benchmark the migration tool"]
    assert benchmark["run"].strip() == (
        'python benchmarks/run.py --quick --summary "$GITHUB_STEP_SUMMARY"')
    assert benchmark["env"]["DATABASE_URL"].startswith("postgres://postgres:postgres@localhost:5432/")


def test_backup_verification_job_runs_the_script_on_the_service(ci_workflow):
    job = ci_workflow["jobs"]["backup-verification"]
    assert job["services"]["postgres"]["image"] == "postgres:15"
    step = find_step(CI, "backup-verification", "Verify that a backup restores completely")
    command = step["run"].splitlines()[-1]
    assert shlex.split(command)[:2] == ["python", "scripts/verify_backup.py"]
    assert "--database-url postgres://postgres:postgres@localhost:5432/postgres" in command


def test_script_options_in_the_workflows_are_accepted_by_the_scripts():
    """A typo in an option would only show on GitHub: parse each invocation with its parser, and
    the action step's args (on a push and on a pull request) with migration-check's."""
    parsers = {"scripts/verify_backup.py": load_verify_backup().build_parser()}
    seen = set()
    for path in WORKFLOW_FILES:
        for block in run_blocks(path):
            for line in map(str.strip, block.script.splitlines()):
                if not line.startswith("python "):
                    continue
                words = shlex.split(line)
                if words[:1] == ["python"] and len(words) > 1 and words[1] in parsers:
                    seen.add(words[1])
                    parsers[words[1]].parse_args(words[2:])  # SystemExit(2) on a bad option
    assert seen == set(parsers)
    args = find_step(MIGRATION_TESTS, "migration-tests", "Test the migrations")["with"]["args"]
    for since in ("", "--since=origin/main"):
        options = build_parser().parse_args(shlex.split(args.replace(PULL_REQUEST_EXPRESSION, since)))
        assert options.since == (since.partition("=")[2] or None)
        assert options.report_json is not None and options.junit_xml is not None
