"""chain/slots.py: how many slots a run keeps, and how their names are taken and given back.

The databases under them and the servers that serve them are run end to end
(end_to_end/test_plain_path_verdicts.py: defects has more chains than workers).
"""

from __future__ import annotations

import itertools

from migration_check.chain.slots import Slots, slot_count


class NamingServer:
    """What Slots asks a Server for before any database exists: names."""

    def __init__(self) -> None:
        self.numbers = itertools.count(1)

    def new_database_name(self, purpose: str) -> str:
        return f"tm_scratch_0000abcd_{next(self.numbers)}_{purpose}"

    def url_for(self, name: str) -> str:
        return f"postgres://u@h/{name}"


def slots_of(count: int) -> Slots:
    return Slots(NamingServer(), runner=None, count=count)  # type: ignore[arg-type] - no server is started here


def test_as_many_slots_as_chains_run_side_by_side_never_more_than_chains():
    assert slot_count(chains=5, workers=3, environ={}) == 3
    assert slot_count(chains=2, workers=3, environ={}) == 2
    assert slot_count(chains=0, workers=3, environ={}) == 0


def test_the_switch_turns_the_slots_off():
    assert slot_count(chains=5, workers=3, environ={"TM_SERVER_PER_DATABASE": "1"}) == 0
    assert slot_count(chains=5, workers=3, environ={"TM_SERVER_PER_DATABASE": "0"}) == 3


def test_the_first_free_slot_is_taken_and_none_once_all_are_in_use():
    slots = slots_of(2)
    assert slots.names == ["tm_scratch_0000abcd_1_worker1", "tm_scratch_0000abcd_2_worker2"]
    first, second = slots.take(), slots.take()
    assert (first, second) == tuple(slots.names)
    assert slots.take() is None  # the caller's database gets a name of its own


def test_a_name_given_back_is_taken_again():
    slots = slots_of(2)
    first, _ = slots.take(), slots.take()
    slots.give_back(first)
    slots.give_back(first)  # twice: still one free slot, not two
    assert slots.take() == first
    assert slots.take() is None


def test_only_slot_names_are_given_back():
    slots = slots_of(1)
    taken = slots.take()
    slots.give_back("tm_scratch_0000abcd_9_app1")
    assert slots.take() is None
    assert slots.owns(taken) and not slots.owns("tm_scratch_0000abcd_9_app1")
