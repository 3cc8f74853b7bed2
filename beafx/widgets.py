"""Sliders to hear and see every effect, and their static twins (book chapters 04-06).

:class:`EffectWidget` shows one effect of the registry with one slider per *physical*
parameter. Moving a slider re-runs the effect on a 5 s excerpt of real music and redraws
its curve (EQ magnitude response, compressor static curve and gain over time, clipper
transfer curve), the mel spectrogram of the result, and the player. Only core ipywidgets
are used, so the widget also renders (frozen at its saved state) in the static book.

Because sliders do nothing in a static web page, every widget has a *static twin*
(:func:`static_twin`): a few presets rendered at build time as curves, spectrograms and
players.
"""
from __future__ import annotations

import io
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Mapping, Optional

import numpy as np
import torch
from torch import Tensor

from . import examples, plots
from .effects.base import Effect
from .effects.registry import REGISTRY, available, effect_class
from .functional.levels import normalize_0dbfs
from .params import ParamSpec

#: Starting values (physical units) of the sliders; unnamed parameters start mid-range
#: (the middle of q), EQ gains at 0 dB and polynomial coefficients at the identity.
DEFAULTS: dict[str, dict[str, float]] = {
    "peq": {
        **{f"{b}.gain_db": 0.0 for b in ("low_shelf", "peak1", "peak2", "peak3", "high_shelf")},
        **{f"{b}.quality": 0.707 for b in ("low_shelf", "peak1", "peak2", "peak3", "high_shelf")},
    },
    "geq": {},  # every gain_db is 0 dB (the middle of -15..15)
    "compressor": {"threshold_db": -20.0, "attack_ms": 10.0, "release_ms": 100.0, "ratio": 4.0, "knee_db": 6.0,
                   "makeup_db": 0.0},
    "simple_compressor": {"threshold_db": -20.0, "time_ms": 30.0, "ratio": 4.0, "knee_db": 6.0, "makeup_db": 0.0},
    "np_compressor": {"threshold_db": -20.0, "attack_ms": 10.0, "release_ms": 100.0, "ratio": 4.0, "knee_db": 6.0,
                      "makeup_db": 0.0},
    "hybrid_compressor": {"threshold_db": -20.0, "attack_ms": 10.0, "release_ms": 100.0, "ratio": 4.0,
                          "knee_db": 6.0, "makeup_db": 0.0},
    "clipper": {"drive_db": 6.0, "offset": 0.0, "hardness": 1.0},
    "taylor": {"g1": 1.0, **{f"g{k}": 0.0 for k in range(2, 25)}},
    "chebyshev": {"g1": 1.0, **{f"g{k}": 0.0 for k in (0, *range(2, 24))}},
}

_COMP_PRESETS = {
    "gentle glue": {"threshold_db": -12.0, "attack_ms": 30.0, "release_ms": 200.0, "ratio": 2.0, "knee_db": 6.0},
    "heavy, fast": {"threshold_db": -32.0, "attack_ms": 1.0, "release_ms": 40.0, "ratio": 10.0, "knee_db": 0.0},
    "slow pumping": {"threshold_db": -28.0, "attack_ms": 60.0, "release_ms": 500.0, "ratio": 6.0, "knee_db": 3.0},
}

