"""Encoders, head and analysis network against AUTHORS_CODE.md section 4 (parameter counts,
sizes), a float64 CQT computed here from its definition, and the TE channel bug."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from beafx.encoders import (
    ENCODERS, MEE, TE, TFE, AnalysisNetwork, LogCQT, MLPHead, SafeBatchNorm1d, build_encoder, min_samples,
)
from beafx.encoders import cqt as cqt_module
from beafx.encoders import mee as mee_module
from beafx.encoders.te import BRANCHES

SR = 44100
C = 15  # parameters of the PEQ, the count the paper's sizes use


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def head_without_last(d: int) -> int:
    return count(MLPHead(d, C)) - (512 * C + C)


# Small networks for forwards: MEE at 1/16 width (the smoke profile's), TE and TFE full size.
SMALL = {"mee": 1.0 / 16, "te": 1.0, "tfe": 1.0}


# Short clips just above each encoder's minimum (TFE 80,384, MEE 54,489, TE 16,385 samples).
N = {"mee": 56_000, "te": 20_000, "tfe": 82_000}


def small_network(name: str, **kw) -> AnalysisNetwork:
    return AnalysisNetwork(name, C, mee_width=SMALL[name], **kw)


def clip(n: int, batch: int = 2, channels: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.5 * torch.randn(batch, channels, n, generator=g)


# ---------------------------------------------------------------------------------------------
# Parameter counts at the paper's size


@pytest.fixture(scope="module")
def full_mee() -> MEE:
    return MEE(1.0)


def test_paper_counts_tfe_and_te():
    tfe = AnalysisNetwork("tfe", C)
    assert count(tfe) == 3_355_734
    assert count(tfe.encoder) == 453_700
    assert count(tfe.encoder.time_conv) == 8_385 and count(tfe.encoder.time_conv1d) == 127_169
    assert count(tfe.encoder.freq_conv) == 2_561 and count(tfe.encoder.freq_conv1d) == 315_585
    for bug in (False, True):
        te = AnalysisNetwork("te", C, authors_channel_bug=bug)
        assert count(te) == 2_785_561
        assert count(te.encoder) == 10_503
        assert sum(count(c) for c in te.encoder.convs) == 10_370
    assert head_without_last(128) == 2_894_339
    assert head_without_last(66) == 2_767_363
    assert head_without_last(2048) == 6_826_499


def test_paper_counts_mee(full_mee):
    per_block = [478, 19_346, 46_370, 184_898, 492_674, 1_312_258, 1_968_386, 5_245_954, 3_936_770,
                 10_491_906, 15_737_858, 41_955_330]
    assert [count(b) for b in full_mee.blocks] == per_block
    assert full_mee.out_features == 2048
    assert count(full_mee) + count(MLPHead(2048, C)) == 88_226_422


def test_mee_lengths_match_the_table():
    # the table's lengths at 10 s from the blocks' (kernel, stride) ...
    lengths, n = [], 441_000
    for spec in mee_module.BLOCKS:
        n = mee_module.output_length(n, spec)
        lengths.append(n)
    assert lengths == [110_244, 27_555, 13_771, 6_879, 3_435, 1_713, 852, 422, 209, 103, 99, 95]
    # ... and the same rule is what the real blocks do (a short clip, small width)
    net = MEE(1 / 16).eval()
    seen: list[int] = []
    for block in net.blocks:
        block.register_forward_hook(lambda m, i, o: seen.append(o.shape[-1]))
    with torch.no_grad():
        out = net(torch.randn(1, 1, 70_001))
    expected, n = [], 70_001
    for spec in mee_module.BLOCKS:
        n = mee_module.output_length(n, spec)
        expected.append(n)
    assert seen == expected and tuple(out.shape) == (1, 128)


def test_mee_width_scales_every_channel():
    m = MEE(0.25)
    assert m.out_features == 512
    assert [b.conv2.out_channels for b in m.blocks] == [4, 8, 16, 32, 64, 64, 128, 128, 256, 256, 512, 512]
    assert m.blocks[0].conv1.in_channels == 1
    tiny = MEE(1 / 64)  # 16/64 rounds to 0: at least one channel
    assert tiny.blocks[0].conv2.out_channels == 1 and tiny.out_features == 32
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="mee_width"):
            MEE(bad)


def test_initialisation_as_the_authors():
    enc = TFE()
    w = enc.time_conv1d[0].weight.detach()  # fan_in 64 * 31: Kaiming normal std sqrt(2 / fan_in)
    assert abs(float(w.std()) / math.sqrt(2 / (64 * 31)) - 1) < 0.02
    assert abs(float(w.mean())) < 3e-4
    for m in list(enc.modules()) + list(MEE(0.25).modules()) + list(TE().modules()):
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            assert torch.all(m.bias == 0)
    first = MLPHead(128, C).layers[0].weight.detach()  # PyTorch default: uniform within 1/sqrt(fan_in)
    assert float(first.abs().max()) <= 1 / math.sqrt(128)
    assert float(first.std()) > 0.8 / math.sqrt(3 * 128)


# ---------------------------------------------------------------------------------------------
# CQT


@pytest.fixture(scope="module")
def log_cqt() -> LogCQT:
    return LogCQT(SR)


def test_cqt_settings_and_buffers(log_cqt):
    assert log_cqt.kernel_width == cqt_module.kernel_width(SR) == 32_768
    assert list(log_cqt.parameters()) == []
    buffers = dict(log_cqt.named_buffers())
    assert buffers["cqt.cqt_kernels_real"].shape == (113, 1, 32_768)
    freqs = log_cqt.frequencies
    assert freqs.shape == (113,)
    assert abs(float(freqs[0]) - 32.70) < 1e-9 and abs(float(freqs[-1]) - 21_094.1) < 0.1
    np.testing.assert_allclose(np.diff(np.log2(freqs.numpy())), 1 / 12, rtol=1e-12)
    assert abs(cqt_module.quality_factor() - 16.817) < 1e-3
    # norm=1: each complex kernel has unit L1 norm
    k = torch.complex(buffers["cqt.cqt_kernels_real"], buffers["cqt.cqt_kernels_imag"]).to(torch.complex128)
    np.testing.assert_allclose(k.abs().sum(-1).squeeze(1).numpy(), 1.0, rtol=1e-4)


def test_cqt_kernels_stay_out_of_checkpoints():
    net = AnalysisNetwork("tfe", C)
    state = net.state_dict()
    assert not [k for k in state if "cqt" in k]
    bn_stats = sum(v.numel() for k, v in state.items() if "running" in k or "num_batches" in k)
    assert sum(v.numel() for v in state.values()) == count(net) + bn_stats
    other = AnalysisNetwork("tfe", C)
    other.load_state_dict(state)  # strict: the same keys both ways
    assert dict(net.encoder.cqt.named_buffers())["cqt.cqt_kernels_real"].shape == (113, 1, 32_768)


def test_cqt_construction_is_silent(capfd):
    LogCQT(SR)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def reference_cqt(module: LogCQT, x: np.ndarray) -> np.ndarray:
    """float64 CQT magnitude from the definition: reflect-pad by half the kernel width, take a
    frame every hop, inner product with each complex kernel, librosa scaling sqrt(length)."""
    buffers = dict(module.named_buffers())
    kernels = (buffers["cqt.cqt_kernels_real"].double().numpy()[:, 0]
               + 1j * buffers["cqt.cqt_kernels_imag"].double().numpy()[:, 0])
    lengths = buffers["cqt.lenghts"].double().numpy()
    width = kernels.shape[1]
    padded = np.pad(x.astype(np.float64), width // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, width)[:: cqt_module.HOP]
    return np.abs(frames @ kernels.T).T * np.sqrt(lengths)[:, None]  # (bins, frames)


def test_cqt_matches_float64_definition(log_cqt):
    n = 24_000
    rng = np.random.default_rng(1)
    t = np.arange(n) / SR
    x = 0.3 * rng.standard_normal(n) + np.sin(2 * np.pi * 97.0 * t) + 0.5 * np.sin(2 * np.pi * 3_000.0 * t)
    x = x / np.abs(x).max()
    ref = reference_cqt(log_cqt, x)
    x32 = torch.tensor(x, dtype=torch.float32)[None]
    got = log_cqt.magnitude(x32)
    assert got.shape == (1, *ref.shape) == (1, 113, n // 512 + 1)
    assert np.abs(got[0].double().numpy() - ref).max() <= 1e-3 * ref.max()
    # the trimmed-kernel path computes nnAudio's sums without their zero terms: equal to nnAudio's
    # own Magnitude output up to float32 rounding, and no farther from the float64 reference
    nn_audio = log_cqt.cqt(x32)
    assert float((got - nn_audio).abs().max()) <= 1e-5 * float(nn_audio.max())
    err_ours = np.abs(got[0].double().numpy() - ref).max()
    err_nnaudio = np.abs(nn_audio[0].double().numpy() - ref).max()
    assert err_ours <= 1.5 * err_nnaudio
    torch.testing.assert_close(log_cqt(x32[:, None]), torch.log(got + 1e-6)[:, None], rtol=0, atol=0)


def test_440_hz_peaks_at_its_bin(log_cqt):
    expected = round(12 * math.log2(440.0 / 32.70))  # A4 is 45 semitones above C1
    assert expected == 45
    t = torch.arange(SR) / SR
    mag = log_cqt.magnitude(torch.sin(2 * math.pi * 440.0 * t)[None])[0]
    assert int(mag[:, 20:-20].mean(dim=1).argmax()) == expected


def test_cqt_frames():
    assert cqt_module.num_frames(441_000) == 862
    meta = LogCQT(SR).to("meta")
    assert meta(torch.zeros(1, 441_000, device="meta")).shape == (1, 1, 113, 862)
    with pytest.raises(ValueError, match="mono waveform"):
        meta(torch.zeros(1, 2, 30_000, device="meta"))


def test_cqt_rejects_low_sample_rate():
    with pytest.raises(ValueError, match="top bin"):
        LogCQT(22050)
    with pytest.raises(ValueError, match="sample_rate"):
        build_encoder("tfe", sample_rate=0)


# ---------------------------------------------------------------------------------------------
# TE and its channel bug


def test_te_bug_keeps_only_ten_channels():
    torch.manual_seed(0)
    fixed, buggy = TE(False), TE(True)
    buggy.load_state_dict(fixed.state_dict())
    assert {k: v.shape for k, v in fixed.state_dict().items()} == {k: v.shape for k, v in buggy.state_dict().items()}
    spec = fixed.cqt(clip(N["te"], batch=3, channels=1))
    branches = {(b.bins, b.frames): out for b, out in zip(BRANCHES, fixed.branch_outputs(spec))}
    z_fixed, z_bug = fixed.features(spec), buggy.features(spec)
    assert z_fixed.shape == z_bug.shape == (3, 66)
    torch.testing.assert_close(z_fixed, torch.cat([branches[(b.bins, b.frames)] for b in BRANCHES], dim=1))
    assert bool((z_fixed != 0).all())  # all 66 channels used
    assert bool((z_bug[:, 10:] == 0).all())  # the bug: channels 10..65 exactly zero
    torch.testing.assert_close(z_bug[:, 0:3], branches[(25, 7)])
    torch.testing.assert_close(z_bug[:, 3:6], branches[(25, 3)][:, 3:6])
    torch.testing.assert_close(z_bug[:, 6:10], branches[(25, 1)][:, 6:10])
    fixed.eval(), buggy.eval()
    x = clip(N["te"], batch=3, channels=1)
    assert not torch.allclose(fixed(x), buggy(x))


def test_te_bug_leaves_nine_branches_without_gradient():
    net = AnalysisNetwork("te", C, authors_channel_bug=True)
    net(clip(N["te"], batch=3)).sum().backward()
    live = {(25, 1), (25, 3), (25, 7)}
    for b, conv in zip(BRANCHES, net.encoder.convs):
        grad_norm = float(conv.weight.grad.abs().sum())
        assert (grad_norm > 0) == ((b.bins, b.frames) in live), b


# ---------------------------------------------------------------------------------------------
# Shapes, minimum lengths, validation


def test_out_features_and_output_shapes():
    expected = {"mee": 128, "te": 66, "tfe": 128}
    for name in ENCODERS:
        net = small_network(name).eval()
        assert net.encoder.out_features == expected[name]
        assert net.encoder_name == name and net.num_params == C
        seen = []
        net.encoder.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
        with torch.no_grad():
            q = net(clip(N[name]))
        assert seen == [(2, expected[name])] and q.shape == (2, C)
    assert build_encoder("mee").out_features == 2048


def test_min_samples_values():
    assert min_samples("tfe") == 80_384  # 128 + 31 - 1 = 158 frames = 157 hops of 512
    assert min_samples("mee") == 54_489 == min_samples("mee", mee_width=0.25)
    assert min_samples("te") == 16_385  # reflect padding by 16,384 needs a longer input
    with pytest.raises(ValueError, match="unknown encoder"):
        min_samples("cnn")


@pytest.mark.parametrize("name", ENCODERS)
def test_min_samples_is_the_true_limit(name):
    net = small_network(name).train()
    n = min_samples(name)
    q = net(clip(n, batch=1))  # a batch of one in train mode, at the shortest length
    assert q.shape == (1, C)
    with pytest.raises(ValueError, match=rf"too short for the {name} encoder: {n - 1} samples .*at least {n} samples"):
        net(clip(n - 1, batch=1))
    # without the check, the architecture itself cannot take n - 1 samples
    enc = net.encoder
    x = clip(n - 1, batch=1, channels=1)
    with pytest.raises((RuntimeError, ValueError)):
        if name == "mee":
            out = enc.blocks(x)
        else:
            spec = torch.log(enc.cqt.cqt(x) + 1e-6).unsqueeze(1)  # nnAudio directly, no length check
            out = enc.time_branch(spec) if name == "tfe" else torch.cat(enc.branch_outputs(spec), 1)
        if out.numel() == 0:
            raise RuntimeError("empty output")


def test_bad_inputs_raise_clear_errors():
    net = small_network("te")
    with pytest.raises(ValueError, match="batch, channels, samples"):
        net(torch.zeros(2, N["te"]))
    bad = clip(N["te"])
    bad[0, 0, 5] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        net(bad)
    with pytest.raises(ValueError, match="unknown encoder"):
        AnalysisNetwork("resnet", C)
    with pytest.raises(ValueError, match="num_params"):
        AnalysisNetwork("tfe", 0)
    with pytest.raises(ValueError, match="only applies to the te encoder"):
        build_encoder("tfe", authors_channel_bug=True)


def test_float64_input_and_channel_mean():
    net = small_network("tfe").eval()
    y = clip(N["tfe"])
    with torch.no_grad():
        q = net(y)
        torch.testing.assert_close(net(y.double()), q)
        # mono = channel mean, then peak normalisation: level and duplicated channels do not matter
        mono = y.mean(dim=1, keepdim=True)
        torch.testing.assert_close(net(7.0 * mono.repeat(1, 2, 1)), q, atol=2e-6, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# BatchNorm with a batch of one, training behaviour


def test_safe_batchnorm_with_one_value_per_channel():
    torch.manual_seed(0)
    plain, safe = nn.BatchNorm1d(8), SafeBatchNorm1d(8)
    with torch.no_grad():
        for bn in (plain, safe):
            bn.running_mean.copy_(torch.linspace(-1, 1, 8))
            bn.running_var.copy_(torch.linspace(0.5, 2, 8))
            bn.weight.copy_(torch.linspace(0.5, 1.5, 8))
            bn.bias.copy_(torch.linspace(-0.2, 0.2, 8))
    one = torch.randn(1, 8)
    with pytest.raises(ValueError):  # why the subclass exists
        plain.train()(one)
    before = (safe.running_mean.clone(), safe.running_var.clone(), int(safe.num_batches_tracked))
    out = safe.train()(one)
    expected = (one - before[0]) / torch.sqrt(before[1] + safe.eps) * safe.weight + safe.bias
    torch.testing.assert_close(out, expected)
    assert torch.equal(safe.running_mean, before[0]) and torch.equal(safe.running_var, before[1])
    assert int(safe.num_batches_tracked) == before[2]
    torch.testing.assert_close(safe.train()(one[:, :, None])[:, :, 0], expected)
    # any larger batch: exactly nn.BatchNorm1d, running statistics updated
    batch = torch.randn(5, 8, 3)
    torch.testing.assert_close(safe.train()(batch), plain.train()(batch))
    torch.testing.assert_close(safe.running_mean, plain.running_mean)
    assert set(safe.state_dict()) == set(plain.state_dict())


@pytest.mark.parametrize("name", ENCODERS)
def test_batch_of_one_in_train_mode(name):
    net = small_network(name).train()
    q = net(clip(N[name], batch=1))
    q.sum().backward()
    assert q.shape == (1, C) and bool(torch.isfinite(q).all())


@pytest.mark.parametrize("name", ENCODERS)
def test_eval_is_deterministic_and_bounded(name):
    net = small_network(name).eval()
    y = clip(N[name], batch=3)
    with torch.no_grad():
        a, b = net(y), net(y)
    assert torch.equal(a, b)
    assert bool(((a > 0) & (a < 1)).all())
    assert not torch.allclose(a[0], a[1])  # the output depends on the input


@pytest.mark.parametrize("name", ENCODERS)
def test_silence_gives_finite_output_and_gradients(name):
    net = small_network(name).train()
    # the gradient with respect to y too (through the CQT's guarded square root): TE only, the
    # cheapest CQT; MEE and TFE share the same code paths after the front end
    y = torch.zeros(2, 1, N[name], requires_grad=name == "te")
    q = net(y)
    q.sum().backward()
    assert bool(torch.isfinite(q).all())
    assert all(bool(torch.isfinite(p.grad).all()) for p in net.parameters() if p.grad is not None)
    if y.requires_grad:
        assert bool(torch.isfinite(y.grad).all())


@pytest.mark.parametrize("name", ENCODERS)
def test_gradient_reaches_every_parameter(name):
    net = small_network(name).train()
    q = net(clip(N[name], batch=3))
    (q * torch.linspace(-1, 1, C)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    zero = {n for n, p in net.named_parameters() if float(p.grad.abs().sum()) == 0}
    # TFE: the slopes of the two PReLUs whose output is maxed over 113 bins (or all frames) of
    # BatchNorm'd values only matter when every value is negative, so their gradient is 0 here
    # (as in the authors' network). Everything else learns.
    allowed = {"encoder.time_conv.2.weight", "encoder.freq_conv.2.weight"} if name == "tfe" else set()
    assert zero <= allowed
