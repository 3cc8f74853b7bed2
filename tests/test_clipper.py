"""Clippers against the paper's equations (with the corrections of AUTHORS_CODE.md 2.6-2.7)."""
import math

import numpy as np
import pytest
import torch
from numpy.polynomial import chebyshev as npcheb
from numpy.polynomial import polynomial as nppoly

from beafx.effects import ChebyshevClipper, ParametricClipper, TaylorClipper
from beafx.functional.clip import (
    bounded_input, chebyshev_clipper, cubic_clip, parametric_clipper, soft_clip_curve, taylor_clipper,
)


def np_cubic(x):
    return np.where(np.abs(x) < 1.5, x - 4 * x**3 / 27, np.sign(x))


def np_curve(x, h):
    tanh, cub, hard = np.tanh(x), np_cubic(x), np.clip(x, -1, 1)
    return (1 - h) * tanh + h * cub if h < 1 else (2 - h) * cub + (h - 1) * hard


POINTS = np.array([-3.0, -1.5, -1.2, -0.75, -0.2, 0.0, 0.3, 0.75, 1.0, 1.4, 2.0, 5.0])


@pytest.mark.parametrize("h", [0.0, 0.25, 0.5, 1.0, 1.5, 2.0])
def test_curve_matches_equation_1(h):
    got = soft_clip_curve(torch.tensor(POINTS), h).numpy()
    np.testing.assert_allclose(got, np_curve(POINTS, h), atol=1e-12)


def test_base_curves_at_chosen_points():
    x = torch.tensor([0.5, 0.75, 1.5, 2.0, -0.75])
    assert torch.allclose(soft_clip_curve(x, 0.0), torch.tanh(x))
    # cubic: 0.75 - 4 * 0.75^3 / 27 = 0.6875; reaches 1 at 1.5 and stays there
    assert torch.allclose(cubic_clip(x), torch.tensor([0.5 - 4 * 0.125 / 27, 0.6875, 1.0, 1.0, -0.6875]))
    assert torch.allclose(soft_clip_curve(x, 2.0), x.clamp(-1, 1))
    # the cubic is continuous with zero slope at its knee
    k = torch.tensor([1.5 - 1e-7, 1.5 + 1e-7], dtype=torch.float64, requires_grad=True)
    y = cubic_clip(k)
    assert abs(float((y[1] - y[0]).detach())) < 1e-9
    (g,) = torch.autograd.grad(y.sum(), k)
    assert float(g.abs().max()) < 1e-6


@pytest.mark.parametrize("drive_db,offset,h", [(0.0, 0.0, 0.0), (20.0, 0.3, 1.0), (-10.0, 1.0, 2.0), (6.0, 0.5, 1.3)])
def test_parametric_clipper_matches_equation_4(drive_db, offset, h):
    x = np.linspace(-1, 1, 101)
    g = 10 ** (drive_db / 20)
    want = (np_curve(g * x + offset, h) - np_curve(np.array(offset), h)) / g
    got = parametric_clipper(torch.tensor(x).view(1, 1, -1), drive_db=drive_db, offset=offset, hardness=h)
    np.testing.assert_allclose(got.view(-1).numpy(), want, atol=1e-12)


def test_parametric_clipper_per_example_parameters():
    x = torch.linspace(-1, 1, 64, dtype=torch.float64).repeat(3, 2, 1)
    drive, off, h = torch.tensor([0.0, 10.0, -5.0]), torch.tensor([0.0, 0.2, 0.9]), torch.tensor([0.1, 1.0, 1.9])
    y = parametric_clipper(x, drive_db=drive.double(), offset=off.double(), hardness=h.double())
    for b in range(3):
        yb = parametric_clipper(x[b : b + 1], drive_db=float(drive[b]), offset=float(off[b]), hardness=float(h[b]))
        assert torch.allclose(y[b : b + 1], yb)
    assert torch.equal(y[:, 0], y[:, 1])  # channels are processed identically


def test_taylor_matches_numpy_polyval():
    rng = np.random.default_rng(0)
    g = rng.uniform(-1, 1, size=(2, 24))
    x = np.linspace(-1, 1, 257)
    got = taylor_clipper(torch.tensor(x).repeat(2, 1, 1), coefficients=torch.tensor(g))
    for b in range(2):
        want = nppoly.polyval(x, np.concatenate([[0.0], g[b]]))  # powers 1..24, no constant
        np.testing.assert_allclose(got[b, 0].numpy(), want, atol=1e-10)


def test_chebyshev_matches_numpy_chebval():
    rng = np.random.default_rng(1)
    g = rng.uniform(-1, 1, size=(2, 24))
    x = np.linspace(-1, 1, 257)
    got = chebyshev_clipper(torch.tensor(x).repeat(2, 1, 1), coefficients=torch.tensor(g))
    for b in range(2):
        np.testing.assert_allclose(got[b, 0].numpy(), npcheb.chebval(x, g[b]), atol=1e-10)


