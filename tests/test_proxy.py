"""Neural proxy compressor, comparison TCN, hybrid, proxy training (issue 9)."""
from __future__ import annotations

import math
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from beafx.effects import Compressor, make
from beafx.effects.proxy import (
    DEFAULT_WEIGHTS, DILATIONS, KERNEL, RECEPTIVE_FIELD, HybridCompressor, ProxyCompressor, TCNCompressor,
    load_weights, save_weights,
)
from beafx.params import ParamSpec

ROOT = Path(__file__).resolve().parents[1]
FS = 44100


def _proxy(seed: int = 0, dtype=torch.float64) -> ProxyCompressor:
    """An untrained proxy with random (not default) BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    m = ProxyCompressor(weights=None)
    for mod in m.gen:
        if isinstance(mod, torch.nn.BatchNorm1d):
            mod.running_mean.normal_()
            mod.running_var.uniform_(0.5, 2.0)
    return m.to(dtype).eval()


def _signal(batch: int, n: int, seed: int = 0, channels: int = 1, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, n, generator=g, dtype=torch.float64)
    env = torch.rand(batch, 1, -(-n // 500), generator=g, dtype=torch.float64).repeat_interleave(500, -1)[..., :n]
    x = x * env
    return (x / x.abs().amax(dim=(1, 2), keepdim=True)).to(dtype)


def _q(batch: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ----------------------------------------------------------------------------- architecture
def test_parameter_count_is_the_papers_8004():
    m = ProxyCompressor(weights=None)
    count = lambda mod: sum(p.numel() for p in mod.parameters())  # noqa: E731
    assert count(m) == 8004
    # the breakdown read from the authors' checkpoint (AUTHORS_CODE.md 2.5)
    assert count(m.gen) == 1843
    assert [count(b) for b in m.blocks] == [648, 1376, 1376, 1376, 1376]
    assert count(m.output) == 9
    # the comparison TCN conditions on all six q: 2 more inputs x 16 weights
    assert sum(p.numel() for p in TCNCompressor().parameters()) == 8004 + 2 * 16


def test_receptive_field_constant_and_measured():
    assert RECEPTIVE_FIELD == 1 + (KERNEL - 1) * sum(DILATIONS) == 133_333
    assert abs(RECEPTIVE_FIELD / FS - 3.023) < 1e-3
    m = _proxy()
    n = RECEPTIVE_FIELD + 100
    x = _signal(1, n).requires_grad_()
    y = m(x, _q(1))
    y[0, 0, -1].backward()
    nonzero = (x.grad[0, 0] != 0).nonzero().flatten()
    # the last output depends on exactly the last RECEPTIVE_FIELD inputs
    assert int(nonzero.min()) == n - RECEPTIVE_FIELD
    assert int(nonzero.max()) == n - 1


@pytest.mark.parametrize("padding", ["cached", "zeros"])
def test_causal(padding):
    m = _proxy()
    x = _signal(2, 3000)
    q = _q(2)
    x2 = x.clone()
    x2[..., 1500:] = _signal(2, 1500, seed=5)
    with torch.no_grad():
        y, y2 = m(x, q, padding=padding), m(x2, q, padding=padding)
    assert torch.equal(y[..., :1500], y2[..., :1500])
    assert not torch.allclose(y[..., 1500:], y2[..., 1500:])


def test_cached_history_equals_zero_padding():
    m = _proxy()
    x, q = _signal(3, 4000), _q(3)
    with torch.no_grad():
        cached = m(x, q, padding="cached")
        zeros = m(x, q, padding="zeros")
    assert torch.allclose(cached, zeros, rtol=0, atol=1e-12)
    assert zeros.abs().max() > 0.1


def test_large_batches_run_in_chunks_with_the_same_result():
    m = _proxy()
    x, q = _signal(6, 1000), _q(6)
    with torch.no_grad():
        whole = m(x, q)
        alone = torch.cat([m(x[i:i + 1], q[i:i + 1]) for i in range(6)])
    assert torch.allclose(whole, alone, rtol=0, atol=1e-12)


def test_valid_padding_equals_the_tail_of_the_padded_path():
    m = _proxy()
    n = RECEPTIVE_FIELD + 50
    x, q = _signal(1, n), _q(1)
    with torch.no_grad():
        valid = m(x, q, padding="valid")
        full = m(x, q)
    assert valid.shape[-1] == 51
    assert torch.allclose(valid, full[..., -51:], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="receptive field"):
        m(x[..., :1000], q, padding="valid")


@pytest.mark.parametrize("dilation", [1, 7, 100, 3000])
def test_folded_dilated_conv_equals_conv1d(dilation):
    from beafx.effects.proxy import dilated_conv

    g = torch.Generator().manual_seed(dilation)
    x = torch.randn(2, 3, 12 * dilation + 37, generator=g, dtype=torch.float64)
    w = torch.randn(4, 3, 13, generator=g, dtype=torch.float64)
    ref = torch.nn.functional.conv1d(x, w, dilation=dilation)
    out = dilated_conv(x, w, dilation)
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, rtol=0, atol=1e-12)


def test_block_constant_matches_a_constant_input():
    m = _proxy()
    cond = m.condition(_q(2))
    c = torch.randn(2, 8, dtype=torch.float64)
    block = m.blocks[2]
    long = c[..., None].expand(-1, -1, block.span + 5)
    with torch.no_grad():
        out = block(long, cond)
    assert torch.allclose(out, block.constant(c, cond)[..., None].expand_as(out), atol=1e-12)


def test_shapes_dtype_and_linked_channels():
    m = _proxy(dtype=torch.float32)
    x = _signal(2, 2000, channels=2, dtype=torch.float32)
    q = _q(2).float()
    q[:, 5] = 0.0  # make-up 0 dB
    with torch.no_grad():
        y = m(x, q)
    assert y.shape == x.shape and y.dtype == torch.float32
    g = y / x
    assert torch.allclose(g[:, 0], g[:, 1], atol=1e-6)  # one gain for both channels
    assert bool(((g > 0) & (g <= 1 + 1e-6)).all())  # a sigmoid gain
    y64 = m(x.double(), q)
    assert y64.dtype == torch.float64


def test_explicit_makeup_and_threshold():
    m = _proxy()
    x, q = _signal(2, 3000), _q(2)
    spec_t, spec_m = m.param_specs[0], m.param_specs[5]
    q0 = q.clone()
    q0[:, 5] = 0.0
    q6 = q0.clone()
    q6[:, 5] = float(spec_m.to_normalized(6.0))
    with torch.no_grad():
        assert torch.allclose(m(x, q6), m(x, q0) * 10 ** (6 / 20), rtol=1e-12, atol=0)
        # a -6 dB input with a threshold 6 dB lower: the same gain, so half the output
        qa = q0.clone()
        qa[:, 0] = spec_t.to_normalized(torch.tensor([-20.0, -10.0], dtype=torch.float64))
        qb = qa.clone()
        qb[:, 0] = spec_t.to_normalized(torch.tensor([-26.0, -16.0], dtype=torch.float64))
        a = 10 ** (-6 / 20)
        assert torch.allclose(m(a * x, qb), a * m(x, qa), rtol=1e-9, atol=1e-14)


def test_comparison_tcn_outputs_audio_directly():
    torch.manual_seed(0)
    m = TCNCompressor().double().eval()
    x, q = _signal(2, 2000, channels=2), _q(2)
    with torch.no_grad():
        y = m(x, q)
    assert y.shape == x.shape
    assert float(y.abs().max()) <= 10.0
    assert torch.allclose(y[:, :1], m(x[:, :1], q), atol=1e-12)  # each channel alone


def test_bad_input_errors():
    m = _proxy()
    x, q = _signal(2, 1000), _q(2)
    with pytest.raises(ValueError, match="q"):
        m(x, q[:, :5])
    with pytest.raises(ValueError, match="batch"):
        m(x, q[:1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        m(x, q + 1.0)
    with pytest.raises(ValueError):
        m(x[0], q)
    with pytest.raises(ValueError, match="padding"):
        m(x, q, padding="reflect")


# ----------------------------------------------------------------------------- weights files
def test_weights_round_trip_and_mismatches(tmp_path):
    m = _proxy(dtype=torch.float32)
    path = save_weights(m, tmp_path / "w.pt", note="test")
    other = ProxyCompressor(weights=path).train()
    assert other.weights_info == {"note": "test"}
    assert other.frozen and not other.training and not any(p.requires_grad for p in other.parameters())
    x, q = _signal(1, 500, dtype=torch.float32), _q(1).float()
    with torch.no_grad():
        assert torch.equal(other(x, q), m(x, q))
    with pytest.raises(ValueError, match="48000 Hz"):
        ProxyCompressor(sample_rate=48000, weights=path)

    class OtherRanges(ProxyCompressor):
        param_specs = tuple(
            ParamSpec("release_ms", 1.0, 500.0, "log", "ms") if s.name == "release_ms" else s
            for s in ProxyCompressor.param_specs
        )

    with pytest.raises(ValueError, match="release_ms"):
        OtherRanges(weights=path)
    with pytest.raises(ValueError, match="'proxy' weights"):
        TCNCompressor(weights=path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a beafx proxy weights file"):
        ProxyCompressor(weights=tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError):
        ProxyCompressor(weights=tmp_path / "missing.pt")


shipped = pytest.mark.skipif(not DEFAULT_WEIGHTS.exists(), reason="no shipped proxy weights yet")


@shipped
def test_shipped_weights_match_their_recorded_mae():
    from beafx.training.proxy import check_mae

    m = ProxyCompressor()
    recorded = m.weights_info["check_mae"]
    assert m.weights_info["global_step"] > 0
    measured = check_mae(m)
    assert abs(measured - recorded) <= 0.05 * recorded


@shipped
@pytest.mark.slow
def test_shipped_weights_load_from_a_built_wheel(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "beafx", src / "beafx", ignore=shutil.ignore_patterns("__pycache__", "run"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(src)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("beafx-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        assert "beafx/effects/weights/np_compressor.pt" in zf.namelist()
        zf.extractall(tmp_path / "site")
    code = ("import beafx.effects.proxy as p, sys; m = p.ProxyCompressor(); "
            "assert str(p.DEFAULT_WEIGHTS).startswith(sys.argv[1]); print(m.weights_info['global_step'])")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "site")], capture_output=True, text=True,
                         env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) > 0


# ----------------------------------------------------------------------------- hybrid
def _hybrid() -> HybridCompressor:
    h = HybridCompressor(weights=None)
    torch.manual_seed(3)
    h.proxy.load_state_dict(_proxy(seed=3, dtype=torch.float32).state_dict())
    return h


def test_hybrid_switches_between_proxy_and_dsp():
    h = _hybrid()
    x, q = _signal(2, 2000, dtype=torch.float32), _q(2).float()
    h.train()
    assert not h.proxy.training and h.active is h.proxy
    with torch.no_grad():
        assert torch.equal(h(x, q), h.proxy(x, q))
        h.eval()
        assert h.active is h.dsp
        assert torch.equal(h(x, q), Compressor()(x, q))


def test_hybrid_gradients_reach_q_only_and_buffers_stay():
    h = _hybrid().train()
    before = {k: v.clone() for k, v in h.proxy.state_dict().items()}
    x = _signal(4, 2000, dtype=torch.float32)
    q = _q(4).float().requires_grad_()
    h.proxy.frozen = False
    h.proxy.train()  # even if someone unfreezes the proxy and switches it to training mode
    h(x, q).square().mean().backward()
    assert q.grad is not None and bool((q.grad[:, :5].abs() > 0).all())
    assert all(p.grad is None and not p.requires_grad for p in h.proxy.parameters())
    after = h.proxy.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not h.proxy.training


def test_hybrid_in_a_chain_with_a_batch_of_one():
    chain = make("peq+hybrid_compressor", weights=None).train()
    x = _signal(1, 1500, dtype=torch.float32)
    q = torch.rand(1, chain.num_params, requires_grad=True)
    chain(x, q).abs().mean().backward()
    assert q.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- training
def test_a_few_training_steps_lower_the_loss():
    from beafx.training.proxy import check_set

    torch.manual_seed(0)
    x, q = check_set(n_clips=4, seconds=0.2, seed=7)
    y = Compressor()(x, q)
    m = ProxyCompressor(weights=None).train()
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = (m(x, q) - y).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]


def test_train_proxy_smoke_and_resume(tmp_path):
    from beafx.training.proxy import export_weights, train_proxy

    run = tmp_path / "run"
    r1 = train_proxy(run, profile="smoke", max_steps=2, progress=False)
    assert r1.global_step == 2 and (run / "last.ckpt").exists()
    with pytest.raises(ValueError, match="--resume"):
        train_proxy(run, profile="smoke", max_steps=2, progress=False)
    with open(run / "curve.csv", "a") as fh:  # rows of steps lost with a killed run
        fh.write("3,9.9,1,1,1,0.001,,,\n7,9.9,1,1,1,0.001,,,\n")
    r2 = train_proxy(run, profile="smoke", max_steps=3, resume=True, progress=False)
    assert r2.global_step == 3
    steps = [int(line.split(",")[0]) for line in (run / "curve.csv").read_text().splitlines()[1:]]
    assert steps[0] == 1 and steps[-1] == 3 and 7 not in steps and steps == sorted(steps)
    r3 = train_proxy(tmp_path / "timed", profile="smoke", max_hours=1e-9, progress=False)
    assert r3.global_step == 1  # the budget is spent after the first step
    out = export_weights(run, tmp_path / "w.pt")
    m = ProxyCompressor(weights=out)
    assert m.weights_info["global_step"] == 3 and math.isfinite(m.weights_info["check_mae"])
    assert (tmp_path / "w.json").exists() and (tmp_path / "w_curve.csv").exists()


def test_training_batches_are_normalised_and_reproducible():
    from beafx.training.proxy import ProxyExamples

    ex = ProxyExamples("synthetic", "train", clip_samples=4410, batch_size=3, seed=2, eq_probability=1.0)
    x, q, y = ex.batch(5)
    x2, q2, y2 = ex.batch(5)
    assert torch.equal(x, x2) and torch.equal(q, q2) and torch.equal(y, y2)
    assert torch.allclose(x.abs().amax(dim=-1), torch.ones(3, 1), atol=1e-6)
    assert float(x.double().mean(dim=-1).abs().max()) < 1e-6
    assert bool((q[:, 5] == 0).all())
    assert torch.allclose(y, Compressor()(x, q))


def test_bench_quick_path_runs():
    from beafx.bench.proxy import run

    lines = run(True)
    names = [ln.name for ln in lines]
    assert any("fwd+bwd to q only" in n for n in names) and any("DSP Compressor" in n for n in names)
    assert all(ln.seconds is not None and ln.seconds > 0 for ln in lines)


def test_smoke_hybrid_run_trains_the_encoder_and_validates_on_the_dsp(tmp_path):
    import lightning.pytorch as pl

    from beafx.training import RunConfig, load_model, train

    seen = {"train": set(), "val": set()}
    weights = {}

    class Probe(pl.Callback):
        def _hybrids(self, module):
            return [m for m in module.modules() if isinstance(m, HybridCompressor)]

        def on_train_start(self, trainer, module):
            weights["before"] = {k: v.detach().clone() for k, v in module.state_dict().items() if "encoder" in k}

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            seen["train"] |= {type(h.active).__name__ for h in self._hybrids(module)}
            assert all(not h.proxy.training for h in self._hybrids(module))

        def on_validation_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0):
            seen["val"] |= {type(h.active).__name__ for h in self._hybrids(module)}

        def on_train_end(self, trainer, module):
            weights["after"] = {k: v.detach().clone() for k, v in module.state_dict().items() if "encoder" in k}

    cfg = RunConfig(synthesis="compressor", analysis="hybrid_compressor", encoder="tfe", profile="smoke")
    train(cfg, tmp_path / "run", progress=False, callbacks=[Probe()])
    assert seen == {"train": {"ProxyCompressor"}, "val": {"Compressor"}}
    assert weights["before"] and any(not torch.equal(weights["before"][k], weights["after"][k]) for k in weights["before"])
    chain = load_model(tmp_path / "run").analysis_chain()
    x, q = _signal(2, 4000, dtype=torch.float32), _q(2).float()
    with torch.no_grad():
        assert torch.equal(chain(x, q), make("compressor")(x, q))


def test_cli_usage_errors(tmp_path, capsys):
    from beafx import cli

    assert cli.main(["train-proxy", "--profile", "smoke", "--out", str(tmp_path / "none"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        cli.main(["train-proxy", "--profile", "nope", "--out", str(tmp_path / "x")])
    assert err.value.code == 2
    assert cli.main(["eval-proxy", "--weights", str(tmp_path / "missing.pt")]) == 2


def test_error_map_shape_and_worst_cell():
    from beafx.training.proxy import check_set, error_map

    x, q = check_set(n_clips=1, seconds=0.1)
    out = error_map(_proxy(dtype=torch.float32), params=("ratio", "threshold_db"), steps=2, x=x, q=q)
    t = torch.tensor(out["mae"])
    assert t.shape == (2, 2) and bool((t >= 0).all())
    assert out["worst"][2] == float(t.max())
    with pytest.raises(ValueError, match="two different names"):
        error_map(_proxy(), params=("ratio", "ratio"), x=x, q=q)


def test_evaluate_proxy_metrics_are_zero_for_the_dsp_itself():
    from beafx.training.proxy import evaluate_proxy

    exact = evaluate_proxy(Compressor(), source="synthetic", n_clips=2, seconds=3.1, onset_seconds=1.0, batch_size=2)
    assert exact["mae"] == 0.0 and exact["mae_onset"] == 0.0 and exact["esr"] == 0.0
    assert exact["dry_mae"] > exact["static_mae"] > 0.0
    assert len(exact["clips"]) == 2 and set(exact["clips"][0]) >= {"mae", "threshold_db", "release_ms"}
    proxy = evaluate_proxy(_proxy(dtype=torch.float32), source="synthetic", n_clips=2, seconds=3.1, batch_size=2)
    assert proxy["mae"] > 0 and proxy["gain_error_db"] > 0
    assert proxy["dry_mae"] == exact["dry_mae"]  # the same clips
    with pytest.raises(ValueError, match="receptive field"):
        evaluate_proxy(Compressor(), seconds=2.0)
