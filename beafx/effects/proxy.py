"""Neural proxy (NP) of the DSP compressor, its footnote-4 comparison TCN, and the hybrid (book
chapter "The neural proxy compressor", ``book/09_proxy``).

- :class:`ProxyCompressor` (registry ``np_compressor``): the paper's neural proxy (footnote 4,
  AUTHORS_CODE.md 2.5). A causal TCN of 5 blocks (8 channels, kernel 13, dilations
  1/10/100/1000/10000, receptive field :data:`RECEPTIVE_FIELD` = 133,333 samples = 3.02 s at
  44.1 kHz), each block ``conv (no bias) -> FiLM -> PReLU + depthwise 1x1 residual``, FiLM from
  an MLP over the normalised attack, release, ratio and knee. The threshold is applied
  explicitly (the input is divided by ``10^(T/20)``), the output 1x1 conv goes through a
  sigmoid and is used as a gain: ``y[n] = g[n] x[n] 10^(makeup/20)``. 8,004 parameters.
- :class:`TCNCompressor`: the comparison model of footnote 4 (the TCN of [15]): the same
  blocks conditioned on all six ``q``, no explicit gains, output ``10 tanh(conv)`` as audio.
- :class:`HybridCompressor` (registry ``hybrid_compressor``): the frozen proxy while training
  (gradients reach ``q`` only), the DSP :class:`~beafx.effects.Compressor` in eval mode.

Zero padding, computed once: the plain causal model left-pads its input with
``RECEPTIVE_FIELD - 1`` zeros. Every activation at a time before the clip is then a constant
(per example and channel) that depends only on the conditioning, so :meth:`_TCNBase.body`
computes those constants by running each block on a constant input, and prepends to each
block's input only its own span ``(k - 1) d`` of the constant. Each block then produces exactly
the clip's length: ``5 N`` conv outputs instead of ``5 N + 518,520`` (the plain path stays
available as ``padding="zeros"``; tests check that both agree). ``padding="valid"`` uses no
padding at all (output ``N - RECEPTIVE_FIELD + 1`` samples), for windows with full context.

Weights are tied to their sample rate and parameter ranges, stored with them
(:func:`save_weights`); :func:`load_weights` raises ``ValueError`` on any mismatch. The shipped
weights (``beafx/effects/weights/np_compressor.pt``, trained by :mod:`beafx.training.proxy`)
are what ``ProxyCompressor()`` loads; ``ProxyCompressor(weights=None)`` is untrained.
"""
from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..files import atomic_path
from ..functional.levels import db_to_amplitude
from ..params import TABLE, ParamSpec
from .base import Effect, check_audio, check_q
from .compressor import Compressor

KERNEL = 13
CHANNELS = 8
DILATIONS = (1, 10, 100, 1000, 10000)
COND_DIM = 32
#: Samples of input each output sample depends on: 1 + (k - 1) * sum(dilations).
RECEPTIVE_FIELD = 1 + (KERNEL - 1) * sum(DILATIONS)
#: The sample rate the architecture (and the shipped weights) was designed for.
SAMPLE_RATE = 44100
#: The comparison TCN's output scale (the authors' maximum make-up, 20 dB).
TCN_OUTPUT_SCALE = 10.0

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: The shipped weights of :class:`ProxyCompressor` (package data).
DEFAULT_WEIGHTS = WEIGHTS_DIR / "np_compressor.pt"
WEIGHTS_FORMAT = "beafx-proxy-compressor-v1"

PaddingMode = str  # "cached" | "zeros" | "valid"
_PADDINGS = ("cached", "zeros", "valid")

WeightsArg = Union[str, os.PathLike, None]


#: Dilated convolutions run as convolutions of dilation ``d / f`` over ``f`` interleaved
#: subsequences, ``f = min(d, FOLD_MAX)``: the same sums in the same order (identical results),
#: about 1.5x faster forward + backward on CPU (oneDNN's dilated backward is slow).
FOLD_MAX = 1000
#: Examples the TCN runs at once (:meth:`_TCNBase.body`).
BATCH_CHUNK = 4


