"""proofs/data/proof: a relaxed unique key that no post-release row could repeat is a coverage gap,
never a silent pass (the third-party survey's mfa.0003 case: a conditional unique constraint that
forbids the value the row copied)."""

from __future__ import annotations

from types import SimpleNamespace

from migration_check.proofs.data.proof import repeat_relaxed_keys
from migration_check.proofs.data.seeding import SeedReport


class Repeats:
    """A database whose repeat_key gives the row it is told to (None: no row could repeat)."""

    def __init__(self, row: str | None) -> None:
        self.row = row

    def repeat_key(self, table, key, report, choices=None):
        return self.row


def proof_test(row: str | None):
    return SimpleNamespace(database=Repeats(row), migration=SimpleNamespace(name="0003_type_uniq"))


def test_a_repeated_relaxed_key_is_information():
    (finding,) = repeat_relaxed_keys(proof_test("7"), [("mfa_authenticator", ("type", "user_id"))], SeedReport(), {})
    assert (finding.kind, finding.rule) == ("info", None)
    assert finding.message == ("0003_type_uniq relaxes the unique key (type, user_id) of mfa_authenticator: "
                               "a post-release row repeats it (primary key 7)")


def test_a_relaxed_key_no_row_could_repeat_is_a_coverage_gap():
    (finding,) = repeat_relaxed_keys(proof_test(None), [("mfa_authenticator", ("type", "user_id"))], SeedReport(), {})
    assert (finding.kind, finding.rule) == ("coverage", "data-not-covered")
    assert finding.extra == {"table": "mfa_authenticator", "column": None}
    assert "no post-release row could repeat it" in finding.message
