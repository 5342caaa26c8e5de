"""Tests for tinygrad_rnn.factories: sizes and ranges are checked as PyTorch checks them."""
import re

import numpy as np
import pytest

import tinygrad_rnn as tg


@pytest.mark.parametrize("make", [tg.zeros, tg.ones, tg.randn, tg.rand, tg.uniform], ids=lambda f: f.__name__)
def test_a_negative_size_is_refused_naming_it(make):
    with pytest.raises(RuntimeError, match=re.escape("Trying to create tensor with negative dimension -3: [2, -3]")):
        make(2, -3)
    with pytest.raises(RuntimeError, match=re.escape("negative dimension -1: [-1]")):
        make((-1,))
    assert make(0, 2).shape == (0, 2) and make([2, 1]).shape == (2, 1)


@pytest.mark.parametrize("make", [tg.zeros, tg.ones, tg.randn, tg.rand], ids=lambda f: f.__name__)
@pytest.mark.parametrize("size", [2.5, float("nan"), float("inf"), "3", None])
def test_a_size_that_is_not_an_int_is_a_type_error(make, size):
    with pytest.raises(TypeError, match="size must be a tuple of ints"):
        make(2, size)


def test_full_randint_and_eye_check_their_sizes():
    with pytest.raises(RuntimeError, match="negative dimension -2"):
        tg.full((3, -2), 1.0)
    with pytest.raises(RuntimeError, match="negative dimension -2"):
        tg.randint(0, 5, (-2,))
    with pytest.raises(RuntimeError, match="expects 'from' to be less than 'to', but got from=5 >= to=5"):
        tg.randint(5, 5, (2,))
    with pytest.raises(RuntimeError, match="n must be greater or equal to 0, got -1"):
        tg.eye(-1)
    with pytest.raises(RuntimeError, match="m must be greater or equal to 0, got -2"):
        tg.eye(2, -2)
    assert tg.eye(2, 0).shape == (2, 0) and tg.randint(0, 3, (4,)).dtype == np.int64


def test_arange_refuses_what_pytorch_refuses():
    with pytest.raises(RuntimeError, match="step must be nonzero"):
        tg.arange(0, 5, 0)
    for start, end, step in ((0, 5, -1), (5, 0, 1)):
        with pytest.raises(RuntimeError, match="upper bound and lower bound inconsistent with step sign"):
            tg.arange(start, end, step)
    for end in (float("inf"), float("nan")):
        with pytest.raises(RuntimeError, match="unsupported range"):
            tg.arange(0, end)
    assert tg.arange(5, 5).shape == (0,) and tg.arange(5, 0, -2).tolist() == [5, 3, 1]
