"""``Optimizer``: parameter groups, per-parameter state and PyTorch-style state dicts.

A subclass supplies its ``defaults`` (hyperparameters), ``_check(group)`` (PyTorch's argument
checks) and ``_math(target, grad, state, group)``: it updates the parameter arrays
``target.data`` in place from the gradient ``grad``, creating and updating the arrays and
numbers in ``state``.

The same ``_math`` runs on one parameter (``flat.Single``, the per-parameter path and the
reference) and on a whole ``flat.FlatLayout`` (every parameter of a group with one dtype and
device; their gradients and their state are each one flat array): elementwise arithmetic gives
the same numbers either way, and a step is then a handful of array operations plus one
subtraction per parameter, instead of a dozen per parameter. A step takes the flat path when
every parameter of the layout has a gradient and their states agree (same step count), else the
per-parameter path on the same views.

Per-parameter state (``self.state[param]``) holds raw backend arrays (views of the flat
buffers) and Python numbers; ``state_dict()`` presents the arrays as Tensors and indexes the
state by the parameter's position across all groups, as PyTorch does, so it can be loaded into
a fresh optimizer over a fresh model.
"""
from __future__ import annotations

import math
import numbers
from collections import defaultdict

from .. import backend
from ..autograd import enable_grad, no_grad
from ..tensor import Tensor
from . import flat


