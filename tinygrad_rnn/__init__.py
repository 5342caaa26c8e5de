"""tinygrad_rnn: a small tensor autograd engine for recurrent networks, on NumPy and CuPy.

Public names: ``Tensor``, ``cat``, ``stack``, ``where``, ``maximum``, ``minimum``,
factories (``zeros, ones, full, arange, eye, randn, rand, uniform``), ``no_grad``,
``enable_grad``, ``manual_seed``, ``get_rng_state``, ``set_rng_state``, ``save``,
``load``, ``gradcheck``, dtypes (``float32``, ``float64``, ...), devices
(``set_default_device``, ``cuda_available``), the subpackages ``nn`` and ``optim``, and
``profiler`` (counts of ops, host syncs, uploads and kernel launches); BLAS threads with
``set_num_threads`` / ``get_num_threads`` (one by default, see ``threads``).
``tinygrad_rnn.distributed`` (collectives over MPI, for data-parallel training) is imported on
its own and needs the ``mpi`` extra only when it is used.
"""
from . import autograd, profiler, threads
from .autograd import Function, enable_grad, is_grad_enabled, no_grad
from .backend import (cuda_available, get_default_device, get_rng_state, manual_seed, set_default_device,
                      set_rng_state)
from .factories import arange, eye, full, ones, ones_like, rand, randint, randn, uniform, zeros, zeros_like
from .gradcheck import GradcheckError, gradcheck
from .serialization import load, save
from .tensor import (Tensor, bool_, cat, float16, float32, float64, get_default_dtype, int32, int64, maximum,
                     minimum, set_default_dtype, stack, where)
from .threads import get_num_threads, set_num_threads

__version__ = "0.1.0"

threads.apply_default()
