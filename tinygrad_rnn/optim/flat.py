"""Flat buffers: a parameter group's gradients and optimizer state as views into one array per
dtype and device, so an optimizer step, ``zero_grad`` and ``clip_grad_norm_`` are a handful of
array operations plus one in-place subtraction per parameter, instead of a dozen per parameter
(PyTorch's "foreach" optimizers work on lists the same way).

A :class:`FlatLayout` owns, for parameters ``p_0 .. p_{k-1}`` of one dtype and device::

    grad:   [ g_0 | g_1 | ... | g_{k-1} ]    backward writes each p_i.grad into its view
    state:  one such buffer per state array (Adam's exp_avg, exp_avg_sq, ...), whose views are
            the entries of optimizer.state[p_i]
    update: [ u_0 | u_1 | ... | u_{k-1} ]    scratch: the step's change, p_i -= u_i

The parameters keep their own arrays (``p.data`` is never replaced, as in PyTorch). Nothing
else changes for the user: ``p.grad`` and ``optimizer.state[p]`` are ordinary arrays (views),
``zero_grad()`` still sets ``p.grad = None``, state dicts keep PyTorch's layout. The layout
notices what user code did and falls back or rebuilds:

- ``p.data`` replaced (``module.to(...)``, an assignment): the layout is rebuilt on the next
  step, its state copied over (moved to the new device and dtype).
- ``p.grad`` replaced by another array: it is copied into its view before the step.
- ``p.grad`` is ``None`` for some parameter (it got no gradient): that step runs per parameter,
  on the same views, exactly as an optimizer without flat buffers does.
- state arrays replaced (``load_state_dict``): copied into the views on the next step.

How gradients land in the flat buffer: each parameter gets a *gradient slot* ``(its data
array, its grad view, the layout)``; autograd writes a leaf's first gradient into the slot's
grad view (instead of a fresh copy) while the parameter's data is still that array.
"""
from __future__ import annotations

from .. import backend

__all__ = ["FlatLayout", "Single", "layouts_for", "gradient_arrays", "segments_of"]


class FlatLayout:
    """Parameters of one dtype and device, their gradients and state, each as one flat array."""

    def __init__(self, params):
        self.params = list(params)
        self.data = [param.data for param in self.params]   # the arrays the layout was built for
        first = self.data[0]
        self.device = backend.device_of(first)
        self.xp = xp = backend.get_array_module(first)
        self.sizes = [int(array.size) for array in self.data]
        self.offsets = [sum(self.sizes[:k]) for k in range(len(self.sizes))]
        self.grad = xp.zeros_like(first, shape=(sum(self.sizes),))
        self.grad_views = self.views(self.grad)
        for param, array, grad_view in zip(self.params, self.data, self.grad_views):
            param._grad_slot = (array, grad_view, self)
        self.update = xp.empty_like(self.grad)
        self.update_views = self.views(self.update)
        self.state: dict[str, tuple] = {}   # name -> (flat array, its per-parameter views)

    def views(self, flat):
        """One view of ``flat`` per parameter, shaped like it."""
        return [flat[offset:offset + size].reshape(param.shape)
                for param, offset, size in zip(self.params, self.offsets, self.sizes)]

    def zeros(self):
        """A new zero array shaped like ``grad`` (a state buffer)."""
        return self.xp.zeros_like(self.grad)

    def apply_update(self) -> None:
        """``p_i -= u_i`` for every parameter: the step's change, computed into ``update``."""
        for array, change in zip(self.data, self.update_views):
            array -= change

    def segments(self):
        """``(start, stop, p_i.reshape(-1))`` per parameter: where each one's values lie in the flat
        buffers, for an update that changes the parameters block by block (:func:`segments_of`)."""
        return [(offset, offset + size, array.reshape(-1))
                for offset, size, array in zip(self.offsets, self.sizes, self.data)]

    def holds_current_data(self) -> bool:
        """False once user code replaced some parameter's ``.data`` (the layout must be rebuilt)."""
        return all(param.data is array for param, array in zip(self.params, self.data))

    def gather_params(self):
        """A flat copy of the parameters (for an L2 weight-decay term)."""
        return self.xp.concatenate([array.reshape(-1) for array in self.data])

    def grads_in_place(self) -> bool:
        """True when every parameter's gradient is its view of ``grad`` (``grad`` is then complete)."""
        return all(param.grad is not None and param.grad.data is view
                   for param, view in zip(self.params, self.grad_views))

    def gather_grads(self):
        """``grad`` with every parameter's current gradient in it (each must exist)."""
        for param, view in zip(self.params, self.grad_views):
            if param.grad.data is not view:  # replaced by user code: copy it in
                view[...] = backend.to_device(param.grad.data, self.device) \
                    if backend.device_of(param.grad.data) != self.device else param.grad.data
        return self.grad

    def adopt_state(self, states: list[dict]) -> dict | None:
        """The per-parameter ``states`` as one flat state dict, or ``None`` when they disagree.

        Numbers (Adam's ``step``) must be equal across parameters, and every state must have the
        same entries; arrays become the flat buffers (copied in where a state holds another
        array, e.g. after ``load_state_dict`` or a move to another device).
        """
        names = set(states[0])
        if any(set(state) != names for state in states):
            return None
        flat_state = {}
        for name in names:
            values = [state[name] for state in states]
            if not backend.is_array(values[0]):
                if any(value != values[0] for value in values):
                    return None
                flat_state[name] = values[0]
                continue
            flat, views = self.state.get(name) or self._new_state_buffer(name)
            for state, value, view in zip(states, values, views):
                if value is not view:
                    view[...] = value if backend.device_of(value) == self.device else \
                        backend.to_device(value, self.device)
                    state[name] = view
            flat_state[name] = flat
        return flat_state

    def scatter_state(self, flat_state: dict, states: list[dict]) -> None:
        """Write ``flat_state`` back as per-parameter state: views of its arrays, copies of its numbers."""
        for name, value in flat_state.items():
            if backend.is_array(value):
                entry = self.state.get(name)
                if entry is None or entry[0] is not value:
                    entry = self.state[name] = (value, self.views(value))
                for state, view in zip(states, entry[1]):
                    state[name] = view
            else:
                for state in states:
                    state[name] = value

    def _new_state_buffer(self, name):
        flat = self.zeros()
        self.state[name] = (flat, self.views(flat))
        return self.state[name]