def dilated_conv(x: Tensor, weight: Tensor, dilation: int) -> Tensor:
    """Valid 1-D convolution (no bias) of ``x`` ``(batch, cin, L)`` with ``weight``
    ``(cout, cin, k)`` at ``dilation``: ``(batch, cout, L - (k - 1) dilation)``."""
    f = min(int(dilation), FOLD_MAX)
    if f == 1:
        return F.conv1d(x, weight, dilation=dilation)
    b, c, n = x.shape
    n_out = n - (weight.shape[-1] - 1) * dilation
    m = -(-n // f)
    xf = F.pad(x, (0, m * f - n)).reshape(b, c, m, f).permute(0, 3, 1, 2).reshape(b * f, c, m)
    yf = F.conv1d(xf, weight, dilation=dilation // f)
    return yf.reshape(b, f, weight.shape[0], -1).permute(0, 2, 3, 1).reshape(b, weight.shape[0], -1)[..., :n_out]


class FiLMBlock(nn.Module):
    """One TCN block: ``conv(k, d, no bias) -> FiLM(cond) -> PReLU``, plus a depthwise 1x1
    conv (no bias) of the input, cropped causally by ``(k - 1) d``. Valid convolution:
    ``(batch, cin, L)`` -> ``(batch, cout, L - span)``."""

    def __init__(self, cin: int, cout: int, kernel: int, dilation: int, cond_dim: int = COND_DIM) -> None:
        super().__init__()
        self.span = (kernel - 1) * dilation
        self.conv = nn.Conv1d(cin, cout, kernel, dilation=dilation, bias=False)
        self.film = nn.Linear(cond_dim, 2 * cout)
        self.act = nn.PReLU(cout)
        self.res = nn.Conv1d(cin, cout, 1, groups=cin, bias=False)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        gamma, beta = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
        y = self.act(dilated_conv(x, self.conv.weight, self.conv.dilation[0]) * gamma + beta)
        return y + self.res(x[..., self.span:])

    def constant(self, c: Tensor, cond: Tensor) -> Tensor:
        """The block's output ``(batch, cout)`` for an input constant in time, ``c`` ``(batch, cin)``."""
        w = self.conv.weight.sum(dim=-1, keepdim=True)  # a constant sees every tap
        gamma, beta = self.film(cond).chunk(2, dim=1)
        y = self.act(F.conv1d(c.unsqueeze(-1), w).squeeze(-1) * gamma + beta)
        return y + self.res(c.unsqueeze(-1)).squeeze(-1)


class _TCNBase(Effect):
    """The shared TCN (conditioning MLP, 5 FiLM blocks, 1x1 output conv) and padding logic.

    Subclasses define ``cond_params`` (indices of ``q`` fed to the MLP) and
    :meth:`process_normalized`."""

    param_specs = TABLE["ProxyCompressor"]
    cond_params: tuple[int, ...] = ()
    kind: str = ""

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        super().__init__(sample_rate=sample_rate)
        hidden = (16, 32, COND_DIM)
        layers: list[nn.Module] = []
        width = len(self.cond_params)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.PReLU()]
            width = h
        self.gen = nn.Sequential(*layers)
        self.blocks = nn.ModuleList(
            FiLMBlock(1 if i == 0 else CHANNELS, CHANNELS, KERNEL, d) for i, d in enumerate(DILATIONS)
        )
        self.output = nn.Conv1d(CHANNELS, 1, 1)
        self.padding: PaddingMode = "cached"

    receptive_field = RECEPTIVE_FIELD

    def condition(self, q: Tensor) -> Tensor:
        """The conditioning vector ``(batch, 32)`` from ``q`` ``(batch, 6)``."""
        return self.gen(q[:, list(self.cond_params)])

    def body(self, x: Tensor, cond: Tensor, padding: Optional[PaddingMode] = None) -> Tensor:
        """TCN from a one-channel input ``x`` ``(batch, 1, N)`` to the pre-activation output
        ``(batch, 1, M)``: ``M = N`` for ``"cached"`` and ``"zeros"`` (causal, zero history),
        ``M = N - RECEPTIVE_FIELD + 1`` for ``"valid"``. Runs :data:`BATCH_CHUNK` examples at a
        time (long activations of a whole batch run about 2x slower on CPU)."""
        padding = padding or self.padding
        if padding not in _PADDINGS:
            raise ValueError(f"padding must be one of {_PADDINGS}, got {padding!r}")
        if x.shape[0] > BATCH_CHUNK:
            return torch.cat([self.body(x[i:i + BATCH_CHUNK], cond[i:i + BATCH_CHUNK], padding)
                              for i in range(0, x.shape[0], BATCH_CHUNK)])
        if padding == "valid":
            if x.shape[-1] < self.receptive_field:
                raise ValueError(
                    f"padding='valid' needs at least {self.receptive_field} samples (the receptive field), "
                    f"got {x.shape[-1]}"
                )
            h = x
            for block in self.blocks:
                h = block(h, cond)
            return self.output(h)
        if padding == "zeros":
            h = F.pad(x, (self.receptive_field - 1, 0))
            for block in self.blocks:
                h = block(h, cond)
            return self.output(h)
        # "cached": the history of each block's input is a constant c (zero for the first)
        c = x.new_zeros(x.shape[0], 1)
        h = x
        for block in self.blocks:
            history = c.unsqueeze(-1).expand(-1, -1, block.span)
            h, c = block(torch.cat([history, h], dim=-1), cond), block.constant(c, cond)
        return self.output(h)

    @staticmethod
    def detector_input(x: Tensor) -> Tensor:
        """One channel ``(batch, 1, N)`` from ``x`` ``(batch, C, N)``: per sample, the channel
        with the largest magnitude (the linked detector of :class:`Compressor` sees ``max_c |x_c|``)."""
        if x.shape[1] == 1:
            return x
        idx = x.abs().argmax(dim=1, keepdim=True)
        return x.gather(1, idx)

    def forward(self, x: Tensor, q: Tensor, *, padding: Optional[PaddingMode] = None) -> Tensor:
        """``x`` ``(batch, channels, samples)``, ``q`` ``(batch, 6)`` in [0, 1] -> shape of ``x``
        (for ``padding="valid"``: the last ``samples - RECEPTIVE_FIELD + 1`` samples)."""
        check_audio(x)
        check_q(q, batch=x.shape[0], num_params=self.num_params, owner=type(self).__name__)
        return self.process_normalized(x, q, padding=padding)

    def apply_normalized(self, x: Tensor, q: Tensor) -> Tensor:
        return self.process_normalized(x, q)

    def process_normalized(self, x: Tensor, q: Tensor, *, padding: Optional[PaddingMode] = None) -> Tensor:
        raise NotImplementedError  # pragma: no cover

    def _cast(self, x: Tensor, q: Tensor) -> tuple[Tensor, Tensor]:
        ref = self.output.weight
        return x.to(dtype=ref.dtype, device=ref.device), q.to(dtype=ref.dtype, device=ref.device)

    def extra_repr(self) -> str:
        return f"sample_rate={self.sample_rate}, receptive_field={self.receptive_field}, padding={self.padding!r}"


class ProxyCompressor(_TCNBase):
    """The paper's neural proxy compressor (footnote 4), 8,004 parameters.

    ``ProxyCompressor(sample_rate=44100, weights="default")``: ``weights`` is ``"default"``
    (the shipped weights, :data:`DEFAULT_WEIGHTS`), a path to a weights file or ``None``
    (untrained, for training). ``forward(x, q)``: ``x`` ``(batch, channels, samples)``, ``q``
    ``(batch, 6)`` ordered as :class:`Compressor`'s; channels are linked (one gain for all).

    A proxy built with weights is ``frozen``: its parameters do not require gradients and it stays
    in eval mode (BatchNorm on its running statistics) whatever ``train()`` says, so it can sit in
    an analysis chain that a trainer switches to training mode. Set ``frozen = False`` (and
    ``requires_grad_(True)``) to fine-tune it.
    """

    cond_params = (1, 2, 3, 4)  # attack, release, ratio, knee
    kind = "proxy"

    def __init__(self, sample_rate: int = SAMPLE_RATE, weights: WeightsArg = "default") -> None:
        super().__init__(sample_rate=sample_rate)
        self.weights_info: dict[str, Any] = {}
        self.frozen = weights is not None
        if weights is not None:
            path = DEFAULT_WEIGHTS if str(weights) == "default" else Path(weights)
            self.weights_info = load_weights(self, path)
            self.requires_grad_(False)
            self.eval()

    def train(self, mode: bool = True) -> "ProxyCompressor":
        return super().train(bool(mode) and not self.frozen)

    def gain(self, x: Tensor, q: Tensor, *, padding: Optional[PaddingMode] = None) -> Tensor:
        """Gain ``g`` ``(batch, 1, samples)`` in (0, 1), make-up excluded."""
        x, q = self._cast(x, q)
        threshold = self.param_specs[0].map_unchecked(q[:, 0])
        x_in = self.detector_input(x) / db_to_amplitude(threshold)[:, None, None]
        return torch.sigmoid(self.body(x_in, self.condition(q), padding))

    def gain_reduction_db(self, x: Tensor, q: Tensor) -> Tensor:
        """``-20 log10 g`` ``(batch, samples)``, comparable to :meth:`Compressor.gain_reduction_db`."""
        check_audio(x)
        check_q(q, batch=x.shape[0], num_params=self.num_params, owner=type(self).__name__)
        return -20.0 * torch.log10(self.gain(x, q).squeeze(1))

    def process_normalized(self, x: Tensor, q: Tensor, *, padding: Optional[PaddingMode] = None) -> Tensor:
        dtype = x.dtype
        x, q = self._cast(x, q)
        g = self.gain(x, q, padding=padding)
        makeup = db_to_amplitude(self.param_specs[5].map_unchecked(q[:, 5]))[:, None, None]
        return (g * x[..., x.shape[-1] - g.shape[-1]:] * makeup).to(dtype)


class TCNCompressor(_TCNBase):
    """The comparison model of footnote 4 (the TCN of [15]): the same blocks, conditioned on all
    six ``q``, no explicit threshold or make-up, output ``10 tanh(conv)`` as audio (channel
    ``c`` gets the TCN of channel ``c`` alone). ``TCNCompressor(sample_rate=44100, weights=None)``."""

    cond_params = (0, 1, 2, 3, 4, 5)
    kind = "tcn"

    def __init__(self, sample_rate: int = SAMPLE_RATE, weights: WeightsArg = None) -> None:
        super().__init__(sample_rate=sample_rate)
        self.weights_info = {} if weights is None else load_weights(self, Path(weights))

    def process_normalized(self, x: Tensor, q: Tensor, *, padding: Optional[PaddingMode] = None) -> Tensor:
        dtype = x.dtype
        x, q = self._cast(x, q)
        b, c, n = x.shape
        cond = self.condition(q).repeat_interleave(c, dim=0)
        y = TCN_OUTPUT_SCALE * torch.tanh(self.body(x.reshape(b * c, 1, n), cond, padding))
        return y.reshape(b, c, -1).to(dtype)


MODELS: dict[str, type[_TCNBase]] = {"proxy": ProxyCompressor, "tcn": TCNCompressor}


# ----------------------------------------------------------------------------- weights files
def _specs_record(specs: tuple[ParamSpec, ...]) -> list[list]:
    return [[s.name, float(s.minimum), float(s.maximum), s.scale, s.unit] for s in specs]


def save_weights(model: _TCNBase, path: Union[str, os.PathLike], **info: Any) -> Path:
    """Write ``model``'s weights with its kind, sample rate and parameter ranges (and any JSON-able
    ``info``, e.g. metrics) to ``path`` (a small ``torch.save`` file, loadable with
    ``weights_only=True``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "format": WEIGHTS_FORMAT,
        "kind": model.kind,
        "sample_rate": int(model.sample_rate),
        "param_specs": _specs_record(model.param_specs),
        "receptive_field": int(model.receptive_field),
        "state_dict": {k: v.detach().cpu().float().clone() for k, v in model.state_dict().items()},
        "info": info,
    }
    with atomic_path(path) as tmp:
        torch.save(record, tmp)
    return path


def read_weights(path: Union[str, os.PathLike]) -> dict[str, Any]:
    """The record written by :func:`save_weights`. ``FileNotFoundError`` if missing,
    ``ValueError`` if it is not such a file."""
    path = Path(path)
    if not path.is_file():
        if path == DEFAULT_WEIGHTS:
            raise FileNotFoundError(
                f"the shipped proxy weights {path} are missing from this installation; train them with "
                "`beafx train-proxy` or build ProxyCompressor(weights=None) for an untrained proxy"
            )
        raise FileNotFoundError(f"proxy weights file not found: {path}")
    try:
        # TorchVersion (a str) is allowed: early runs recorded torch.__version__ unconverted
        with torch.serialization.safe_globals([torch.torch_version.TorchVersion]):
            record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling problem means "not our file"
        raise ValueError(f"{path} is not a beafx proxy weights file ({type(err).__name__}: {err})") from None
    if not isinstance(record, dict) or record.get("format") != WEIGHTS_FORMAT:
        raise ValueError(f"{path} is not a beafx proxy weights file (format {WEIGHTS_FORMAT!r} expected)")
    return record


def load_weights(model: _TCNBase, path: Union[str, os.PathLike]) -> dict[str, Any]:
    """Load ``path`` into ``model`` after checking kind, sample rate and parameter ranges
    (``ValueError`` naming the mismatch). Returns the file's ``info``."""
    record = read_weights(path)
    if record["kind"] != model.kind:
        raise ValueError(f"{path} holds {record['kind']!r} weights, not {model.kind!r} ({type(model).__name__})")
    if int(record["sample_rate"]) != int(model.sample_rate):
        raise ValueError(
            f"{path} was trained at {record['sample_rate']} Hz but this {type(model).__name__} runs at "
            f"{model.sample_rate} Hz: its time constants would be wrong; resample the audio to "
            f"{record['sample_rate']} Hz or train weights for {model.sample_rate} Hz"
        )
    mine = _specs_record(model.param_specs)
    if record["param_specs"] != mine:
        diff = [f"{a[0]}: weights {a[1:4]} vs model {b[1:4]}" for a, b in zip(record["param_specs"], mine) if a != b]
        raise ValueError(
            f"{path} was trained with other parameter ranges than {type(model).__name__} uses "
            f"({'; '.join(diff) or 'different parameters'}): q would mean other physical values"
        )
    model.load_state_dict(record["state_dict"])
    return dict(record.get("info") or {})


# ----------------------------------------------------------------------------- hybrid
class HybridCompressor(Effect):
    """The paper's hybrid ("comphalf"): the frozen :class:`ProxyCompressor` in training mode
    (gradients reach ``q``, and ``x`` when it asks for them), the DSP :class:`Compressor` in eval
    mode. The proxy's weights never train and its BatchNorm always uses its running statistics,
    whatever ``train()`` is called with. ``HybridCompressor(sample_rate=44100, weights="default")``.
    """

    param_specs = TABLE["HybridCompressor"]

    def __init__(self, sample_rate: int = SAMPLE_RATE, weights: WeightsArg = "default") -> None:
        super().__init__(sample_rate=sample_rate)
        self.proxy = ProxyCompressor(sample_rate=sample_rate, weights=weights)
        self.proxy.frozen = True
        self.proxy.requires_grad_(False)
        self.proxy.eval()
        self.dsp = Compressor(sample_rate=sample_rate)

    def train(self, mode: bool = True) -> "HybridCompressor":
        super().train(mode)
        self.proxy.eval()  # frozen BatchNorm statistics, always
        return self

    @property
    def active(self) -> Effect:
        """The compressor :meth:`forward` uses now: the proxy in training mode, the DSP otherwise."""
        return self.proxy if self.training else self.dsp

    def forward(self, x: Tensor, q: Tensor) -> Tensor:
        check_audio(x)
        check_q(q, batch=x.shape[0], num_params=self.num_params, owner=type(self).__name__)
        return self.apply_normalized(x, q.to(dtype=x.dtype, device=x.device))

    def apply_normalized(self, x: Tensor, q: Tensor) -> Tensor:
        if self.training:
            if self.proxy.training:  # someone unfroze the proxy and called proxy.train()
                self.proxy.eval()
            return self.proxy.process_normalized(x, q)
        return self.dsp.apply_normalized(x, q)

    def gain_reduction_db(self, x: Tensor, q: Tensor) -> Tensor:
        return self.active.gain_reduction_db(x, q)  # type: ignore[operator]


#: Effects (registry names) whose output depends on the shipped proxy weights.
PROXY_EFFECTS = ("np_compressor", "hybrid_compressor")


@functools.lru_cache(maxsize=None)
def _file_digest(path: str, mtime_ns: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def proxy_weights_digest(chain: str) -> Optional[str]:
    """Digest (12 hex digits) of the shipped weights :data:`DEFAULT_WEIGHTS` when the chain spec
    ``chain`` (``"peq+hybrid_compressor+clipper"``) contains a :data:`PROXY_EFFECTS` effect, else
    None. Results and caches made through the proxy record it, so new weights make them stale."""
    if not any(name in PROXY_EFFECTS for name in chain.split("+")):
        return None
    return _file_digest(str(DEFAULT_WEIGHTS), DEFAULT_WEIGHTS.stat().st_mtime_ns)