def test_polynomial_effects_keep_input_within_unit_interval():
    # A signal whose DC-free peak exceeds 1: the authors' code fed it straight to T_23.
    x = torch.cat([torch.full((1, 1, 900), -0.2), torch.full((1, 1, 100), 1.0)], dim=-1).double()
    b = bounded_input(x)
    assert float(b.abs().max()) == pytest.approx(1.0)
    assert abs(float(b.mean())) < 1e-12
    small = 0.5 * torch.sin(torch.linspace(0, 20, 1000, dtype=torch.float64)).view(1, 1, -1)
    assert torch.allclose(bounded_input(small), small - small.mean())  # never scaled up
    q = torch.ones(1, 24, dtype=torch.float64)
    for effect in (TaylorClipper(), ChebyshevClipper()):
        y = effect(x, q)
        assert torch.isfinite(y).all() and float(y.abs().max()) <= 24.0 + 1e-9


def test_effect_equals_functional():
    x = torch.randn(3, 2, 500, dtype=torch.float64) * 0.5
    q = torch.rand(3, 3, dtype=torch.float64)
    eff = ParametricClipper()
    p = eff.physical(q)
    assert torch.allclose(eff(x, q), parametric_clipper(x, drive_db=p["drive_db"], offset=p["offset"], hardness=p["hardness"]))
    assert eff.param_names == ["drive_db", "offset", "hardness"]
    assert float(p["drive_db"].min()) >= -10 and float(p["drive_db"].max()) <= 20


@pytest.mark.parametrize("h", [0.4, 1.6])
def test_parametric_gradcheck_away_from_kinks(h):
    torch.manual_seed(0)
    # |g x + o| stays inside (-0.9, 0.9) or beyond 1.6: away from the hard (1) and cubic (1.5) kinks
    x = (torch.rand(2, 1, 8, dtype=torch.float64) * 0.3 + 0.05).requires_grad_()
    drive = torch.tensor([0.0, 2.0], dtype=torch.float64, requires_grad=True)
    off = torch.tensor([0.1, 0.2], dtype=torch.float64, requires_grad=True)
    hard = torch.full((2,), h, dtype=torch.float64, requires_grad=True)
    f = lambda x, d, o, hh: parametric_clipper(x, drive_db=d, offset=o, hardness=hh)
    assert torch.autograd.gradcheck(f, (x, drive, off, hard))


def test_polynomial_gradcheck():
    x = (torch.rand(2, 1, 16, dtype=torch.float64) - 0.5).requires_grad_()
    q = torch.rand(2, 24, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, q: TaylorClipper()(x, q), (x, q))
    assert torch.autograd.gradcheck(lambda x, q: ChebyshevClipper()(x, q), (x, q))


@pytest.mark.parametrize("cls", [ParametricClipper, TaylorClipper, ChebyshevClipper])
@pytest.mark.parametrize("signal", ["silence", "spike", "noise"])
@pytest.mark.parametrize("qval", ["zeros", "ones", "random"])
def test_finite_outputs_and_gradients(cls, signal, qval):
    eff = cls()
    x = {"silence": torch.zeros(2, 2, 256), "spike": torch.zeros(2, 2, 256).index_fill_(2, torch.tensor([7]), 1.0),
         "noise": torch.randn(2, 2, 256).clamp(-1, 1)}[signal].requires_grad_()
    q = {"zeros": torch.zeros(2, eff.num_params), "ones": torch.ones(2, eff.num_params),
         "random": torch.rand(2, eff.num_params)}[qval].requires_grad_()
    y = eff(x, q)
    assert y.shape == x.shape and torch.isfinite(y).all()
    gx, gq = torch.autograd.grad(y.square().sum(), (x, q))
    assert torch.isfinite(gx).all() and torch.isfinite(gq).all()


@pytest.mark.parametrize("cls", [ParametricClipper, TaylorClipper, ChebyshevClipper])
def test_bad_inputs_name_the_problem(cls):
    eff = cls()
    C = eff.num_params
    x = torch.randn(2, 1, 100)
    with pytest.raises(ValueError, match="batch, channels, samples"):
        eff(torch.randn(100), torch.rand(1, C))
    with pytest.raises(ValueError, match="parameters"):
        eff(x, torch.rand(2, C + 1))
    with pytest.raises(ValueError, match="batch size"):
        eff(x, torch.rand(3, C))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        eff(x, torch.rand(2, C) + 1.5)
    with pytest.raises(ValueError, match="NaN"):
        eff(x, torch.full((2, C), math.nan))
    bad = x.clone()
    bad[0, 0, 3] = math.inf
    with pytest.raises(ValueError, match="NaN or Inf"):
        eff(bad, torch.rand(2, C))
    with pytest.raises(ValueError, match="float"):
        eff(torch.ones(2, 1, 10, dtype=torch.int64), torch.rand(2, C))