class Single:
    """One parameter seen through :class:`FlatLayout`'s interface: the per-parameter path, which
    runs the same update arithmetic on the parameter's own arrays."""

    def __init__(self, param):
        self.data = [param.data]
        self.xp = backend.get_array_module(param.data)
        self.update = self.xp.empty_like(param.data)

    def views(self, array):
        return [array]

    def apply_update(self) -> None:
        self.data[0] -= self.update

    def segments(self):
        return [(0, self.data[0].size, self.data[0].reshape(-1))]

    def zeros(self):
        return self.xp.zeros_like(self.data[0])

    def gather_params(self):
        return self.data[0]


def segments_of(target):
    """``target.segments()`` when every parameter array there is C-contiguous (its flat view is
    then a view, not a copy); else ``None``, and the update goes through ``target.apply_update()``."""
    if not all(array.flags.c_contiguous for array in target.data):
        return None
    return target.segments()


def layouts_for(params) -> list[FlatLayout]:
    """Flat layouts over ``params``: one per dtype and device, parameters in their order within each."""
    chunks: dict = {}
    for param in params:
        chunks.setdefault((backend.device_of(param.data), param.data.dtype.str), []).append(param)
    return [FlatLayout(chunk) for chunk in chunks.values()]


def gradient_arrays(params) -> list:
    """The gradients of ``params`` (those that have one) as few arrays as possible.

    A layout's whole ``grad`` buffer stands for its parameters when all of them are in
    ``params`` with their gradients in place; any other gradient is listed on its own.
    """
    unique, seen = [], set()
    for param in params:
        if param.grad is not None and id(param) not in seen:
            seen.add(id(param))
            unique.append(param)
    present: dict = {}
    for param in unique:
        slot = param._grad_slot
        if slot is not None and slot[0] is param.data and param.grad.data is slot[1]:
            present.setdefault(id(slot[2]), [slot[2], 0])[1] += 1
    whole = {key for key, (layout, count) in present.items() if count == len(layout.params)}
    arrays = [layout.grad for key, (layout, _) in present.items() if key in whole]
    for param in unique:
        slot = param._grad_slot
        if not (slot is not None and id(slot[2]) in whole and slot[0] is param.data and param.grad.data is slot[1]):
            arrays.append(param.grad.data)
    return arrays
