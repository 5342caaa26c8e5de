"""A small seq2seq translator (Spanish -> English by default) built on ``tinygrad_rnn``."""
import os

# One BLAS thread unless the user chose otherwise. The translator's matrix products are small
# (64-128 rows): on the 2-core reference machine two OpenBLAS threads made training 4-10x
# slower whenever anything else ran (their spin-wait barriers fight for the cores), and one
# thread loses nothing when the machine is idle. This must run before NumPy is imported.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")


def __getattr__(name):
    """``translator.Translator`` without importing the engine until it is used."""
    if name == "Translator":
        from translator.inference import Translator  # noqa: PLC0415

        return Translator
    raise AttributeError(f"module 'translator' has no attribute {name!r}")