#: Presets of the static twins (physical values; parameters not named keep their default).
PRESETS: dict[str, dict[str, dict[str, float]]] = {
    "peq": {
        "warm and airy": {"low_shelf.f0": 100.0, "low_shelf.gain_db": 8.0, "high_shelf.f0": 10000.0,
                          "high_shelf.gain_db": 6.0},
        "mid scoop": {"peak1.f0": 400.0, "peak1.gain_db": -12.0, "peak1.quality": 0.6,
                      "peak2.f0": 2500.0, "peak2.gain_db": -6.0, "peak2.quality": 1.0},
        "telephone": {"low_shelf.f0": 160.0, "low_shelf.gain_db": -15.0, "peak2.f0": 1500.0,
                      "peak2.gain_db": 12.0, "peak2.quality": 0.5, "high_shelf.f0": 5000.0,
                      "high_shelf.gain_db": -15.0},
    },
    "geq": {
        "smile": {"ls31.gain_db": 8.0, "pk62.gain_db": 6.0, "pk500.gain_db": -4.0, "pk1k.gain_db": -4.0,
                  "pk8k.gain_db": 5.0, "hs16k.gain_db": 8.0},
        "mid boost": {"pk500.gain_db": 6.0, "pk1k.gain_db": 10.0, "pk2k.gain_db": 6.0},
        "dark": {"pk4k.gain_db": -9.0, "pk8k.gain_db": -15.0, "hs16k.gain_db": -15.0},
    },
    "compressor": _COMP_PRESETS,
    "simple_compressor": {
        "gentle glue": {"threshold_db": -12.0, "time_ms": 100.0, "ratio": 2.0, "knee_db": 6.0},
        "heavy, fast": {"threshold_db": -32.0, "time_ms": 2.0, "ratio": 10.0, "knee_db": 0.0},
        "slow pumping": {"threshold_db": -28.0, "time_ms": 400.0, "ratio": 6.0, "knee_db": 3.0},
    },
    "np_compressor": _COMP_PRESETS,
    "hybrid_compressor": _COMP_PRESETS,
    "clipper": {
        "soft (tanh)": {"drive_db": 8.0, "offset": 0.0, "hardness": 0.0},
        "hard": {"drive_db": 16.0, "offset": 0.0, "hardness": 2.0},
        "asymmetric": {"drive_db": 12.0, "offset": 0.5, "hardness": 1.0},
    },
    "taylor": {
        "odd (tanh-like)": {"g1": 1.0, "g3": -1.0 / 3.0, "g5": 2.0 / 15.0},
        "even (asymmetric)": {"g1": 1.0, "g2": 0.6, "g4": -0.3},
        "high orders": {"g1": 0.5, "g9": 0.6, "g15": -0.6},
    },
    "chebyshev": {
        "3rd harmonic": {"g1": 1.0, "g3": 0.3},
        "2nd + 4th": {"g1": 1.0, "g2": 0.3, "g4": 0.2},
        "rich": {"g1": 0.6, "g2": 0.2, "g3": -0.3, "g5": 0.2, "g7": -0.15, "g9": 0.1},
    },
}

_FIGSIZE = {"eq": (8.5, 3.0), "compressor": (8.5, 5.4), "clipper": (8.5, 3.0)}


def readout_format(spec: ParamSpec) -> str:
    """Slider readout: frequencies as whole hertz (``12000``, never ``1.2e+04``), others with
    three significant digits."""
    return ".0f" if spec.unit == "Hz" else ".3g"


def format_value(spec: ParamSpec, value: float) -> str:
    """A physical value as the sliders and notes print it, with its unit."""
    unit = "" if spec.unit in ("", ":1") else f" {spec.unit}"
    text = format(value, readout_format(spec))
    return f"{text}:1" if spec.unit == ":1" else text + unit


def slider_label(spec: ParamSpec) -> str:
    """``"low_shelf.gain_db"`` (dB) -> ``"low shelf gain (dB)"``: the unit once, in brackets."""
    name = spec.name
    for suffix in ("_db", "_ms"):
        if name.endswith(suffix) and spec.unit.lower() == suffix[1:]:
            name = name[: -len(suffix)]
    label = name.replace(".", " ").replace("_", " ")
    return f"{label} ({spec.unit})" if spec.unit and spec.unit != ":1" else label


def _check_name(name: str) -> None:
    if name not in REGISTRY:
        raise ValueError(f"unknown effect {name!r}; registered effects: {', '.join(REGISTRY)}")


def default_values(name: str) -> dict[str, float]:
    """Physical starting values of every parameter of the registry effect ``name``."""
    _check_name(name)
    specs = effect_class(name).param_specs
    given = DEFAULTS.get(name, {})
    return {s.name: float(given.get(s.name, s.to_physical(0.5).item())) for s in specs}


