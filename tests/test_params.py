"""ParamSpec mappings (eq. 8-9) and the canonical parameter table of DESIGN.md."""
import math
import re
from pathlib import Path

import pytest
import torch

from beafx.effects import available, effect_class
from beafx.params import TABLE, ParamSpec

DESIGN = Path(__file__).resolve().parents[1].parent / "shared" / "DESIGN.md"


def test_linear_mapping_eq8():
    s = ParamSpec("gain_db", -15, 15)
    q = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)
    assert torch.allclose(s.to_physical(q), torch.tensor([-15.0, -7.5, 0.0, 15.0], dtype=torch.float64))


def test_log_mapping_eq9():
    s = ParamSpec("f0", 30, 160, "log", "Hz")
    q = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    want = torch.tensor([30.0, math.sqrt(30 * 160), 160.0], dtype=torch.float64)
    assert torch.allclose(s.to_physical(q), want)
    # eq. 9 as printed: p = exp((log pmax - log pmin) q) pmin
    assert float(s.to_physical(0.3)) == pytest.approx(math.exp((math.log(160) - math.log(30)) * 0.3) * 30)


@pytest.mark.parametrize("scale,lo,hi", [("lin", -40, 0), ("log", 1, 60), ("log", 2, 10), ("lin", 0.1, 2)])
def test_exact_inverses(scale, lo, hi):
    s = ParamSpec("p", lo, hi, scale)
    q = torch.rand(1000, dtype=torch.float64)
    assert torch.allclose(s.to_normalized(s.to_physical(q)), q, atol=1e-12)
    p = lo + (hi - lo) * torch.rand(1000, dtype=torch.float64)
    assert torch.allclose(s.to_physical(s.to_normalized(p)), p, rtol=1e-12)


def test_float32_keeps_dtype_and_gradient():
    s = ParamSpec("attack_ms", 1, 60, "log")
    q = torch.rand(8, requires_grad=True)
    p = s.to_physical(q)
    assert p.dtype == torch.float32
    p.sum().backward()
    assert torch.isfinite(q.grad).all() and (q.grad > 0).all()


@pytest.mark.parametrize("bad", [-0.01, 1.01, math.nan, math.inf])
def test_q_outside_unit_interval_or_nan_is_an_error(bad):
    s = ParamSpec("ratio", 2, 10, "log")
    with pytest.raises(ValueError, match=r"NaN|\[0, 1\]"):
        s.to_physical(torch.tensor([0.5, bad]))


def test_bad_specs_and_physical_values():
    with pytest.raises(ValueError, match="minimum < maximum"):
        ParamSpec("x", 1, 1)
    with pytest.raises(ValueError, match="minimum > 0"):
        ParamSpec("x", 0, 1, "log")
    with pytest.raises(ValueError, match="scale"):
        ParamSpec("x", 0, 1, "exp")
    with pytest.raises(ValueError, match="outside"):
        ParamSpec("x", 0, 1).to_normalized(2.0)
    with pytest.raises(ValueError, match="NaN"):
        ParamSpec("x", 0, 1).to_normalized(math.nan)


def _parse_design_table() -> dict[str, tuple[int, list[tuple[float, float, str]]]]:
    """Effect -> (C, [(min, max, scale) per parameter]) read from DESIGN.md's table."""
    text = DESIGN.read_text()
    rows = [ln for ln in text.splitlines() if re.match(r"\| \w+(, \w+)? \(\d+\) \|", ln)]
    out = {}
    num = r"(-?[\d.]+)"
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        names = re.findall(r"(\w+)(?:, )?", cells[0].split("(")[0])
        count = int(re.search(r"\((\d+)\)", cells[0]).group(1))
        ranges = [tuple(map(float, m)) for m in re.findall(num + r"\.\." + num, cells[2])]
        scales = re.findall(r"\b(lin|log)\b", cells[3])
        if cells[2].startswith("as "):
            continue  # "as Compressor": checked through the Compressor row
        if cells[1].startswith("per band"):  # ParametricEQ: bands' f0 ranges, then gain and quality
            bands = [tuple(map(float, m)) for m in re.findall(r"(\d+)-(\d+)", cells[1])]
            gain, quality = ranges
            specs = [s for lo_hi in bands for s in ((*lo_hi, "log"), (*gain, "lin"), (*quality, "lin"))]
        elif len(ranges) == 1:
            specs = [(*ranges[0], scales[0])] * count
        else:
            specs = [(*r, s) for r, s in zip(ranges, scales if len(scales) == len(ranges) else scales * len(ranges))]
        for name in names:
            out[name] = (count, specs)
    return out


@pytest.mark.skipif(not DESIGN.exists(), reason="shared/DESIGN.md is not beside this checkout")
def test_table_equals_design_md():
    design = _parse_design_table()
    assert {"ParametricEQ", "GraphicEQ", "Compressor", "SimpleCompressor", "ParametricClipper",
            "TaylorClipper", "ChebyshevClipper"} <= set(design)
    for name, (count, specs) in design.items():
        ours = TABLE[name]
        assert len(ours) == count, name
        assert [(s.minimum, s.maximum, s.scale) for s in ours] == specs, name
    assert TABLE["ProxyCompressor"] == TABLE["HybridCompressor"] == TABLE["Compressor"]


def test_table_names_and_orders():
    assert [s.name for s in TABLE["Compressor"]] == ["threshold_db", "attack_ms", "release_ms", "ratio", "knee_db", "makeup_db"]
    assert [s.name for s in TABLE["SimpleCompressor"]] == ["threshold_db", "time_ms", "ratio", "knee_db", "makeup_db"]
    assert [s.name for s in TABLE["ParametricEQ"][:3]] == ["low_shelf.f0", "low_shelf.gain_db", "low_shelf.quality"]
    assert [s.name for s in TABLE["TaylorClipper"]][::23] == ["g1", "g24"]
    assert [s.name for s in TABLE["ChebyshevClipper"]][0] == "g0"


def test_every_available_effect_uses_the_canonical_table():
    names = available()
    assert {"clipper", "taylor", "chebyshev"} <= set(names)
    for name in names:
        cls = effect_class(name)
        assert tuple(cls().param_specs) == TABLE[cls.__name__], name
        assert cls().num_params == len(TABLE[cls.__name__])


def test_float32_round_trip_at_the_range_ends():
    for spec in TABLE["Compressor"]:
        q = torch.tensor([0.0, 1.0])  # float32: exp(log 60) may land a hair above 60
        assert torch.allclose(spec.to_normalized(spec.to_physical(q)).float(), q, atol=1e-5)
