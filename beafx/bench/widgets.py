"""``beafx bench`` group ``widgets``: slider -> redraw + audio, for a 5 s excerpt.

Times :meth:`beafx.widgets.EffectWidget.set` (the effect on the excerpt, the curve, the mel
spectrogram, the PNG and the MP3 of the player) for every effect that has a widget. The
line's ratio is against the interactive target of 0.3 s (> 1: faster than the target).
"""
from __future__ import annotations

from . import Line, register, timeit

TARGET_SECONDS = 0.3


@register("widgets")
def bench_widgets(quick: bool) -> list[Line]:
    from .. import widgets

    seconds = 1.0 if quick else 5.0
    lines = []
    for name in widgets.with_widgets():
        w = widgets.widget(name, seconds=seconds)
        spec = w.effect.param_specs[0]
        low, high = spec.to_physical(0.25).item(), spec.to_physical(0.75).item()
        flip = [low, high]

        def move():
            flip.reverse()
            w.set(**{spec.name: flip[0]})

        t = timeit(move, repeat=1 if quick else 5, warmup=1)
        lines.append(Line("widgets", f"slider -> redraw + audio: {name} ({seconds:g} s excerpt)", t,
                          baseline=f"{TARGET_SECONDS} s target", ratio=TARGET_SECONDS / t,
                          note="effect + curve + mel spectrogram + PNG + MP3"))
    return lines
