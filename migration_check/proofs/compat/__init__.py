"""The compat check: the previous release's queries on the new schema.
"""
