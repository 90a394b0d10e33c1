"""Fixed precision for every floating-point value the pipeline writes or passes on.

NumPy picks a SIMD implementation of ``exp``, ``log``, ``logaddexp`` and reductions at run
time, and OpenBLAS picks its kernels by CPU, so the same code can give results that differ in
their last bits from one CPU to another. :func:`settle` rounds to :data:`SIGNIFICANT_BITS`
significant bits (a relative precision of 2**-20, about six significant digits) with exact
operations only (``frexp``, ``ldexp``, ``rint``), so two results that differ by a few ulps
become the same number. Every stage settles what comes out of such a step before it is
written or used for a decision, and derives thresholds and metrics from the settled values.

What is left is the chance that a value lies within a few ulps of a rounding midpoint: about
2**-30 per value, so a full run on the shared data (about 10 million written values) comes
out different on another CPU about once in a hundred such changes. Compiled loops (SciPy's
sparse products, liblinear) have no run-time dispatch, so they run the same instructions on
every x86-64 CPU; on arm64 the compiler may fuse multiply-adds, which settling absorbs as
long as the results differ in their last bits only.
"""

from __future__ import annotations

from typing import overload

import numpy as np

SIGNIFICANT_BITS = 20


@overload
def settle(x: float, bits: int = SIGNIFICANT_BITS) -> float: ...


@overload
def settle(x: np.ndarray, bits: int = SIGNIFICANT_BITS) -> np.ndarray: ...


def settle(x, bits: int = SIGNIFICANT_BITS):
    """``x`` rounded to ``bits`` significant bits (float64; a float for a Python scalar).

    Zeros, infinities and NaN are kept; rounding is half-to-even on the binary mantissa.
    """
    values = np.asarray(x, dtype=np.float64)
    mantissa, exponent = np.frexp(values)
    settled = np.ldexp(np.rint(np.ldexp(mantissa, bits)), exponent - bits)
    if np.ndim(x) == 0 and not isinstance(x, np.ndarray):
        return float(settled)
    return settled
