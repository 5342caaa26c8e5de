"""``gradcheck``: compare analytic gradients with central finite differences (float64)."""
from __future__ import annotations

from . import backend
from .tensor import Tensor, float64


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with its finite-difference estimate."""


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True) -> bool:
    """Check every gradient of ``fn(*inputs)`` against central differences.

    ``inputs``: a sequence of Tensors (those with ``requires_grad`` are checked)
    and other arguments passed through. They should be float64; float32 inputs
    are cast. ``fn`` may return a Tensor or a tuple of Tensors; the check uses a
    fixed random weighting of every output, so each output's gradient counts.
    Returns True, or raises ``GradcheckError`` naming the input and the worst
    element (returns False instead when ``raise_exception=False``). A NaN or
    infinite gradient, analytic or numeric, always fails.
    """
    inputs = [Tensor(t.data.astype("float64"), requires_grad=t.requires_grad)
              if isinstance(t, Tensor) and t.dtype.kind == "f" and t.dtype != float64 else t for t in inputs]
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck needs at least one input with requires_grad=True")
    generator = backend.numpy.random.default_rng(1234)
    outputs = _as_tuple(fn(*inputs))
    weights = [backend.to_device(generator.standard_normal(o.shape), o.device) for o in outputs]

    def objective():
        total = 0.0
        for output, weight in zip(_as_tuple(fn(*inputs)), weights):
            total += float((output.data.astype("float64") * weight).sum())
        return total

    for t in inputs:
        if isinstance(t, Tensor):
            t.grad = None
    loss = None
    for output, weight in zip(outputs, weights):
        term = (output * Tensor(weight)).sum()
        loss = term if loss is None else loss + term
    loss.backward()

    for i in checked:
        tensor = inputs[i]
        analytic = backend.as_numpy(tensor.grad.data) if tensor.grad is not None else \
            backend.numpy.zeros(tensor.shape)
        numeric = backend.numpy.zeros(tensor.shape)
        # Perturb the array itself, element by element: reshape(-1) of a
        # non-contiguous array would be a copy and the perturbation lost.
        for index in backend.numpy.ndindex(*tensor.shape):
            original = float(tensor.data[index])
            tensor.data[index] = original + eps
            plus = objective()
            tensor.data[index] = original - eps
            minus = objective()
            tensor.data[index] = original
            numeric[index] = (plus - minus) / (2 * eps)
        np = backend.numpy
        finite = np.isfinite(analytic) & np.isfinite(numeric)
        with np.errstate(invalid="ignore"):
            error = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        # NaN or inf in either gradient fails (NaN compares False to everything, so test it explicitly)
        wrong = ~finite | (error > 0)
        if wrong.any():
            flat = int((~finite).reshape(-1).argmax()) if not finite.all() else int(error.reshape(-1).argmax())
            index = np.unravel_index(flat, tensor.shape)
            problem = "is not finite" if not finite[index] else "is wrong"
            message = (f"gradient of input {i} (shape {tensor.shape}) {problem} at index {tuple(map(int, index))}: "
                       f"analytic {analytic[index]:.8g}, numeric {numeric[index]:.8g}")
            if raise_exception:
                raise GradcheckError(message)
            return False
    return True


def _as_tuple(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)
