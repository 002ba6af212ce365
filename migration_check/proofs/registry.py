"""The proofs every migration of a window gets, in the order their hooks are called.

Adding a proof: a module with a `Proof` subclass (see `protocol` and docs/proofs.md), and one
line here. The order matters where proofs share a moment: the schema is snapshotted before the
data proof seeds rows, the compat check runs its statements over the seeded pre-release rows
(and, after the apply, before the post-release rows are seeded), and deploy safety wraps the
apply itself.
"""

from __future__ import annotations

from .compat.proof import CompatCheck
from .data.proof import DataProof
from .deploy_safety.proof import DeploySafetyProof
from .protocol import Proof
from .schema_proof import SchemaProof

PROOFS: tuple[type[Proof], ...] = (
    SchemaProof,
    DataProof,
    CompatCheck,
    DeploySafetyProof,
)
