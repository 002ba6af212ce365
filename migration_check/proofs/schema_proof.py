"""The schema proof of one migration, in step with the chain (snapshots and diffs: `schema`).

Owns: `SchemaProof` (see `protocol`): a snapshot before the migration and one after it; after the
rollback the schema must equal the first, after the re-apply the second. Writes `schema`
(identical | differs) and one finding per difference.
"""

from __future__ import annotations

from ..verdicts import Schema
from .protocol import MigrationTest, ObservedState, Proof
from .schema import diff_schema


class SchemaProof(Proof):
    """A rollback that leaves a default, an index, a constraint or a table behind, or a round trip
    that does not bring back the schema the release ran on, leaves production on a schema no
    migration describes: the next deploy fails, or the rollback only seemed to work."""

    name = "schema"

    def before_apply(self, test: MigrationTest) -> None:
        self.snapshot(test, test.before)

    def before_rollback(self, test: MigrationTest) -> None:
        self.snapshot(test, test.observed_after)

    @staticmethod
    def snapshot(test: MigrationTest, state: ObservedState) -> None:
        if test.config.check_schema:
            state.schema = test.database.schema()

    def after_rollback(self, test: MigrationTest) -> None:
        """The schema must be the one before the migration."""
        if test.before.schema is None:
            return
        findings = diff_schema(test.before.schema, test.database.schema(),
                               f"after rolling back {test.migration.name}")
        test.result.details.extend(findings)
        test.result.schema = Schema.DIFFERS if findings else Schema.IDENTICAL

    def after_reapply(self, test: MigrationTest) -> None:
        """Re-applied, the schema must be the one after the first apply."""
        applied = test.observed_after.schema
        if applied is None:
            return
        findings = diff_schema(applied, test.database.schema(), f"after re-applying {test.migration.name} (round trip)")
        test.result.details.extend(findings)
        if findings:
            test.result.schema = Schema.DIFFERS
