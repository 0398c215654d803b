"""The seeded random sources: one generator per purpose, derived from the world's seed, so the same
seed gives the same world byte for byte and changing one generator does not reshuffle the others."""
from __future__ import annotations

import bisect
import itertools
import random
from typing import Any

class Weighted:
    """A weighted choice with cumulative weights computed once (random.choices recomputes them
    on every call, which dominated generation time)."""

    __slots__ = ("values", "cum", "total")

    def __init__(self, values: tuple, weights: tuple):
        self.values = values
        self.cum = list(itertools.accumulate(weights))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random):
        return self.values[bisect.bisect_right(self.cum, rng.random() * self.total)]


class FastRandom(random.Random):
    """`random.Random` whose integer draws scale one float instead of rejection-sampling
    bits: choice/randint/sample were half of the generation time. The bias (< n / 2**53)
    does not matter for test data, and the sequence is still fully determined by the seed."""

    def _randbelow(self, n: int) -> int:  # type: ignore[override]
        return int(self.random() * n)


def rng_for(seed: int | str, *purpose: Any) -> random.Random:
    """A generator private to one purpose: string seeds are hashed with SHA-512 by
    `random`, so this is stable across processes (unlike `hash()`)."""
    return FastRandom(":".join([str(seed), *map(str, purpose)]))