class Optimizer:
    """``Optimizer(params, defaults)``: ``params`` is an iterable of Tensors or of dicts
    (``{"params": [...], "lr": ...}``, one per parameter group; missing hyperparameters
    come from ``defaults``)."""

    def __init__(self, params, defaults: dict):
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of Tensors or of dicts, got a single Tensor: "
                            "pass [tensor] or model.parameters()")
        self.defaults = dict(defaults)
        self._check(self.defaults)
        self.state: defaultdict = defaultdict(dict)  # param -> its state, {} until its first step
        self.param_groups: list[dict] = []
        self._layouts: list = []  # per group: (its parameters, their flat layouts), built on first use
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list: the model has no parameters, or "
                             "model.parameters() was already consumed by another optimizer")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        """Add a group of parameters with its own hyperparameters (missing ones from ``defaults``)."""
        group = dict(group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for param in params:
            if not isinstance(param, Tensor):
                raise TypeError(f"optimizers take Tensors, got {type(param).__name__}")
            if not param.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor: optimize the parameters (leaves), "
                                 "not a value computed from them")
        seen = {id(p) for existing in self.param_groups for p in existing["params"]}
        if len({id(p) for p in params}) != len(params) or any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group (or twice in one)")
        for name, value in self.defaults.items():
            group.setdefault(name, value)
        self._check(group)
        group["params"] = params
        self.param_groups.append(group)
        self._layouts_of(len(self.param_groups) - 1)  # now, so the first backward fills the flat gradients

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every gradient (``grad = None``; zero it in place when ``set_to_none=False``)."""
        if set_to_none:
            for group in self.param_groups:
                for param in group["params"]:
                    param.grad = None
            return
        for index in range(len(self.param_groups)):
            for layout in self._layouts_of(index):
                if layout.grads_in_place():
                    layout.grad.fill(0)  # one operation for the whole layout
                    continue
                for param in layout.params:
                    if param.grad is not None:
                        param.grad.data[...] = 0

    def step(self, closure=None):
        """Update every parameter that has a gradient. ``closure`` re-evaluates and returns the loss."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for index, group in enumerate(self.param_groups):
                for layout in self._layouts_of(index):
                    if not self._flat_update(layout, group):
                        for param in layout.params:
                            if param.grad is not None:
                                self._update(param, self.state[param], group)
        return loss

    def _update(self, param: Tensor, state: dict, group: dict) -> None:
        """The per-parameter path (the reference the flat path is tested against)."""
        self._math(flat.Single(param), param.grad.data, state, group)

    def _flat_update(self, layout, group: dict) -> bool:
        """Update every parameter of ``layout`` at once; False (nothing done) when it cannot."""
        if any(param.grad is None for param in layout.params):
            return False
        states = [self.state[param] for param in layout.params]
        flat_state = layout.adopt_state(states) if states[0] else {}
        if flat_state is None or (not states[0] and any(states)):
            return False
        self._math(layout, layout.gather_grads(), flat_state, group)
        layout.scatter_state(flat_state, states)
        return True

    def _math(self, target, grad, state: dict, group: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check(self, group: dict) -> None:
        """Raise ValueError for a hyperparameter PyTorch would refuse (subclasses extend)."""

    def _layouts_of(self, index: int) -> list:
        """The flat layouts of group ``index``, rebuilt when its parameters or their data changed."""
        params = self.param_groups[index]["params"]
        while len(self._layouts) <= index:
            self._layouts.append(None)
        entry = self._layouts[index]
        if entry is not None and len(entry[0]) == len(params) \
                and all(a is b for a, b in zip(entry[0], params)) \
                and all(layout.holds_current_data() for layout in entry[1]):
            return entry[1]
        layouts = flat.layouts_for(params)
        self._layouts[index] = (list(params), layouts)
        return layouts

    # ------------------------------------------------------------ state dict
    def _all_params(self):
        return [param for group in self.param_groups for param in group["params"]]

    def state_dict(self) -> dict:
        """``{"state": {position: {name: Tensor or number}}, "param_groups": [{..., "params": [positions]}]}``.

        Arrays are live views of the optimizer's state (as in PyTorch): save
        them (``tinygrad_rnn.save``) or copy them before training goes on.
        """
        position = {id(param): index for index, param in enumerate(self._all_params())}
        state = {}
        for param, entries in self.state.items():
            state[position[id(param)]] = {name: Tensor._wrap(value) if backend.is_array(value) else value
                                          for name, value in entries.items()}
        groups, start = [], 0
        for group in self.param_groups:
            packed = {name: value for name, value in group.items() if name != "params"}
            packed["params"] = list(range(start, start + len(group["params"])))
            start += len(group["params"])
            groups.append(packed)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyperparameters and per-parameter state saved by ``state_dict()`` (copied, not shared).

        Floating point arrays are cast to their parameter's dtype and moved to
        its device. Groups must match in number and size.
        """
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"the saved optimizer has {len(saved_groups)} parameter groups, this one has "
                             f"{len(self.param_groups)}")
        sizes = [len(g["params"]) for g in self.param_groups]
        saved_sizes = [len(g["params"]) for g in saved_groups]
        if sizes != saved_sizes:
            raise ValueError(f"the saved parameter groups hold {saved_sizes} parameters, this optimizer's hold "
                             f"{sizes}: was it built over the same model in the same order?")
        position = {}
        for saved, group in zip(saved_groups, self.param_groups):
            for index, param in zip(saved["params"], group["params"]):
                position[int(index)] = param
        new_state = defaultdict(dict)
        for index, entries in state_dict["state"].items():
            param = position[int(index)]
            new_state[param] = {name: _restore(value, param) for name, value in entries.items()}
        for saved, group in zip(saved_groups, self.param_groups):
            self._check({**group, **{name: value for name, value in saved.items() if name != "params"}})
        self.state = new_state
        for saved, group in zip(saved_groups, self.param_groups):
            group.update({name: value for name, value in saved.items() if name != "params"})

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for index, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {index}")
            lines.extend(f"    {name}: {value}" for name, value in sorted(group.items()) if name != "params")
        return "\n".join(lines) + "\n)"


def _restore(value, param: Tensor):
    """A private copy of a saved state value, on the parameter's device (floats in its dtype)."""
    array = value.data if isinstance(value, Tensor) else value
    if not backend.is_array(array):
        return value
    if array.dtype.kind == "f":
        array = array.astype(param.dtype)  # a copy even when the dtype already matches
    else:
        array = array.copy()
    return backend.to_device(array, param.device)


def check_number(value, message: str, low: float = 0.0, high: float | None = None) -> None:
    """PyTorch's argument check: ``low <= value`` (``< high`` when given); NaN and non-numbers fail.

    ``message`` is PyTorch's (``"Invalid learning rate: {}"``); the fix is added to it.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(message.format(repr(value)) + ": it must be a number")
    if high is None:
        if not low <= value:
            raise ValueError(message.format(value) + (f" (it must be a number >= {low:g})" if low > -math.inf
                                                      else " (it must be a number)"))
    elif not low <= value < high:
        raise ValueError(message.format(value) + f" (it must be in [{low:g}, {high:g}))")
