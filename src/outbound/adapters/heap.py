"""The interpreter's cyclic garbage collector, tuned for a long-running service process.

Python collects its youngest objects every 700 allocations more than deallocations, and all
of them every hundred such collections or so. A service process holds a few hundred thousand
objects that live as long as it does (its modules, the application, its routes and models,
SQLAlchemy's compiled statements): each full collection walks all of them, for nothing. Busy
sending, the service spent more time in the collector than in SQLite.

So, once the process is built, what it holds is moved out of the collector's sight
(:func:`gc.freeze`: never collected, never walked again) and the youngest generation is
collected every :data:`YOUNG_THRESHOLD` allocations. Nothing is left uncollected: a cycle made
while serving is collected as before, a little later.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "settle"]

YOUNG_THRESHOLD = 20_000
"""Net allocations between collections of the youngest generation (Python's default: 700)."""


def settle() -> None:
    """Call once the process has built what it will keep, before it starts serving."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
