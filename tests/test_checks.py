"""The shared validation helpers of ``beafx.functional.checks`` and their users: per-example
parameters ("a float or a (batch,) tensor") and the sample-rate check, one wording everywhere."""
from __future__ import annotations

import importlib
import math
import re

import numpy as np
import pytest
import torch

from beafx.effects.clipper import ChebyshevClipper, ParametricClipper, TaylorClipper
from beafx.effects.compressor import Compressor, SimpleCompressor
from beafx.effects.eq import GraphicEQ, ParametricEQ
from beafx.functional.checks import as_batch_param, check_sample_rate, common_batch
from beafx.functional.clip import parametric_clipper, soft_clip_curve
from beafx.functional.filters import biquad, graphic_eq_quality

FC = importlib.import_module("beafx.functional.compressor")  # the package exports a function of that name

SR = 44100


# ----------------------------------------------------------------------------- as_batch_param


def test_a_float_becomes_a_batch_tensor_of_the_requested_dtype():
    t = as_batch_param(2.5, name="p", batch=3, dtype=torch.float64)
    assert t.shape == (3,) and t.dtype == torch.float64 and t.tolist() == [2.5, 2.5, 2.5]
    assert as_batch_param(2.5, name="p", batch=2).dtype == torch.get_default_dtype()
    assert as_batch_param(np.float32(1.5), name="p", batch=1).tolist() == [1.5]
    assert as_batch_param(3, name="p", batch=2).tolist() == [3.0, 3.0]
    assert as_batch_param([1.0, 2.0], name="p", batch=2).tolist() == [1.0, 2.0]  # sequences and arrays too
    assert as_batch_param(np.array([1, 2]), name="p", batch=2, dtype=torch.float64).dtype == torch.float64


def test_a_0d_tensor_is_broadcast_and_keeps_its_gradient():
    p = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    t = as_batch_param(p, name="p", batch=4)
    assert t.shape == (4,) and t.dtype == torch.float64
    t.sum().backward()
    assert float(p.grad) == 4.0  # the broadcast sums the four gradients back


def test_a_batch_tensor_keeps_its_values_device_and_gradient():
    p = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    t = as_batch_param(p, name="p", batch=3, dtype=torch.float64)
    assert t.dtype == torch.float64 and t.device == p.device and t.tolist() == [1.0, 2.0, 3.0]
    (t * torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64)).sum().backward()
    assert p.grad.tolist() == [1.0, 10.0, 100.0]
    same = as_batch_param(p, name="p", batch=3)  # no dtype asked: a float tensor keeps its own, and its memory
    assert same.dtype == torch.float32 and same.data_ptr() == p.data_ptr()
    assert as_batch_param(torch.tensor([7.0]), name="p", batch=3).tolist() == [7.0] * 3  # one value broadcasts
    assert as_batch_param(torch.tensor([1, 2]), name="p", batch=2).dtype == torch.get_default_dtype()


def test_ndim_shapes_the_result_to_broadcast_along_the_first_axis():
    x = torch.zeros(2, 3, 5)
    t = as_batch_param(torch.tensor([1.0, 2.0]), name="p", batch=2, ndim=x.dim())
    assert t.shape == (2, 1, 1) and (x + t)[1].eq(2.0).all()
    assert as_batch_param(4.0, name="p", batch=1, ndim=0).shape == ()
    with pytest.raises(ValueError, match="batch 1"):
        as_batch_param(4.0, name="p", batch=2, ndim=0)


@pytest.mark.parametrize("value, message", [
    (torch.ones(3), r"p must be a float or a \(2,\) tensor, got shape \(3,\)"),
    (torch.ones(2, 2), r"p must be a float or a \(2,\) tensor, got shape \(2, 2\)"),
    (True, "got bool"),
    ("1.0", "got str"),
    (None, "got NoneType"),
    (torch.tensor([1.0, 1j]), "real numbers"),
    (np.array([True, False]), "real numbers"),
    (["1", "2"], "real numbers"),
])
def test_wrong_types_and_shapes_name_the_parameter(value, message):
    with pytest.raises(ValueError, match=message):
        as_batch_param(value, name="p", batch=2)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, torch.tensor([0.0, math.nan])])
def test_nan_and_inf_are_rejected_with_the_owner_and_name(bad):
    with pytest.raises(ValueError, match=r"^thing: p contains NaN or Inf$"):
        as_batch_param(bad, name="p", batch=2, owner="thing")
    assert as_batch_param(math.nan, name="p", batch=1, finite=False).isnan().all()  # when asked not to check