def to_q(specs: tuple[ParamSpec, ...], values: Mapping[str, float]) -> Tensor:
    """``(1, C)`` normalised parameters from physical ``values`` (every parameter named)."""
    missing = [s.name for s in specs if s.name not in values]
    unknown = sorted(set(values) - {s.name for s in specs})
    if missing or unknown:
        raise ValueError(f"physical values: missing {missing}, unknown {unknown}")
    return torch.stack([s.to_normalized(float(values[s.name])) for s in specs]).view(1, -1).float()


def chain_q(chain, settings: Optional[Mapping[str, Mapping[str, float]]] = None) -> Tensor:
    """``(1, C)`` normalised parameters of a :class:`~beafx.effects.Chain` from physical
    ``settings`` per effect (``{"peq": {"low_shelf.gain_db": 4.0}, ...}``, keys as in
    ``chain.effects``); parameters not given take their slider defaults."""
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(chain.effects))
    if unknown:
        raise ValueError(f"no effect {unknown} in this chain; effects: {list(chain.effects)}")
    blocks = []
    for key, effect in chain.effects.items():
        name = key.rstrip("0123456789")  # make() names repeated effects "clipper2", ...
        if name not in REGISTRY or not isinstance(effect, effect_class(name)):
            raise ValueError(f"chain effect {key!r} is not a registry effect")
        blocks.append(to_q(effect.param_specs, _resolve(name, settings.get(key))))
    return torch.cat(blocks, dim=1)


def _resolve(name: str, values: Optional[Mapping[str, float]]) -> dict[str, float]:
    out = default_values(name)
    if values:
        unknown = sorted(set(values) - set(out))
        if unknown:
            raise ValueError(f"{name}: unknown parameter(s) {unknown}; parameters: {list(out)}")
        out.update({k: float(v) for k, v in values.items()})
    return out


def _build(name: str, sample_rate: int) -> Effect:
    """The effect as the widgets run it: in eval mode, and on its exact time-domain path where
    it has one (the EQs' ``synthesis=True``: scipy's IIR filter, what makes training targets,
    and much faster than the differentiable FFT path on a single excerpt)."""
    cls = effect_class(name)
    options = {"synthesis": True} if "synthesis" in cls.accepted_options() else {}
    return cls(sample_rate=sample_rate, **options).eval()


def _default_audio(excerpt: str, start: float, seconds: float) -> Tensor:
    return examples.load(excerpt, start=start, seconds=seconds)


