"""What the project has and what to test: discovery, `--since`/`--shard` selection, each app's
window, and the project-wide checks.
"""
