"""Pure tensor functions in physical units: levels, filters, compressors, clipping curves.

Arguments are keyword-only, in physical units, floats or ``(batch,)`` tensors; signals are
``(batch, channels, samples)``. Note that the function :func:`compressor` shadows its module
here: import the module's other names with ``from beafx.functional.compressor import ...``.
"""
from __future__ import annotations

from .checks import check_signal
from .clip import chebyshev_clipper, cubic_clip, hard_clip, parametric_clipper, soft_clip_curve, taylor_clipper
from .compressor import (
    compressor, gain_computer, gain_reduction_db, linked_level_db, one_pole, simple_compressor,
    simple_gain_reduction_db,
)
from .filters import (
    biquad, biquad_response, cascade_response, fft_filter, fft_size, graphic_eq_quality, iir_filter, max_pole_radius,
    rfft_omega,
)
from .levels import (
    amplitude_to_db, db_to_amplitude, normalize_0dbfs, peak, peak_normalize, remove_dc, rms, rms_normalize,
)

__all__ = [
    # levels and validation
    "amplitude_to_db", "check_signal", "db_to_amplitude", "normalize_0dbfs", "peak", "peak_normalize", "remove_dc",
    "rms", "rms_normalize",
    # equalizers
    "biquad", "biquad_response", "cascade_response", "fft_filter", "fft_size", "graphic_eq_quality", "iir_filter",
    "max_pole_radius", "rfft_omega",
    # compressors
    "compressor", "gain_computer", "gain_reduction_db", "linked_level_db", "one_pole", "simple_compressor",
    "simple_gain_reduction_db",
    # clippers
    "chebyshev_clipper", "cubic_clip", "hard_clip", "parametric_clipper", "soft_clip_curve", "taylor_clipper",
]
