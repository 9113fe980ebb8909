"""Bulk work on a national roster: millions of tuples and dicts made at once, none of them in a
reference cycle."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_gc() -> Iterator[None]:
    """No cyclic garbage collection inside: each collection of the older generations walks
    every object made so far again (a third of the time of a national import). Collection
    resumes, as it was, on leaving."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
