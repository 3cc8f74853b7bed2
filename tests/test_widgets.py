"""Widgets and their static twins: sliders move outputs; every available effect has both."""
import math

import numpy as np
import pytest
import torch

from beafx import examples, plots, widgets
from beafx.effects import REGISTRY, available, effect_class

SHORT = dict(seconds=1.0)


def test_every_registry_effect_has_a_kind_defaults_and_presets():
    for name in REGISTRY:
        assert name in plots.KIND and name in plots.TABLE1, name
        assert name in widgets.DEFAULTS and len(widgets.PRESETS[name]) >= 2, name


def test_presets_and_defaults_lie_within_the_parameter_ranges():
    for name in available():
        specs = {s.name: s for s in effect_class(name).param_specs}
        for label, values in {"default": widgets.default_values(name), **widgets.PRESETS[name]}.items():
            assert set(values) <= set(specs), (name, label)
            for k, v in values.items():
                assert specs[k].minimum <= v <= specs[k].maximum, (name, label, k, v)


@pytest.mark.parametrize("name", available())
def test_every_available_effect_has_a_widget_whose_sliders_change_the_outputs(name):
    w = widgets.widget(name, **SHORT)
    specs = w.effect.param_specs
    assert list(w.sliders) == [s.name for s in specs]
    image, audio, y = w.image.value, w.player.value, w.output.clone()
    assert image[:8] == b"\x89PNG\r\n\x1a\n" and len(audio) > 1000
    # move the parameter that matters most for each kind to a clearly different value
    target = {"eq": None, "compressor": "threshold_db", "clipper": None}[w.kind]
    name_ = target or next(s.name for s in specs if "gain" in s.name or s.name in ("drive_db", "g2"))
    spec = next(s for s in specs if s.name == name_)
    new = spec.maximum if abs(w.values[name_] - spec.maximum) > abs(w.values[name_] - spec.minimum) else spec.minimum
    renders = w.renders
    w.sliders[name_].value = new  # as a person would: through the slider
    assert w.renders == renders + 1
    assert math.isclose(w.values[name_], new, rel_tol=1e-6, abs_tol=1e-6)
    assert w.image.value != image and w.player.value != audio
    assert not torch.allclose(w.output, y)


def test_set_renders_once_and_validates():
    w = widgets.widget("clipper", **SHORT)
    before = w.renders
    y = w.set(drive_db=18.0, hardness=2.0)
    assert w.renders == before + 1 and w.values["drive_db"] == pytest.approx(18.0)
    assert torch.equal(y, w.output)
    with pytest.raises(ValueError, match="outside"):
        w.set(drive_db=40.0)
    with pytest.raises(ValueError, match="unknown parameter"):
        w.set(volume=1.0)
    with pytest.raises(ValueError, match="unknown effect"):
        widgets.widget("reverb")
    with pytest.raises(ValueError, match="audio must be"):
        widgets.widget("clipper", audio=torch.zeros(2, 1, 100))


def test_widget_output_is_the_effect_applied_to_the_chain_input():
    x = examples.load("vibe_ace", seconds=1.0)
    w = widgets.widget("clipper", audio=x)
    effect = effect_class("clipper")()
    expected = effect(plots.chain_input(x), widgets.to_q(effect.param_specs, w.values))
    assert torch.allclose(w.output, expected)


def test_log_parameters_get_log_sliders():
    import ipywidgets as W

    for name in available():
        w = widgets.widget(name, **SHORT)
        for spec in w.effect.param_specs:
            assert isinstance(w.sliders[spec.name], W.FloatLogSlider) == (spec.scale == "log"), (name, spec.name)


@pytest.mark.parametrize("name", available())
def test_every_available_effect_has_a_static_twin(name):
    twin = widgets.static_twin(name, **SHORT)
    assert set(twin.outputs) == set(widgets.PRESETS[name])
    outs = list(twin.outputs.values())
    assert all(o.shape == twin.dry.shape and torch.isfinite(o).all() for o in outs)
    assert not torch.allclose(outs[0], outs[1])  # presets differ audibly, not just in name
    html = twin.players().data
    assert html.count("<audio") == len(outs) + 1 and "data:audio/mpeg;base64," in html
    assert len(twin.figure.axes) >= 1 + len(outs) + 1


def test_static_twin_rejects_bad_presets():
    with pytest.raises(ValueError, match="unknown parameter"):
        widgets.static_twin("clipper", presets={"x": {"volume": 1.0}}, **SHORT)
    with pytest.raises(ValueError, match="outside"):
        widgets.static_twin("clipper", presets={"x": {"drive_db": 99.0}}, **SHORT)
    with pytest.raises(ValueError, match="no presets"):
        widgets.static_twin("clipper", presets={}, **SHORT)


def test_mp3_players_decode_to_the_right_length():
    import io

    import soundfile as sf

    x = examples.load("lets_go_fishin", seconds=1.0)
    data, sr = sf.read(io.BytesIO(plots.encode_mp3(x)))
    assert sr == 44100 and data.shape[1] == 2
    assert abs(len(data) - 44100) < 3000  # MP3 frames pad a little
    assert np.abs(data).max() == pytest.approx(10 ** (-0.5 / 20), abs=0.05)
    with pytest.raises(ValueError, match="at most 2 channels"):
        plots.encode_mp3(torch.zeros(1, 3, 1000))
    with pytest.raises(ValueError, match="NaN"):
        plots.encode_mp3(torch.full((1, 1, 1000), float("nan")))


