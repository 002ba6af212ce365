"""The stable ids of every finding, verdict and hazard rule of ours, each with a docs page.

Owns: the rule ids (the one registry the emitting code uses and the docs test enumerates),
the docs address of each (`DOCS_BASE_URL`, one constant) and of squawk's own rules.

Every id here has its page `docs/rules/<id>.md` (what was observed, why it hurts, the unsafe and
the safe migration, how to acknowledge); `tests/docs/test_rule_pages.py` fails when one is missing.

Uses: the standard library only.
"""

from __future__ import annotations

# Where the documentation lives. Relative to the repository until the site is published; the
# console names `DOCS_BASE_URL + "rules/<id>.md"`.
DOCS_BASE_URL = "docs/"
SQUAWK_DOCS_URL = "https://squawkhq.com/docs/"

# Deploy hazards observed on the server (proofs/deploy_safety/hazards.py, its RULES).
TABLE_REWRITE = "table-rewrite"
INDEX_WITHOUT_CONCURRENTLY = "index-without-concurrently"
UNIQUE_INDEX_UNDER_LOCK = "unique-index-under-lock"
FOREIGN_KEY_VALIDATION = "foreign-key-validation"
CHECK_CONSTRAINT_VALIDATION = "check-constraint-validation"
SET_NOT_NULL_SCAN = "set-not-null-scan"
SCAN_UNDER_LOCK = "scan-under-lock"
ACCESS_EXCLUSIVE_WITHOUT_LOCK_TIMEOUT = "access-exclusive-without-lock-timeout"
HAZARD_RULES = (TABLE_REWRITE, INDEX_WITHOUT_CONCURRENTLY, UNIQUE_INDEX_UNDER_LOCK, FOREIGN_KEY_VALIDATION,
                CHECK_CONSTRAINT_VALIDATION, SET_NOT_NULL_SCAN, SCAN_UNDER_LOCK,
                ACCESS_EXCLUSIVE_WITHOUT_LOCK_TIMEOUT)
# Hazards found by applying a migration on a probe database of its own (proofs/data/unique_probe.py).
UNIQUE_OVER_DUPLICATES = "unique-over-duplicates"
PROBE_RULES = (UNIQUE_OVER_DUPLICATES,)

# Findings in a migration's `details` (Finding.rule).
SCHEMA_DIFFERS = "schema-differs"
DATA_LOST = "data-lost"
POST_RELEASE_DATA_LOST = "post-release-data-lost"
BREAKS_OLD_CODE = "breaks-old-code"
BREAKS_NEW_CODE = "breaks-new-code"
DATA_NOT_COVERED = "data-not-covered"
RETRY_NOT_IDEMPOTENT = "retry-not-idempotent"
# The deploy rehearsal's findings (proofs/rehearsal/proof.py): information, never a failure.
REHEARSAL_LOCK_QUEUE = "rehearsal-lock-queue"
REHEARSAL_LOCK_TIMEOUT = "rehearsal-lock-timeout"
REHEARSAL_APPLY_FAILED = "rehearsal-apply-failed"
REHEARSAL_NOT_RUN = "rehearsal-not-run"
FINDING_RULES = (SCHEMA_DIFFERS, DATA_LOST, POST_RELEASE_DATA_LOST, BREAKS_OLD_CODE, BREAKS_NEW_CODE,
                 DATA_NOT_COVERED, RETRY_NOT_IDEMPOTENT, REHEARSAL_LOCK_QUEUE, REHEARSAL_LOCK_TIMEOUT,
                 REHEARSAL_APPLY_FAILED, REHEARSAL_NOT_RUN)

# Verdicts of a migration's steps that fail the run (MigrationResult.problems).
APPLY_FAILED = "apply-failed"
ROLLBACK_FAILED = "rollback-failed"
IRREVERSIBLE = "irreversible"
REAPPLY_FAILED = "reapply-failed"
# A lock the rehearsal measured or estimated to block writes longer than --max-blocking.
MAX_BLOCKING_EXCEEDED = "max-blocking-exceeded"
VERDICT_RULES = (APPLY_FAILED, ROLLBACK_FAILED, IRREVERSIBLE, REAPPLY_FAILED, MAX_BLOCKING_EXCEEDED)

# The project-wide checks (CheckResult.name -> rule id).
CHECK_RULES = {"forward": "forward-failed", "check_deploy": "check-deploy",
               "missing_migrations": "missing-migrations", "sequences": "sequence-behind",
               "edited_migrations": "edited-migration"}

ALL_RULES = (*HAZARD_RULES, *PROBE_RULES, *FINDING_RULES, *VERDICT_RULES, *CHECK_RULES.values())


def docs_page(rule: str, from_squawk: bool = False) -> str:
    """The page that explains a rule: ours under docs/rules/, squawk's on squawk's site."""
    if from_squawk:
        return SQUAWK_DOCS_URL + rule
    return f"{DOCS_BASE_URL}rules/{rule}.md"
