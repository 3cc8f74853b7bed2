"""Pure tensor functions in physical units: filters, gain computer, clipping curves.

Arguments are keyword-only, in physical units, floats or ``(batch,)`` tensors.
"""
from __future__ import annotations

from .levels import (
    amplitude_to_db, db_to_amplitude, normalize_0dbfs, peak, peak_normalize, remove_dc, rms, rms_normalize,
)

__all__ = [
    "amplitude_to_db", "db_to_amplitude", "normalize_0dbfs", "peak", "peak_normalize", "remove_dc", "rms",
    "rms_normalize",
]

from .clip import (  # noqa: E402
    chebyshev_clipper, cubic_clip, hard_clip, parametric_clipper, soft_clip_curve, taylor_clipper,
)

__all__ += ["chebyshev_clipper", "cubic_clip", "hard_clip", "parametric_clipper", "soft_clip_curve", "taylor_clipper"]

from .filters import (  # noqa: E402
    biquad, biquad_response, cascade_response, fft_filter, fft_size, graphic_eq_quality, iir_filter, max_pole_radius,
    rfft_omega,
)

__all__ += [
    "biquad", "biquad_response", "cascade_response", "fft_filter", "fft_size", "graphic_eq_quality", "iir_filter",
    "max_pole_radius", "rfft_omega",
]

from .compressor import (  # noqa: E402
    compressor, gain_computer, gain_reduction_db, linked_level_db, one_pole, simple_compressor,
    simple_gain_reduction_db,
)

__all__ += [
    "compressor", "gain_computer", "gain_reduction_db", "linked_level_db", "one_pole", "simple_compressor",
    "simple_gain_reduction_db",
]
