"""One unit per proof: the schema, the data (seeding, fingerprints, coverage, post-release rows),
the previous release's code (compat) and deploy safety (locks, hazards, squawk, --volume), each a
`protocol.Proof` listed in `registry.PROOFS`; and the round trip (apply, rollback, re-apply), the
verdicts of the chain's own steps. docs/proofs.md is the page.
"""