@pytest.mark.parametrize("value, bounds, message", [
    (0.5, dict(minimum=1.0), "p must be >= 1, got 0.5"),
    (0.0, dict(minimum=0.0, open_min=True), "p must be > 0, got 0"),
    (3.0, dict(maximum=2.0), "p must be <= 2, got 3"),
    (2.0, dict(maximum=2.0, open_max=True), "p must be < 2, got 2"),
    (torch.tensor([-1.0, 5.0]), dict(minimum=0.0, maximum=2.0), "p must lie in [0, 2], got values in [-1, 5]"),
    (30000.0, dict(minimum=0.0, maximum=22050.0, open_min=True, open_max=True, unit="Hz", note="below Nyquist"),
     "p must lie in (0, 22050) Hz (below Nyquist), got 30000"),
])
def test_out_of_bounds_values_are_rejected_with_the_rule(value, bounds, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        as_batch_param(value, name="p", batch=2, **bounds)


def test_values_on_closed_bounds_are_accepted():
    t = as_batch_param(torch.tensor([0.0, 2.0]), name="p", batch=2, minimum=0.0, maximum=2.0)
    assert t.tolist() == [0.0, 2.0]


def test_common_batch():
    assert common_batch(a=1.0, b=2) == 1
    assert common_batch(a=1.0, b=torch.ones(3), c=torch.ones(1), d=torch.tensor(2.0)) == 3
    with pytest.raises(ValueError, match=r"^f: parameters must share one batch size, got \{'a': 2, 'b': 3\}$"):
        common_batch(owner="f", a=torch.ones(2), b=torch.ones(3))
    with pytest.raises(ValueError, match=r"b must be a float or a \(batch,\) tensor"):
        common_batch(a=torch.ones(2), b=torch.ones(2, 2))


# ----------------------------------------------------------------------------- check_sample_rate

BAD_RATES = [0, -44100, math.nan, math.inf, True, "44100", None, torch.tensor(44100.0)]


def _rate_message(owner: str, bad) -> str:
    return re.escape(f"{owner}: sample_rate must be a positive, finite number of Hz, got {bad!r}")


def test_check_sample_rate_accepts_positive_numbers():
    assert check_sample_rate(44100) == 44100.0 and isinstance(check_sample_rate(44100), float)
    assert check_sample_rate(np.int64(48000)) == 48000.0
    assert check_sample_rate(22050.5) == 22050.5
    with pytest.raises(ValueError, match="whole number of Hz, got 22050.5"):
        check_sample_rate(22050.5, whole=True)


@pytest.mark.parametrize("bad", BAD_RATES, ids=repr)
def test_check_sample_rate_rejects_bad_rates(bad):
    with pytest.raises(ValueError, match="^" + _rate_message("owner", bad) + "$"):
        check_sample_rate(bad, owner="owner")


def _x() -> torch.Tensor:
    return torch.randn(2, 1, 64, dtype=torch.float64) * 0.1


COMP = dict(threshold_db=-20.0, ratio=4.0, attack_ms=5.0, release_ms=50.0, knee_db=6.0)

#: Every former owner of a sample-rate check: (owner named in the message, call with a rate).
RATE_USERS = [
    ("ParametricClipper", lambda sr: ParametricClipper(sample_rate=sr)),
    ("TaylorClipper", lambda sr: TaylorClipper(sample_rate=sr)),
    ("ChebyshevClipper", lambda sr: ChebyshevClipper(sample_rate=sr)),
    ("ParametricEQ", lambda sr: ParametricEQ(sample_rate=sr)),
    ("GraphicEQ", lambda sr: GraphicEQ(sample_rate=sr)),
    ("Compressor", lambda sr: Compressor(sample_rate=sr)),
    ("SimpleCompressor", lambda sr: SimpleCompressor(sample_rate=sr)),
    ("compressor", lambda sr: FC.compressor(_x(), **COMP, makeup_db=0.0, sample_rate=sr)),
    ("gain_reduction_db", lambda sr: FC.gain_reduction_db(_x(), **COMP, sample_rate=sr)),
    ("simple_compressor", lambda sr: FC.simple_compressor(_x(), threshold_db=-20.0, ratio=4.0, time_ms=10.0, knee_db=6.0,
                                                          makeup_db=0.0, sample_rate=sr)),
    ("simple_gain_reduction_db", lambda sr: FC.simple_gain_reduction_db(_x(), threshold_db=-20.0, ratio=4.0, time_ms=10.0,
                                                                        knee_db=6.0, sample_rate=sr)),
    ("one_pole", lambda sr: FC.one_pole(torch.zeros(2, 10), time_ms=10.0, sample_rate=sr)),
    ("biquad", lambda sr: biquad(kind="peak", f0=1000.0, gain_db=3.0, quality=1.0, sample_rate=sr)),
    ("graphic_eq_quality", lambda sr: graphic_eq_quality(1000.0, sample_rate=sr)),
]


@pytest.mark.parametrize("owner, call", RATE_USERS, ids=[o for o, _ in RATE_USERS])
@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf, True], ids=repr)
def test_every_former_user_rejects_a_bad_rate_with_the_same_wording(owner, call, bad):
    with pytest.raises(ValueError, match="^" + _rate_message(owner, bad) + "$"):
        call(bad)


