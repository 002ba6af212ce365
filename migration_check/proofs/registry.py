"""The proofs every migration of a window gets, in the order their hooks are called.

Adding a proof: a module with a `Proof` subclass (see `protocol` and docs/proofs.md), and one
line here. Within a moment the hooks run in this order, and it matters: the schema is snapshotted
before the data proof seeds rows (before the apply and before the rollback), the compat check
runs its statements over the pre-release rows the data proof seeded, and the schema's findings
come before the data's in each migration's details. The first proof is the outermost wrapper of
the apply.
"""

from __future__ import annotations

from .compat.proof import CompatCheck
from .data.proof import DataProof
from .deploy_safety.proof import DeploySafetyProof
from .protocol import Proof
from .rehearsal.proof import RehearsalProof
from .retry.proof import RetryProof
from .schema_proof import SchemaProof

PROOFS: tuple[type[Proof], ...] = (
    SchemaProof,
    DataProof,
    CompatCheck,
    DeploySafetyProof,
    RetryProof,
    RehearsalProof,
)
