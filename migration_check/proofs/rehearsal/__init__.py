"""The deploy rehearsal: the previous release's traffic while each migration applies, a long
query in its way, and each write-blocking lock's hold measured at several volumes and estimated
at production size (docs/rehearsal.md)."""
