"""The data proof: seeded rows, the value of each type, fingerprints, coverage and post-release
rows.
"""
