"""One unit per proof: the round trip (apply, rollback, re-apply), the schema, the data
(seeding, fingerprints, coverage, post-release rows), the previous release's code (compat) and
deploy safety (locks, hazards, squawk, --volume).
"""
