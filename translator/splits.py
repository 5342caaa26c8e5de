"""Train/dev/test splits with no sentence shared between splits.

Tatoeba lists several translations of one sentence (``Go.`` -> ``Ve.``, ``Vete.``, ``Vaya.``), so a
random split of *pairs* would put ``Go.`` in both train and test. Here pairs are grouped first:
two pairs are connected when they share a source sentence or a target sentence, and each
connected component (found with union-find) goes whole into one split. Components are visited in a
seeded random order and each goes to test, else dev, while it fits in the requested size, else to
train; sizes are therefore met exactly unless the last free slots are smaller than every remaining
component.
"""

from __future__ import annotations

import dataclasses
from typing import Hashable, Sequence

import numpy as np

Pair = tuple[str, str]


class _UnionFind:
    """Disjoint sets over hashable items, with path halving and union by size (no recursion)."""

    def __init__(self) -> None:
        self.parent: dict[Hashable, Hashable] = {}
        self.size: dict[Hashable, int] = {}

    def find(self, item: Hashable) -> Hashable:
        if item not in self.parent:
            self.parent[item] = item
            self.size[item] = 1
            return item
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, first: Hashable, second: Hashable) -> None:
        first, second = self.find(first), self.find(second)
        if first == second:
            return
        if self.size[first] < self.size[second]:
            first, second = second, first
        self.parent[second] = first
        self.size[first] += self.size[second]


def connected_components(pairs: Sequence[Pair]) -> list[list[int]]:
    """Group pair indices so that pairs sharing a source or a target sentence are in one group.

    Source and target strings are separate namespaces (a Spanish ``"No."`` is not the English one).

    Args:
        pairs: N ``(source, target)`` pairs.
    Returns:
        components as lists of pair indices, each sorted ascending; the list is ordered by each
        component's first index, so the result depends only on ``pairs``.
    """
    union_find = _UnionFind()
    for source, target in pairs:
        union_find.union((0, source), (1, target))
    by_root: dict[Hashable, list[int]] = {}
    for index, (source, _) in enumerate(pairs):
        by_root.setdefault(union_find.find((0, source)), []).append(index)
    return list(by_root.values())  # dicts keep insertion order: first index ascending


@dataclasses.dataclass
class Splits:
    """Pair indices of each split (sorted ascending) and how many components there were."""

    train: list[int]
    dev: list[int]
    test: list[int]
    num_components: int

    def select(self, pairs: Sequence[Pair]) -> tuple[list[Pair], list[Pair], list[Pair]]:
        """The pairs of (train, dev, test), in corpus order."""
        return ([pairs[i] for i in self.train], [pairs[i] for i in self.dev], [pairs[i] for i in self.test])


def _resolve_size(size: int | float, total: int, name: str) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a pair count (int) or a fraction (float), got {size!r}")
    if isinstance(size, (float, np.floating)):
        if not 0.0 <= size < 1.0:
            raise ValueError(f"{name} as a fraction must be in [0, 1), got {size}")
        return round(size * total)
    if size < 0:
        raise ValueError(f"{name} must be >= 0, got {size}")
    return int(size)


def split_pairs(
    pairs: Sequence[Pair], dev_size: int | float = 2000, test_size: int | float = 2000, seed: int = 0
) -> Splits:
    """Split pairs into train/dev/test with no source or target sentence in two splits.

    Args:
        pairs: N ``(source, target)`` pairs.
        dev_size: pairs wanted in dev: a count (int) or a fraction of N (float in [0, 1)).
        test_size: pairs wanted in test, likewise.
        seed: the split is a function of (pairs, sizes, seed) alone.
    Returns:
        :class:`Splits` of pair indices. dev and test get exactly the requested sizes unless no
        remaining component fits the last free slots (then slightly fewer); train gets the rest.
    """
    total = len(pairs)
    dev_target = _resolve_size(dev_size, total, "dev_size")
    test_target = _resolve_size(test_size, total, "test_size")
    if dev_target + test_target > total:
        raise ValueError(f"dev_size + test_size = {dev_target + test_target} pairs, but there are only {total} pairs")
    components = connected_components(pairs)
    order = np.random.default_rng(seed).permutation(len(components))
    train: list[int] = []
    dev: list[int] = []
    test: list[int] = []
    for component_index in order:
        component = components[component_index]
        if len(test) + len(component) <= test_target:
            test.extend(component)
        elif len(dev) + len(component) <= dev_target:
            dev.extend(component)
        else:
            train.extend(component)
    return Splits(train=sorted(train), dev=sorted(dev), test=sorted(test), num_components=len(components))
