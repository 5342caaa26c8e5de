"""Reverse-mode automatic differentiation: ``Function`` nodes and the backward pass.

A ``Function`` computes its outputs from raw backend arrays in ``forward`` and
the gradients of its inputs from the gradients of its outputs in ``backward``.
``Function.apply`` wraps that in Tensors and records the graph when any input
requires a gradient and grad mode is on.

The backward pass is iterative: functions are taken from a heap ordered by
*generation* (one more than the newest input), so every output gradient is
complete before its function runs, and a chain of 100,000 ops never recurses.
"""
from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import weakref

from . import profiler

_grad_enabled = True
_retaining_graph = False


def is_grad_enabled() -> bool:
    return _grad_enabled


def retaining_graph() -> bool:
    """True inside ``backward(retain_graph=True)``: a Function must not consume what it saved."""
    return _retaining_graph


class _GradMode(contextlib.ContextDecorator):
    """Shared body of ``no_grad`` and ``enable_grad``: a context manager and a decorator."""

    mode = True

    def __enter__(self):
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = self.mode
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._previous
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return func(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Disable graph recording: ``with no_grad(): ...`` or ``@no_grad()``."""

    mode = False


class enable_grad(_GradMode):
    mode = True


class Function:
    """One differentiable operation.

    Subclasses implement ``forward(self, *args, **kwargs)`` on raw arrays
    (Tensor arguments arrive unwrapped; other arguments pass through unchanged)
    and ``backward(self, *grad_outputs)`` returning one gradient per positional
    argument (``None`` where there is none). A ``grad_output`` is ``None`` when
    that output received no gradient. ``self.needs_input_grad[k]`` says whether
    argument ``k`` needs one, so backward can skip work.
    """

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, *grad_outputs):  # pragma: no cover - abstract
        raise NotImplementedError

    def grad_buffer(self, index: int, shape, dtype):
        """In ``backward``: an array that argument ``index``'s gradient may be computed into, or ``None``.

        It is the parameter's view of an optimizer's flat gradient buffer (``optim/flat.py``) while
        the parameter has no gradient yet: a gradient returned *in* that array becomes ``.grad``
        without the copy a new array needs (for an output layer's or an embedding's weight, a
        copy of millions of values every step). ``None`` unless argument ``index`` is such a leaf,
        of this ``shape`` and ``dtype``, and no other argument is the same tensor.
        """
        tensor = self.inputs[index]
        if tensor is None or tensor._ctx is not None or tensor.grad is not None or not tensor.requires_grad:
            return None
        slot = tensor._grad_slot
        if slot is None or slot[0] is not tensor.data or slot[1].shape != tuple(shape) or slot[1].dtype != dtype:
            return None
        if sum(other is tensor for other in self.inputs) != 1:
            return None
        return slot[1]

    @classmethod
    def apply(cls, *args, **kwargs):
        if profiler.enabled:
            profiler.count_op()
        tensor_type = Tensor
        tensors = [a for a in args if isinstance(a, tensor_type)]
        array_type = type(tensors[0].data) if tensors else None
        for t in tensors:
            if type(t.data) is not array_type:  # noqa: E721 - NumPy vs CuPy arrays: different devices
                raise RuntimeError(
                    f"{cls.__name__}: expected all tensors on the same device, got '{tensors[0].device}' and "
                    f"'{t.device}'; move them with .to('{tensors[0].device}') first")
        fn = cls()
        fn.needs_input_grad = needs = tuple(isinstance(a, tensor_type) and a.requires_grad for a in args)
        record = _grad_enabled and any(needs)
        raw = [a.data if isinstance(a, tensor_type) else a for a in args]
        result = fn.forward(*raw, **kwargs)
        single = not isinstance(result, tuple)
        wrap = tensor_type._wrap
        outputs = tuple(wrap(array, record) for array in ((result,) if single else result))
        if record:
            fn.inputs = tuple(a if isinstance(a, tensor_type) else None for a in args)
            fn.generation = max(t._generation for t in tensors)
            fn.outputs = tuple(weakref.ref(o) for o in outputs)
            for o in outputs:
                o._ctx, o._generation = fn, fn.generation + 1
        return outputs[0] if single else outputs


# The Tensor class. tensor.py imports this module, so it cannot be imported here; tensor.py
# hands its class over with ``_set_tensor_class`` as soon as it is defined.
Tensor = None


def _set_tensor_class(tensor_class) -> None:
    global Tensor
    Tensor = tensor_class


_FREED = object()


def run_backward(roots, gradients, retain_graph: bool = False) -> None:
    """Propagate each raw ``gradients[k]`` (shaped like ``roots[k]``) to every leaf that requires grad."""
    global _retaining_graph
    previous, _retaining_graph = _retaining_graph, retain_graph
    try:
        _run_backward(roots, gradients, retain_graph)
    finally:
        _retaining_graph = previous


def backward(tensors, grad_tensors, retain_graph: bool = False) -> None:
    """``torch.autograd.backward``: one backward pass from several outputs at once.

    ``tensors``: Tensors that require grad; ``grad_tensors``: one gradient (Tensor or array) each,
    of the same shape. Cheaper than ``sum((t * g).sum())``: no extra graph and no extra arrays.
    """
    tensors, grad_tensors = list(tensors), list(grad_tensors)
    if len(tensors) != len(grad_tensors):
        raise ValueError(f"backward got {len(tensors)} tensors but {len(grad_tensors)} gradients")
    arrays = []
    for tensor, grad in zip(tensors, grad_tensors):
        if not tensor.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad")
        array = (grad if isinstance(grad, Tensor) else Tensor(grad, device=tensor.device)).data
        if tuple(array.shape) != tensor.shape:
            raise RuntimeError(f"gradient shape {tuple(array.shape)} does not match tensor shape {tensor.shape}")
        arrays.append(array.astype(tensor.dtype, copy=False))
    run_backward(tensors, arrays, retain_graph=retain_graph)


def _run_backward(roots, gradients, retain_graph):
    grads, keep_alive = {}, {}
    summed = set()  # keys whose gradient is a sum made here: later gradients are added to it in place
    order = itertools.count()
    heap = []
    queued = set()

    def push(fn):
        if id(fn) not in queued:
            queued.add(id(fn))
            heapq.heappush(heap, (-fn.generation, next(order), fn))

    for root, gradient in zip(roots, gradients):
        if root._ctx is None:
            _accumulate_leaf(root, gradient)
            continue
        key = id(root)
        grads[key] = grads[key] + gradient if key in grads else gradient
        keep_alive[key] = root
        push(root._ctx)
    while heap:
        _, _, fn = heapq.heappop(heap)
        if getattr(fn, "inputs", None) is _FREED:
            raise RuntimeError(
                "Trying to backward through the graph a second time (its saved arrays were freed); "
                "call .backward(retain_graph=True) the first time if you need to")
        output_grads = []
        for ref in fn.outputs:
            out = ref()
            grad = None if out is None else grads.pop(id(out), None)
            output_grads.append(grad)
            if out is not None:
                summed.discard(id(out))
                keep_alive.pop(id(out), None)
                if out._retains_grad and grad is not None:
                    _accumulate_leaf(out, grad)
        input_grads = fn.backward(*output_grads)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        for tensor, grad in zip(fn.inputs, input_grads):
            if tensor is None or grad is None or not tensor.requires_grad:
                continue
            if grad.shape != tensor.shape:
                raise RuntimeError(f"{type(fn).__name__}.backward returned a gradient of shape {grad.shape} "
                                   f"for an input of shape {tensor.shape}")
            if tensor._ctx is None:
                _accumulate_leaf(tensor, grad)
                continue
            key = id(tensor)
            if key in summed:
                grads[key] += grad  # e.g. the encoder outputs, read by every decoder step
            elif key in grads:
                grads[key] = grads[key] + grad
                summed.add(key)
            else:
                grads[key] = grad
                keep_alive[key] = tensor  # the id must stay unique until the gradient is used
            push(tensor._ctx)
        if not retain_graph:
            generation = fn.generation
            fn.__dict__.clear()  # drop saved arrays as soon as they are used
            fn.generation, fn.inputs = generation, _FREED


def _accumulate_leaf(tensor, grad) -> None:
    if grad.dtype != tensor.dtype:
        grad = grad.astype(tensor.dtype)
    if tensor.grad is None:
        # A copy: backward may hand the same array to several inputs, and later accumulation is
        # in place. An optimizer with flat buffers gave the parameter a slot (optim/flat.py): the
        # copy goes into its view of the flat gradient while that slot still matches the data.
        slot = tensor._grad_slot
        if slot is not None and slot[0] is tensor.data:
            if grad is not slot[1]:  # not already computed there (Function.grad_buffer)
                slot[1][...] = grad
            tensor.grad = Tensor._wrap(slot[1])
        else:
            tensor.grad = Tensor._wrap(grad.copy())
    else:
        tensor.grad.data += grad