# --------------------------------------------------------------------------- drawing
class _Panels:
    """The figure of one effect: its curve panel(s) and a picture of the output (EQ: the
    difference spectrogram output - input; compressor: waveform with RMS envelopes; clipper:
    the spectrogram). Artists are created once and updated in place, so a redraw costs one
    PNG encode."""

    def __init__(self, kind: str, sample_rate: int, seconds: float, *, dpi: int = 80) -> None:
        from matplotlib.figure import Figure

        self.kind, self.sample_rate, self.dpi = kind, sample_rate, dpi
        self.fig = Figure(figsize=_FIGSIZE[kind])
        self.gain_ax = self.env_ax = None
        if kind == "compressor":  # two curves on top, the waveform below
            axes = self.fig.subplot_mosaic([["curve", "gain"], ["spec", "spec"]])
            self.fig.subplots_adjust(left=0.09, right=0.91, bottom=0.09, top=0.94, wspace=0.3, hspace=0.42)
            self.curve_ax, self.gain_ax, self.spec_ax = axes["curve"], axes["gain"], axes["spec"]
        else:
            axes = self.fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
            self.fig.subplots_adjust(left=0.09, right=0.97, bottom=0.17, top=0.9, wspace=0.32)
            self.curve_ax, self.spec_ax = axes[0], axes[1]
        (self.curve,) = self.curve_ax.plot([], [], color="C0", lw=1.8)
        self.curve_ax.grid(True, alpha=0.3)
        n = int(seconds * sample_rate)
        if kind == "eq":
            plots.log_frequency_axis(self.curve_ax, hi=sample_rate / 2)
            self.curve_ax.set_ylim(-24, 24)
            self.curve_ax.set_xlabel("frequency (Hz)")
            self.curve_ax.set_ylabel("gain (dB)")
            self.curve_ax.set_title("magnitude response")
            self.spec = plots.plot_difference_spectrogram(self.spec_ax, np.ones((1, n)), np.ones((1, n)), sample_rate,
                                                          title="what the EQ changed (mel bands)")
        elif kind == "compressor":
            self.curve_ax.plot([-60, 0], [-60, 0], color="0.6", ls=":", lw=1)
            self.curve_ax.set_xlim(-60, 0)
            self.curve_ax.set_ylim(-60, 20)
            self.curve_ax.set_xlabel("input level (dBFS)")
            self.curve_ax.set_ylabel("output level (dBFS)")
            self.curve_ax.set_title("static curve")
            (self.gain,) = self.gain_ax.plot([], [], color="C3", lw=1.0)
            self.gain_ax.set_xlim(0, seconds)
            self.gain_ax.set_ylim(-40, 20)
            self.gain_ax.grid(True, alpha=0.3)
            self.gain_ax.set_xlabel("time (s)")
            self.gain_ax.set_ylabel("gain (dB)")
            self.gain_ax.set_title("gain over time")
            (self.wave,) = self.spec_ax.plot([], [], color="C0", lw=0.3, alpha=0.5)
            self.spec_ax.set_xlim(0, seconds)
            self.spec_ax.set_ylim(-1.05, 1.05)
            self.spec_ax.set_xlabel("time (s)")
            self.spec_ax.set_ylabel("output")
            self.spec_ax.set_title("output waveform with its RMS over 50 ms (dashed: the input's)")
            self.env_ax = self.spec_ax.twinx()
            (self.env_in,) = self.env_ax.plot([], [], color="0.3", lw=1.0, ls="--")
            (self.env_out,) = self.env_ax.plot([], [], color="C0", lw=1.4)
            self.env_ax.set_ylim(-50, 0)
            self.env_ax.set_ylabel("RMS (dBFS)")
        else:
            self.curve_ax.plot([-1, 1], [-1, 1], color="0.6", ls=":", lw=1)
            self.curve_ax.set_xlim(-1, 1)
            self.curve_ax.set_xlabel("input")
            self.curve_ax.set_ylabel("output")
            self.curve_ax.set_title("transfer curve")
            self.spec = plots.plot_spectrogram(self.spec_ax, np.zeros((1, n)), sample_rate,
                                               title="output, peak-normalised (mel spectrogram)")

    def update(self, effect: Effect, q: Tensor, x: Tensor, y: Tensor) -> None:
        if self.kind == "eq":
            freqs, mag = plots.magnitude_response(effect, q)
            self.curve.set_data(freqs, mag[0])
            from .functional.levels import rms_normalize

            diff = (plots.mel_spectrogram_db(rms_normalize(y), self.sample_rate)
                    - plots.mel_spectrogram_db(rms_normalize(x), self.sample_rate))
            self.spec.set_data(diff)
        elif self.kind == "compressor":
            lin, lout = plots.static_curve(effect, q)
            self.curve.set_data(lin, lout)
            g = plots.gain_over_time(effect, x, q, y=y)
            t = np.arange(len(g)) / self.sample_rate
            step = max(1, len(g) // 2000)
            self.gain.set_data(t[::step], g[::step])
            a = plots.as_numpy(y).mean(axis=0)
            ta = np.arange(len(a)) / self.sample_rate
            step = max(1, len(a) // 4000)
            self.wave.set_data(ta[::step], a[::step])
            self.env_in.set_data(*plots.rms_envelope_db(x, self.sample_rate))
            self.env_out.set_data(*plots.rms_envelope_db(y, self.sample_rate))
        else:
            xs, ys = plots.transfer_curve(effect, q)
            self.curve.set_data(xs, ys[0])
            lo, hi = float(min(ys.min(), -1e-3)), float(max(ys.max(), 1e-3))
            pad = 0.08 * (hi - lo)
            self.curve_ax.set_ylim(lo - pad, hi + pad)
            self.spec.set_data(plots.mel_spectrogram_db(normalize_0dbfs(y), self.sample_rate))

    def png(self) -> bytes:
        buf = io.BytesIO()
        self.fig.savefig(buf, format="png", dpi=self.dpi)
        return buf.getvalue()


# --------------------------------------------------------------------------- the widget
class EffectWidget:
    """Sliders (physical units) for the registry effect ``name``, its curve, the mel
    spectrogram of the processed excerpt, and players for the input and the output.

    The effect receives what it would receive inside a :class:`~beafx.effects.Chain`: the
    excerpt with DC removed and its peak at 0 dBFS. The two players are loudness-matched
    (same RMS, see :func:`beafx.plots.playback_gains`) and the status line states the level
    difference as rendered. ``set(**values)`` moves sliders from Python.
    """

    def __init__(self, name: str, *, audio: Optional[Tensor] = None, excerpt: str = "vibe_ace",
                 start: float = 0.0, seconds: float = 5.0, values: Optional[Mapping[str, float]] = None,
                 sample_rate: int = 44100) -> None:
        import ipywidgets as W

        _check_name(name)
        self.name = name
        self.kind = plots.KIND[name]
        self.effect: Effect = _build(name, sample_rate)
        self.sample_rate = sample_rate
        x = _default_audio(excerpt, start, seconds) if audio is None else audio
        if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[0] != 1:
            raise ValueError(f"audio must be a (1, channels, samples) tensor, got {getattr(x, 'shape', type(x))}")
        self.x = normalize_0dbfs(x.float())
        self.output: Optional[Tensor] = None
        self.renders = 0
        self._hold = False
        self._pool = ThreadPoolExecutor(max_workers=1)
        start_values = _resolve(name, values)

        self.sliders: dict[str, W.Widget] = {}
        for spec in self.effect.param_specs:
            self.sliders[spec.name] = self._slider(spec, start_values[spec.name])
        self.controls = W.GridBox(list(self.sliders.values()), layout=W.Layout(
            grid_template_columns="repeat(auto-fill, minmax(330px, 1fr))", grid_gap="2px 16px", width="100%",
            overflow="hidden"))
        self.panels = _Panels(self.kind, sample_rate, self.x.shape[-1] / sample_rate)
        self.image = W.Image(format="png", layout=W.Layout(width="100%", max_width="760px"))
        self.dry_player = W.Audio(format="mp3", autoplay=False)
        self._dry_gain: Optional[float] = None
        self.player = W.Audio(format="mp3", autoplay=False)
        self.status = W.HTML()
        title = W.HTML(f"<b>{type(self.effect).__name__}</b> (<code>{name}</code>): move a slider, "
                       "then listen to the output")
        players = W.HBox([W.VBox([W.Label("input (as the effect receives it)"), self.dry_player]),
                          W.VBox([W.Label("output"), self.player])],
                         layout=W.Layout(flex_flow="row wrap", grid_gap="4px 24px"))
        self.box = W.VBox([title, self.controls, self.image, players, self.status],
                          layout=W.Layout(width="100%", overflow="hidden"))
        for s in self.sliders.values():
            s.observe(self._on_change, names="value")
        self.render()

    def _slider(self, spec: ParamSpec, value: float):
        import ipywidgets as W

        common = dict(description=slider_label(spec), description_allow_html=False, continuous_update=False,
                      style={"description_width": "150px"}, layout=W.Layout(width="100%"),
                      readout_format=readout_format(spec))
        if spec.scale == "log":
            lo, hi = math.log10(spec.minimum), math.log10(spec.maximum)
            return W.FloatLogSlider(value=value, base=10, min=lo, max=hi, step=(hi - lo) / 200, **common)
        return W.FloatSlider(value=value, min=spec.minimum, max=spec.maximum,
                             step=(spec.maximum - spec.minimum) / 200, **common)

    @property
    def values(self) -> dict[str, float]:
        """The physical parameter values the sliders show."""
        return {k: float(s.value) for k, s in self.sliders.items()}

    @property
    def q(self) -> Tensor:
        """``(1, C)`` normalised parameters of the current slider values."""
        return to_q(self.effect.param_specs, self.values)

    def set(self, **values: float) -> Tensor:
        """Move sliders (physical units, validated against the ranges) and render once."""
        specs = {s.name: s for s in self.effect.param_specs}
        for k, v in values.items():
            if k not in specs:
                raise ValueError(f"{self.name}: unknown parameter {k!r}; parameters: {list(specs)}")
            s = specs[k]
            if not (math.isfinite(float(v)) and s.minimum <= float(v) <= s.maximum):
                raise ValueError(f"{self.name}: {k} = {v} is outside [{s.minimum}, {s.maximum}] {s.unit}")
        self._hold = True
        try:
            for k, v in values.items():
                self.sliders[k].value = float(v)
        finally:
            self._hold = False
        return self.render()

    def _on_change(self, _change) -> None:
        if not self._hold:
            self.render()

    @torch.no_grad()
    def render(self) -> Tensor:
        """Run the effect with the slider values; redraw the figure and the player."""
        q = self.q
        y = self.effect(self.x, q)
        self.output = y
        gains = plots.playback_gains({"input": self.x, "output": y})
        # encode the player's MP3 on a second thread while the figure is drawn
        audio = self._pool.submit(plots.encode_mp3, y, self.sample_rate, gain_db=gains["output"])
        if self._dry_gain is None or abs(gains["input"] - self._dry_gain) > 1e-6:
            self.dry_player.value = plots.encode_mp3(self.x, self.sample_rate, gain_db=gains["input"])
            self._dry_gain = gains["input"]
        self.panels.update(self.effect, q, self.x, y)
        png = self.panels.png()
        self.image.value = png
        self.player.value = audio.result()
        rms_out, peak_out = plots.levels_db(y)
        rms_in = plots.levels_db(self.x)[0]
        self.status.value = (f"<small>as rendered: output RMS {rms_out - rms_in:+.1f} dB re. the input, peak "
                             f"{peak_out:+.1f} dBFS; both players play at the same RMS (loudness-matched)</small>")
        self.renders += 1
        return y

    def _repr_mimebundle_(self, **kwargs):
        return self.box._repr_mimebundle_(**kwargs)


def widget(name: str, **kwargs) -> EffectWidget:
    """The :class:`EffectWidget` of the registry effect ``name`` (e.g. ``"clipper"``)."""
    return EffectWidget(name, **kwargs)


# --------------------------------------------------------------------------- static twins
@dataclass
class StaticTwin:
    """A widget's build-time stand-in: preset curves, pictures of the outputs and players."""

    name: str
    presets: dict[str, dict[str, float]]
    figure: object
    dry: Tensor
    outputs: dict[str, Tensor] = field(default_factory=dict)
    sample_rate: int = 44100

    def notes(self) -> dict[str, str]:
        """The non-default parameters of each preset, for the players' table."""
        base = default_values(self.name)
        specs = {s.name: s for s in effect_class(self.name).param_specs}
        out = {"input": "the excerpt as the effect receives it (DC removed, peak at 0 dBFS)"}
        for label, vals in self.presets.items():
            changed = {k: v for k, v in vals.items() if not math.isclose(v, base[k], abs_tol=1e-9)}
            out[label] = ", ".join(f"{slider_label(specs[k]).split(' (')[0]} {format_value(specs[k], v)}"
                                   for k, v in changed.items()) or "defaults"
        return out

    def players(self, *, level: Optional[str] = "rms"):
        """Players of the input and every preset, loudness-matched unless ``level`` says otherwise."""
        return plots.players({"input": self.dry, **self.outputs}, self.sample_rate, notes=self.notes(), level=level)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.figure)
        display(self.players())


@torch.no_grad()
def static_twin(name: str, *, presets: Optional[Mapping[str, Mapping[str, float]]] = None,
                audio: Optional[Tensor] = None, excerpt: str = "vibe_ace", start: float = 0.0,
                seconds: float = 5.0, sample_rate: int = 44100) -> StaticTwin:
    """Render the presets of ``name`` (default :data:`PRESETS`) as one figure and a table of
    loudness-matched players. Top: the curves (EQ magnitude responses; compressor static
    curves and gain over time; clipper transfer curves). Bottom, one panel per preset: for an
    EQ the difference spectrogram (output - input), for a compressor the waveform with its
    RMS envelope, for a clipper the spectrogram (after the input's)."""
    from matplotlib.figure import Figure

    _check_name(name)
    kind = plots.KIND[name]
    effect = _build(name, sample_rate)
    chosen = PRESETS.get(name, {}) if presets is None else presets
    if not chosen:
        raise ValueError(f"no presets for {name!r}")
    resolved = {label: _resolve(name, vals) for label, vals in chosen.items()}
    x = normalize_0dbfs((_default_audio(excerpt, start, seconds) if audio is None else audio).float())

    n_top = 2 if kind == "compressor" else 1
    n_bottom = len(resolved) + (1 if kind == "clipper" else 0)
    fig = Figure(figsize=(12, 6.4), layout="constrained")
    grid = fig.add_gridspec(2, n_bottom)
    bounds = np.linspace(0, n_bottom, n_top + 1).round().astype(int)
    top = [fig.add_subplot(grid[0, bounds[i]:bounds[i + 1]]) for i in range(n_top)]
    bottom = [fig.add_subplot(grid[1, i]) for i in range(n_bottom)]
    if kind == "clipper":
        image = plots.plot_spectrogram(bottom[0], x, sample_rate, title="input", colorbar=False)
        panels = bottom[1:]
    else:
        panels = bottom
    outputs: dict[str, Tensor] = {}
    for i, (label, vals) in enumerate(resolved.items()):
        q = to_q(effect.param_specs, vals)
        y = effect(x, q)
        outputs[label] = y
        color = f"C{i}"
        ax = panels[i]
        if kind == "eq":
            freqs, mag = plots.magnitude_response(effect, q)
            top[0].plot(freqs, mag[0], color=color, lw=1.8, label=label)
            image = plots.plot_difference_spectrogram(ax, y, x, sample_rate, title=f"{label}: output - input",
                                                      colorbar=False)
        elif kind == "compressor":
            lin, lout = plots.static_curve(effect, q)
            top[0].plot(lin, lout, color=color, lw=1.8, label=label)
            g = plots.gain_over_time(effect, x, q, y=y)
            t = np.arange(len(g)) / sample_rate
            top[1].plot(t[::50], g[::50], color=color, lw=1.0, label=label)
            env = plots.plot_waveform_envelope(ax, y, sample_rate, color=color, reference=x, title=label)
            if i < len(panels) - 1:
                env.set_ylabel("")
        else:
            xs, ys = plots.transfer_curve(effect, q)
            top[0].plot(xs, ys[0], color=color, lw=1.8, label=label)
            image = plots.plot_spectrogram(ax, normalize_0dbfs(y), sample_rate, title=label, colorbar=False)
        if i > 0 or kind == "clipper":
            ax.set_ylabel("")
    if kind != "compressor":
        fig.colorbar(image, ax=bottom, label="output - input (dB)" if kind == "eq" else "level (dB)", shrink=0.9)
    ax = top[0]
    ax.grid(True, alpha=0.3)
    if kind == "eq":
        plots.log_frequency_axis(ax, hi=sample_rate / 2)
        ax.set_xlabel("frequency (Hz)")
        ax.set_ylabel("gain (dB)")
        ax.set_title(f"{type(effect).__name__}: magnitude responses of the presets")
    elif kind == "compressor":
        ax.plot([-60, 0], [-60, 0], color="0.6", ls=":", lw=1)
        ax.set_xlabel("input level (dBFS)")
        ax.set_ylabel("output level (dBFS)")
        ax.set_title(f"{type(effect).__name__}: static curves")
        top[1].grid(True, alpha=0.3)
        top[1].set_xlabel("time (s)")
        top[1].set_ylabel("gain (dB)")
        top[1].set_title("gain over time on the excerpt")
    else:
        ax.plot([-1, 1], [-1, 1], color="0.6", ls=":", lw=1)
        ax.set_xlabel("input")
        ax.set_ylabel("output")
        ax.set_title(f"{type(effect).__name__}: transfer curves of the presets")
    ax.legend(loc="best", fontsize=9)
    return StaticTwin(name, resolved, fig, x, outputs, sample_rate)


def with_widgets() -> list[str]:
    """Registry names that are importable here, i.e. that get a widget and a static twin."""
    return [n for n in available() if n in plots.KIND]