def test_the_former_users_still_accept_good_rates():
    for _, call in RATE_USERS:
        call(48000)
    assert ParametricClipper(sample_rate=48000.0).sample_rate == 48000
    assert isinstance(ParametricClipper(sample_rate=np.int64(48000)).sample_rate, int)
    with pytest.raises(ValueError, match="ParametricClipper: sample_rate must be a whole number of Hz"):
        ParametricClipper(sample_rate=0.5)  # used to become int(0.5) == 0


# ----------------------------------------------------------------------------- the helper's users


def test_clipper_parameters_go_through_the_helper():
    x = torch.zeros(2, 1, 16)
    with pytest.raises(ValueError, match=r"drive_db must be a float or a \(2,\) tensor, got shape \(3,\)"):
        parametric_clipper(x, drive_db=torch.zeros(3), offset=0.0, hardness=1.0)
    with pytest.raises(ValueError, match="offset contains NaN or Inf"):
        parametric_clipper(x, drive_db=0.0, offset=math.nan, hardness=1.0)
    with pytest.raises(ValueError, match=re.escape("hardness must lie in [0, 2], got 2.5")):
        soft_clip_curve(torch.linspace(-2, 2, 9), 2.5)
    y = parametric_clipper(x.double(), drive_db=torch.tensor([0.0, 6.0]), offset=0.0, hardness=1.0)
    assert y.dtype == torch.float64 and y.shape == x.shape  # the signal's dtype wins


def test_compressor_parameters_go_through_the_helper():
    x = _x()
    with pytest.raises(ValueError, match=re.escape("compressor: ratio must be >= 1, got 0.5")):
        FC.compressor(x, **{**COMP, "ratio": 0.5}, makeup_db=0.0, sample_rate=SR)
    with pytest.raises(ValueError, match=re.escape("one_pole: time_ms must be > 0, got values in [-1, 5]")):
        FC.one_pole(torch.zeros(2, 8), time_ms=torch.tensor([-1.0, 5.0]), sample_rate=SR)
    with pytest.raises(ValueError, match=re.escape("gain_computer: knee_db must be >= 0, got -1")):
        FC.gain_computer(torch.zeros(2, 3), threshold_db=-10.0, ratio=2.0, knee_db=-1.0)
    y = FC.gain_computer(torch.zeros(2, 3, dtype=torch.float64), threshold_db=torch.tensor([-10.0, 10.0]), ratio=2.0,
                         knee_db=0.0)
    assert y.dtype == torch.float64 and y[:, 0].tolist() == [-5.0, 0.0]  # (0 - T)/R + T above T, unchanged below


def test_biquad_parameters_go_through_the_helper():
    with pytest.raises(ValueError, match=re.escape(
            "biquad: f0 must lie in (0, 22050) Hz (below Nyquist at sample_rate=44100), got 30000")):
        biquad(kind="peak", f0=30000.0, gain_db=0.0, quality=1.0, sample_rate=SR)
    with pytest.raises(ValueError, match=re.escape("biquad: quality must be > 0 (the filter Q), got 0")):
        biquad(kind="peak", f0=1000.0, gain_db=0.0, quality=0.0, sample_rate=SR)
    b, a = biquad(kind="peak", f0=torch.tensor([100.0, 1000.0], dtype=torch.float32), gain_db=3.0, quality=1.0,
                  sample_rate=SR)
    assert b.dtype == a.dtype == torch.float64 and b.shape == (2, 3)  # always float64
