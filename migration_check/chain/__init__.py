"""How a migration is exercised: a chain's scratch database, the steps of each migration's
test, and the path through the migrations a squash replaces.
"""
