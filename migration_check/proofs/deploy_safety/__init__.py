"""Deploy safety: what the server was seen doing while a migration was applied (locks,
rewrites), the hazard rules, squawk, and --volume.
"""
