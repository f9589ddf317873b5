"""Numba settings for the stream kernels, in one place (compare stumpy ``config.py``).

* ``FASTMATH``: the LLVM fast-math flags the kernels are compiled with. ``nnan``/``ninf`` are
  deliberately left out: the kernels detect NaN/inf input through ``np.isfinite`` on fused
  reductions, which those two flags would let LLVM delete. ``reassoc`` lets reductions
  (dot products, norms) vectorise; :data:`JIT_STRICT` drops it where explicit partial sums
  are shorter chains than what re-association would produce (small-d GLM kernel).
* ``CACHE``: compiled kernels are cached on disk (``__pycache__``) so later processes skip
  the compile.
* ``NOGIL``: batch kernels release the GIL, so Python threads of an ingestion job run them
  concurrently (the single-event kernels keep it: :data:`JIT_ONE`).
* ``PARALLEL``: the keyed kernels spread keys over threads with ``prange``.

Numba's threading layer must be thread-safe for two Python threads to launch parallel
kernels at the same time; we ask for a thread-safe layer (OpenMP or TBB) when one is
available and otherwise serialise parallel launches with a process-wide lock
(:data:`PARALLEL_LAUNCH_IS_THREADSAFE`).
"""
from __future__ import annotations

import threading

import numba

FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})
CACHE = True
NOGIL = True
PARALLEL = True

#: keyword arguments of every private kernel
JIT = dict(cache=CACHE, nogil=NOGIL, fastmath=set(FASTMATH), error_model="numpy")
#: keyword arguments of the keyed (prange) kernels
JIT_PARALLEL = dict(JIT, parallel=PARALLEL)
#: keyword arguments of small inlined helpers
JIT_INLINE = dict(JIT, inline="always")
#: without ``reassoc``: for kernels whose hand-written partial sums must stay independent
#: (LLVM would otherwise re-linearise them into one long dependency chain)
JIT_STRICT = dict(JIT, fastmath=set(FASTMATH - {"reassoc"}))
#: keyword arguments of the single-event kernels: they keep the GIL. A call takes about a
#: microsecond, less than releasing and re-taking the GIL would cost, and holding it makes
#: the call atomic with respect to key insertions (which may reallocate the state arrays) by
#: other threads.
JIT_ONE = dict(JIT, nogil=False)


def _threadsafe_layer_available() -> bool:
    for mod in ("numba.np.ufunc.omppool", "numba.np.ufunc.tbbpool"):
        try:
            __import__(mod)
            return True
        except ImportError:
            continue
    return False


PARALLEL_LAUNCH_IS_THREADSAFE = False
if numba.config.THREADING_LAYER in ("default", "threadsafe", "omp", "tbb"):
    if numba.config.THREADING_LAYER in ("omp", "tbb") or _threadsafe_layer_available():
        if numba.config.THREADING_LAYER == "default":
            numba.config.THREADING_LAYER = "threadsafe"
        PARALLEL_LAUNCH_IS_THREADSAFE = True

#: held around parallel kernel launches when the threading layer is not thread-safe
PARALLEL_LAUNCH_LOCK = threading.Lock()
