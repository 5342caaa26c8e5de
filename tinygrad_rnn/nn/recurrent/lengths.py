"""``lengths``: the number of real steps of each padded sequence, validated in one place.

The layers (fused and composed paths alike) and the kernels' own entry points call
:func:`check_lengths`; lengths may come in any order (no sorting, no packing).
"""
from __future__ import annotations

from ... import backend


def check_lengths(lengths, steps: int, batch: int):
    """A host int64 array ``(B,)`` of lengths, or ``None`` when every sequence is full length.

    ``lengths``: ``None``, a list or a NumPy/CuPy array of ``B`` ints, each ``1 <= length <= T``
    (``T = steps``). Raises ``ValueError`` naming the wrong value otherwise.
    """
    if lengths is None:
        return None
    # host data (a list, a NumPy array) is read as it is; only GPU data costs a device->host read
    host = backend.numpy.asarray(lengths) if backend.get_array_module(lengths) is backend.numpy else \
        backend.as_numpy(lengths)
    if host.ndim != 1 or host.shape[0] != batch:
        raise ValueError(f"lengths must hold one length per sequence, so {batch} integers: expected {batch} values "
                         f"for a batch of {batch}, got shape {tuple(host.shape)}")
    if host.dtype.kind not in "iu":
        raise ValueError(f"lengths must be integers (the number of real steps of each sequence), got dtype "
                         f"{host.dtype}: {host.tolist()}")
    bad = (host < 1) | (host > steps)
    if bad.any():
        index = int(bad.argmax())
        raise ValueError(f"lengths[{index}] = {int(host[index])} is out of range: every length must be between 1 "
                         f"and {steps}: a sequence has between 1 and T={steps} real steps, T being the number of "
                         f"time steps of the padded input")
    if (host == steps).all():
        return None  # nothing is padded: the kernels' faster unmasked path gives the same numbers
    return host.astype("int64")


__all__ = ["check_lengths"]
