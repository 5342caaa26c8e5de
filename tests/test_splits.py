"""Tests for translator.splits: grouped train/dev/test splits without shared sentences."""

import collections

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translator.corpus import read_pairs
from translator.splits import connected_components, split_pairs


def assert_no_leak(pairs, splits):
    """Every pair is in exactly one split, and no source or target sentence is in two splits."""
    parts = {"train": splits.train, "dev": splits.dev, "test": splits.test}
    assert sorted(splits.train + splits.dev + splits.test) == list(range(len(pairs)))
    for side in (0, 1):
        owner = {}
        for name, indices in parts.items():
            for index in indices:
                sentence = pairs[index][side]
                assert owner.setdefault(sentence, name) == name, (sentence, owner[sentence], name)


def synthetic_pairs(count=3000, seed=0):
    """Pairs in small clusters sharing sources or targets, like Tatoeba's alternative translations."""
    rng = np.random.default_rng(seed)
    pairs = []
    cluster = 0
    while len(pairs) < count:
        for _ in range(min(int(rng.geometric(0.5)), count - len(pairs))):
            source, target = rng.integers(0, 3, size=2)
            pairs.append((f"fuente {cluster}.{source}", f"target {cluster}.{target}"))
        cluster += 1
    return pairs


def test_connected_components_small():
    pairs = [("Ve.", "Go."), ("Vete.", "Go."), ("Hola.", "Hi."), ("Vete.", "Leave."), ("Go.", "Ve.")]
    # "Go." as a source is not the English "Go.": sides are separate namespaces
    assert connected_components(pairs) == [[0, 1, 3], [2], [4]]


def test_long_chain_is_one_component_without_recursion():
    count = 100_000
    pairs = [(f"s{i}", f"t{i}") for i in range(count)] + [(f"s{i + 1}", f"t{i}") for i in range(count - 1)]
    components = connected_components(pairs)
    assert len(components) == 1 and len(components[0]) == len(pairs)


def test_split_sizes_and_no_leak():
    pairs = synthetic_pairs()
    splits = split_pairs(pairs, dev_size=300, test_size=200, seed=0)
    assert_no_leak(pairs, splits)
    assert len(splits.test) == 200 and len(splits.dev) == 300
    assert len(splits.train) == len(pairs) - 500
    assert splits.num_components == len(connected_components(pairs))
    train, dev, test = splits.select(pairs)
    assert test == [pairs[index] for index in splits.test] and len(train) == len(splits.train)


def test_fractions():
    pairs = synthetic_pairs()
    splits = split_pairs(pairs, dev_size=0.1, test_size=0.05, seed=1)
    assert_no_leak(pairs, splits)
    assert len(splits.dev) == 300 and len(splits.test) == 150


def test_determinism_from_seed():
    pairs = synthetic_pairs()
    first = split_pairs(pairs, 200, 200, seed=7)
    assert split_pairs(pairs, 200, 200, seed=7) == first
    assert split_pairs(pairs, 200, 200, seed=8).test != first.test


def test_component_larger_than_a_split_goes_to_train():
    giant = [(f"s{i}", "same target") for i in range(500)]
    pairs = giant + synthetic_pairs(1000)
    splits = split_pairs(pairs, dev_size=100, test_size=100, seed=0)
    assert_no_leak(pairs, splits)
    assert set(range(500)) <= set(splits.train)
    assert len(splits.dev) == 100 and len(splits.test) == 100


def test_invalid_sizes():
    pairs = synthetic_pairs(100)
    with pytest.raises(ValueError, match="only 100 pairs"):
        split_pairs(pairs, dev_size=60, test_size=50)
    with pytest.raises(ValueError, match="fraction"):
        split_pairs(pairs, dev_size=1.5)
    with pytest.raises(ValueError, match=">= 0"):
        split_pairs(pairs, test_size=-1)
    with pytest.raises(TypeError, match="pair count"):
        split_pairs(pairs, dev_size="10")


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.lists(st.tuples(st.sampled_from("abcdefgh"), st.sampled_from("ABCDEFGH")), max_size=40),
    st.integers(0, 10), st.integers(0, 10), st.integers(0, 2**32 - 1),
)
def test_no_leak_property(pairs, dev_size, test_size, seed):
    if dev_size + test_size > len(pairs):
        return
    splits = split_pairs(pairs, dev_size, test_size, seed)
    assert_no_leak(pairs, splits)
    assert len(splits.dev) <= dev_size and len(splits.test) <= test_size


@pytest.fixture(scope="module")
def real_pairs(spa_eng_path):
    return read_pairs(spa_eng_path).pairs


def test_real_corpus_split(real_pairs):
    splits = split_pairs(real_pairs, dev_size=2000, test_size=2000, seed=0)
    assert_no_leak(real_pairs, splits)
    assert len(splits.dev) == 2000 and len(splits.test) == 2000
    sizes = collections.Counter(len(component) for component in connected_components(real_pairs))
    print(f"{len(real_pairs)} pairs, {splits.num_components} components, "
          f"{sizes[1]} singletons, largest {max(sizes)} pairs")
    assert splits.num_components < len(real_pairs)  # Tatoeba does repeat sentences
    assert split_pairs(real_pairs, 2000, 2000, seed=0) == splits
