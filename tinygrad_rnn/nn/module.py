"""``Module``, the base of every layer, and ``Parameter``, the tensors a module trains.

Assigning a ``Parameter`` or a ``Module`` to an attribute registers it, as in
PyTorch::

    class Affine(Module):
        def __init__(self):
            super().__init__()
            self.weight = Parameter(zeros(3, 2))   # registered parameter "weight"
            self.inner = Linear(2, 2)              # registered submodule "inner"

Names are dotted paths (``"inner.weight"``) in ``named_parameters()`` and
``state_dict()``. Moving or casting a module (``to``, ``double``) replaces each
parameter's ``.data`` and keeps the same ``Parameter`` objects, so an optimizer
built before the move still updates the module's parameters.
"""
from __future__ import annotations

from collections import OrderedDict, namedtuple
from collections.abc import Mapping

from .. import backend
from ..tensor import Tensor

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Parameter(Tensor):
    """A Tensor that is a module's trainable weight: ``requires_grad=True`` by default.

    ``Parameter(data)`` shares memory with ``data`` when it is a Tensor or an
    array of a floating dtype (as ``torch.nn.Parameter`` does).
    """

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = backend.numpy.zeros((0,), dtype="float32")
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer: holds parameters, buffers and submodules.

    Subclasses call ``super().__init__()`` first, assign parameters and
    submodules as attributes and implement ``forward``; calling the module
    calls ``forward``.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------ registration
    def __setattr__(self, name, value):
        registries = self.__dict__.get("_parameters"), self.__dict__.get("_modules")
        if None in registries and isinstance(value, (Parameter, Module)):
            raise AttributeError(f"cannot assign {type(value).__name__} '{name}' before Module.__init__() "
                                 f"ran: call super().__init__() first in {type(self).__name__}.__init__")
        if isinstance(value, Parameter):
            self._forget(name, keep=self._parameters)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._forget(name, keep=self._modules)
            self._modules[name] = value
        elif registries[0] is not None and name in self._parameters:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to parameter '{name}' of "
                                f"{type(self).__name__}: wrap it as nn.Parameter(...) or assign None")
            self._parameters[name] = None
        elif registries[1] is not None and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to submodule '{name}' of "
                                f"{type(self).__name__}: assign a Module or None")
            self._modules[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} to buffer '{name}': assign a Tensor or None")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name, keep=None):
        """Drop ``name`` from the other registries and the instance dict before it is registered
        (``keep``, the registry it goes to, keeps its position, so reassignment keeps the order)."""
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not keep:
                registry.pop(name, None)
        self._non_persistent_buffers.discard(name)
        self.__dict__.pop(name, None)

    def __getattr__(self, name):
        # Only called when normal lookup fails: parameters, buffers and submodules live in registries.
        for registry in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(registry)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter('{name}') needs an nn.Parameter or None, got {type(param).__name__}")
        self._forget(name, keep=self._parameters)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """A non-trained tensor that moves with the module (and is saved when ``persistent``)."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer('{name}') needs a Tensor or None, got {type(tensor).__name__}")
        self._forget(name, keep=self._buffers)
        self._non_persistent_buffers.discard(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module('{name}') needs a Module or None, got {type(module).__name__}")
        self._forget(name, keep=self._modules)
        self._modules[name] = module

    # ------------------------------------------------------------ traversal
    def named_modules(self, prefix: str = "", memo=None):
        """``(dotted_name, module)`` for this module and every descendant, each once."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry: str, prefix: str, recurse: bool):
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))  # a shared (tied) tensor is listed once, under its first name
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        """``(dotted_name, Parameter)`` pairs, in registration order, each parameter once."""
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True):
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def apply(self, fn):
        """Call ``fn(module)`` on every submodule (children first) and on self; returns self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------ mode, device, dtype, grads
    def train(self, mode: bool = True):
        """Training mode (dropout active) for this module and every descendant; returns self."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True):
        for param in self.parameters():
            param.requires_grad = requires_grad
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (``grad = None``; zeros when ``set_to_none=False``)."""
        for param in self.parameters():
            if set_to_none or param.grad is None:
                param.grad = None
            else:
                param.grad.data[...] = 0

    def to(self, *targets, device=None, dtype=None):
        """Move (``to("cuda")``) and/or cast (``to(float64)``) every parameter and buffer in place.

        Only floating point tensors are cast. The Parameter objects stay the
        same (their ``.data`` and ``.grad`` are replaced), so optimizers stay valid.
        Returns self.
        """
        for target in targets:
            if isinstance(target, str):
                device = target
            else:
                dtype = target
        device = backend.normalize_device(device) if device is not None else None
        dtype = backend.numpy.dtype(dtype) if dtype is not None else None
        if dtype is not None and dtype.kind != "f":
            raise TypeError(f"Module.to() only casts to floating point dtypes, got {dtype}")

        def convert(array):
            if dtype is not None and array.dtype.kind == "f" and array.dtype != dtype:
                array = array.astype(dtype)
            if device is not None and backend.device_of(array) != device:
                array = backend.to_device(array, device)
            return array

        for tensor in [*self.parameters(), *self.buffers()]:
            tensor.data = convert(tensor.data)
            if tensor.grad is not None:
                tensor.grad.data = convert(tensor.grad.data)
        return self

    def double(self):
        return self.to(dtype="float64")

    def float(self):
        return self.to(dtype="float32")

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    # ------------------------------------------------------------ state dict
    def state_dict(self, prefix: str = "") -> OrderedDict:
        """Dotted name -> Tensor for every parameter and persistent buffer, in registration order.

        The Tensors are detached views of the live data (as in PyTorch): copy
        them (``{k: v.clone() ...}``) to keep a snapshot while training goes on.
        """
        state = OrderedDict()
        for module_prefix, module in self.named_modules(prefix):
            dotted = f"{module_prefix}." if module_prefix else ""
            for name, param in module._parameters.items():
                if param is not None:
                    state[dotted + name] = param.detach()
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent_buffers:
                    state[dotted + name] = buffer.detach()
        return state

    def _state_targets(self) -> OrderedDict:
        """Dotted name -> the live Tensor that ``load_state_dict`` writes into."""
        targets = OrderedDict()
        for module_prefix, module in self.named_modules():
            dotted = f"{module_prefix}." if module_prefix else ""
            for name, param in module._parameters.items():
                if param is not None:
                    targets[dotted + name] = param
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent_buffers:
                    targets[dotted + name] = buffer
        return targets

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values (Tensors or NumPy/CuPy arrays) into the parameters and buffers in place.

        Each value is cast to its parameter's dtype and moved to its device.
        Every problem is reported at once, and nothing is modified when there is
        one: mis-shaped and non-numeric values (object, string, complex arrays)
        always raise; missing and unexpected keys raise when ``strict``.
        Returns ``IncompatibleKeys(missing_keys, unexpected_keys)``.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like (names -> Tensors or arrays), got "
                            f"{type(state_dict).__name__}")
        targets = self._state_targets()
        missing = [key for key in targets if key not in state_dict]
        unexpected = [key for key in state_dict if key not in targets]
        values, mismatched, unusable = {}, [], []
        for key, target in targets.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            array = value.data if isinstance(value, Tensor) else value
            if not backend.is_array(array):
                try:
                    array = backend.numpy.asarray(array)
                except ValueError:  # a ragged list
                    array = backend.numpy.asarray(None)
            if array.dtype.kind not in "biuf":  # complex would drop its imaginary part; object/str become NaN
                unusable.append(f"{key}: {type(value).__name__} of dtype {array.dtype}")
                continue
            if tuple(array.shape) != target.shape:
                mismatched.append(f"{key}: checkpoint shape {tuple(array.shape)}, model shape {target.shape}")
                continue
            values[key] = array
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if mismatched:
            problems.append("shape mismatch: " + "; ".join(mismatched))
        if unusable:
            problems.append("not numeric (bool, integer or float arrays only): " + "; ".join(unusable))
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__} (nothing was loaded):\n  "
                               + "\n  ".join(problems)
                               + ("\n  pass strict=False to skip missing and unexpected keys"
                                  if strict and (missing or unexpected) and not (mismatched or unusable) else ""))
        for key, array in values.items():
            target = targets[key]
            array = backend.to_device(array, target.device)
            target.data[...] = array.astype(target.dtype, copy=False)
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------ calling, printing
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward(); define one in the subclass")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr (override in layers)."""
        return ""

    def __repr__(self):
        lines = []
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        head = f"{type(self).__name__}(" + (f"\n  {extra}" if extra else "")
        return head + "\n" + "\n".join(lines) + "\n)"
