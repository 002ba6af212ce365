"""chain/slots.py: how many slots a run keeps, and how their names are taken and given back.

The databases under them and the servers that serve them are run end to end
(end_to_end/test_plain_path_verdicts.py: defects has more chains than workers).
"""

from __future__ import annotations

import itertools

from migration_check.chain.slots import EMPTY_START, Slots, slot_count

TEMPLATE = "tm_scratch_0000abcd_9_template"


class NamingServer:
    """What Slots asks a Server for before any database exists: names."""

    def __init__(self) -> None:
        self.numbers = itertools.count(1)

    def new_database_name(self, purpose: str) -> str:
        return f"tm_scratch_0000abcd_{next(self.numbers)}_{purpose}"

    def url_for(self, name: str) -> str:
        return f"postgres://u@h/{name}"


def slots_of(count: int) -> Slots:
    return Slots(NamingServer(), runner=None, count=count)  # type: ignore[arg-type] - no server is stopped here


def test_as_many_slots_as_chains_run_side_by_side_never_more_than_chains():
    assert slot_count(chains=5, workers=3, isolation="fork", environ={}) == 3
    assert slot_count(chains=2, workers=3, isolation="fork", environ={}) == 2
    assert slot_count(chains=0, workers=3, isolation="fork", environ={}) == 0


def test_no_slots_without_step_servers_or_with_the_switch():
    assert slot_count(chains=5, workers=3, isolation="process", environ={}) == 0
    assert slot_count(chains=5, workers=3, isolation="fork", environ={"TM_SERVER_PER_DATABASE": "1"}) == 0
    assert slot_count(chains=5, workers=3, isolation="fork", environ={"TM_SERVER_PER_DATABASE": "0"}) == 3


def test_every_slot_is_used_once_before_any_is_used_again():
    """Chain 1 is done before chain 2 starts: chain 2 still gets slot 2 (so a run of N chains
    starts min(N, slots) servers whatever the timing); chain 3 then gets slot 1 again."""
    slots = slots_of(2)
    assert slots.names == ["tm_scratch_0000abcd_1_worker1", "tm_scratch_0000abcd_2_worker2"]
    first = slots.take(EMPTY_START)
    slots.give_back(first)
    second = slots.take(EMPTY_START)
    assert (first, second) == tuple(slots.names)
    assert slots.take(EMPTY_START) == first
    assert slots.take(EMPTY_START) is None  # both in use: the caller's database gets a name of its own


def test_a_slot_serves_only_databases_that_start_as_its_first_did():
    slots = slots_of(2)
    cloned = slots.take(TEMPLATE)
    slots.give_back(cloned)
    empty = slots.take(EMPTY_START)
    assert empty != cloned  # the unused slot, bound now to empty starts
    slots.give_back(empty)
    assert slots.take(EMPTY_START) == empty
    assert slots.take(EMPTY_START) is None  # the other slot is the template's clones'
    assert slots.take(TEMPLATE) == cloned


def test_a_name_given_back_twice_is_one_free_slot():
    slots = slots_of(1)
    name = slots.take(EMPTY_START)
    slots.give_back(name)
    slots.give_back(name)
    assert slots.take(EMPTY_START) == name
    assert slots.take(EMPTY_START) is None


def test_only_slot_names_are_given_back():
    slots = slots_of(1)
    taken = slots.take(EMPTY_START)
    slots.give_back("tm_scratch_0000abcd_9_app1")
    assert slots.take(EMPTY_START) is None
    assert slots.owns(taken) and not slots.owns("tm_scratch_0000abcd_9_app1")
