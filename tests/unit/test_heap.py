"""The service process's garbage collector settings (outbound.adapters.heap)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from outbound.adapters import heap


@pytest.fixture
def restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored")
def test_settle_freezes_what_the_process_holds_and_collects_the_young_less_often() -> None:
    before = gc.get_threshold()
    heap.settle()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, before[1], before[2])


@pytest.mark.usefixtures("restored")
def test_a_cycle_made_after_settling_is_still_collected() -> None:
    heap.settle()

    class Node:
        other: object

    a, b = Node(), Node()
    a.other, b.other = b, a
    ref = weakref.ref(a)
    del a, b
    assert ref() is not None  # a cycle: reference counting alone does not free it
    gc.collect()
    assert ref() is None