def test_excerpts_load_with_attribution():
    for name, info in examples.EXCERPTS.items():
        x = examples.load(name, start=1.0, seconds=2.0)
        assert x.shape == (1, 2, 88200) and x.abs().max() > 0.05
        assert "CC-BY" in info.attribution and info.artist in info.attribution
    assert examples.load("vibe_ace", seconds=0.5, mono=True).shape == (1, 1, 22050)
    with pytest.raises(ValueError, match="unknown excerpt"):
        examples.load("nope")
    with pytest.raises(ValueError, match="lasts"):
        examples.load("vibe_ace", start=14.0, seconds=5.0)


def test_measured_curves_match_known_values():
    # the clipper's transfer curve at drive -10 dB is almost the identity; a flat EQ has 0 dB
    eff = effect_class("clipper")()
    q = widgets.to_q(eff.param_specs, {"drive_db": -10.0, "offset": 0.0, "hardness": 2.0})
    xs, ys = plots.transfer_curve(eff, q)
    assert np.allclose(ys[0], xs, atol=1e-9)  # hard clip never reached: |g x| <= 0.32
    q = widgets.to_q(eff.param_specs, {"drive_db": 20.0, "offset": 0.0, "hardness": 2.0})
    xs, ys = plots.transfer_curve(eff, q)
    assert ys[0].max() == pytest.approx(0.1)  # clips at 1/g


def test_bench_line_for_widgets_runs():
    from beafx import bench

    lines = bench.run(["widgets"], quick=True)
    assert {ln.name.split(": ")[1].split(" ")[0] for ln in lines} == set(widgets.with_widgets())
    assert all(ln.seconds > 0 and ln.ratio > 0 for ln in lines)


def test_frequencies_print_as_whole_hertz_and_labels_fit():
    from beafx.params import TABLE

    f0 = next(s for s in TABLE["ParametricEQ"] if s.name == "high_shelf.f0")
    assert widgets.readout_format(f0) == ".0f"
    assert widgets.format_value(f0, 12000.0) == "12000 Hz"
    ratio = next(s for s in TABLE["Compressor"] if s.name == "ratio")
    assert widgets.format_value(ratio, 4.0) == "4:1"
    w = widgets.widget("peq", **SHORT)
    slider = w.sliders["high_shelf.f0"]
    assert slider.readout_format == ".0f"
    width = int(slider.style.description_width.rstrip("px"))
    longest = max(len(widgets.slider_label(s)) for s in w.effect.param_specs)
    assert width >= 7 * longest  # about 7 px per character at the widget's font size
    twin = widgets.static_twin("peq", **SHORT)
    assert "e+0" not in " ".join(twin.notes().values())


def test_log_frequency_axes_have_integer_ticks_from_20_hz_to_20_khz():
    from matplotlib.figure import Figure

    wide = Figure(figsize=(10, 3)).add_subplot()
    plots.log_frequency_axis(wide)
    labels = [t.get_text() for t in wide.get_xticklabels()]
    assert labels == ["20", "50", "100", "200", "500", "1000", "2000", "5000", "10000", "20000"]
    assert wide.get_xscale() == "log" and wide.get_xlim() == (20.0, 22050.0)
    narrow = Figure(figsize=(3, 3)).add_subplot()  # too short for ten labels: same ticks, fewer labels
    plots.log_frequency_axis(narrow)
    assert list(narrow.get_xticks()) == [20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000]
    assert [t.get_text() for t in narrow.get_xticklabels() if t.get_text()] == ["20", "100", "1000", "10000"]
    ticks, mel_labels = plots.mel_axis_ticks()
    assert all(label.isdigit() for label in mel_labels) and np.all(np.diff(ticks) > 0)


def test_every_spectrogram_has_a_colour_bar_and_twins_show_the_right_pictures():
    from matplotlib.figure import Figure

    fig = Figure()
    plots.plot_spectrogram(fig.add_subplot(), np.random.default_rng(0).standard_normal((1, 44100)))
    assert len(fig.axes) == 2  # the spectrogram and its colour bar
    labels = {name: [ax.get_ylabel() for ax in widgets.static_twin(name, **SHORT).figure.axes]
              for name in ("peq", "compressor", "clipper")}
    assert "output - input (dB)" in labels["peq"]  # EQ: difference spectrograms, with their colour bar
    assert "level (dB)" in labels["clipper"]
    assert any("RMS" in label for label in labels["compressor"])  # compressor: RMS envelopes
    w = widgets.widget("compressor", **SHORT)
    assert w.panels.env_ax is not None and len(w.panels.env_out.get_xdata()) > 0


def test_difference_spectrogram_of_a_gain_is_zero():
    from matplotlib.figure import Figure

    x = examples.load("vibe_ace", seconds=1.0)
    im = plots.plot_difference_spectrogram(Figure().add_subplot(), 0.25 * x, x)
    assert np.abs(im.get_array()).max() < 1e-3  # both at equal RMS: a pure gain changes nothing
