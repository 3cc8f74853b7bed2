"""The paper's published numbers (Tables 2-5), read from one data file.

``beafx/data/assets/paper_tables.json`` holds every number of Tables 2-5 as printed (text, so
``"0.040"`` keeps its digits), with each table's caption, section, rows, columns and metrics.
The book quotes the paper only through this module, so no number of the paper is typed into
its prose:

>>> from beafx import paper
>>> paper.text(5, "compressor", "params", "mel")   # Table 5, trained with MSE_q, Mel metric
'0.069'
>>> paper.value(3, "mee", "hybrid_compressor", "mse_y")
0.011

Keys: Tables 2-4 have rows ``mee``, ``te``, ``tfe`` (the encoders), ``random_q`` (random
parameters) and ``identity`` (the loss between x and y) and one column per analysis effect
(registry names, e.g. ``peq``, ``hybrid_compressor``, ``chebyshev``); Table 5 has rows
``equalizer``, ``compressor``, ``clipper``, ``chain`` and columns ``mel`` / ``params`` (the
training loss). Metrics: ``mse_y``, ``mel``, ``mse_q`` (Table 5 only).

:func:`mel_distance` computes the Mel metric of eq. 10 the way the paper does.
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Optional

from torch import Tensor

#: Tables present in the data file.
TABLES = (2, 3, 4, 5)
#: Metric keys and their labels.
METRIC_LABELS = {"mse_y": "MSE<sub>y</sub>", "mel": "\u2112<sup>Mel</sup>", "mse_q": "MSE<sub>q</sub>"}


@dataclass(frozen=True)
class Table:
    """One table: caption, section, row and column keys (with the paper's labels), metrics,
    the printed values ``values[row][column][metric]`` (text) and notes."""

    number: int
    caption: str
    section: str
    effect: Optional[str]
    trained_with: Optional[str]
    rows: dict[str, str]
    columns: dict[str, str]
    metrics: tuple[str, ...]
    values: dict[str, dict[str, dict[str, str]]]
    notes: tuple[str, ...]
    configurations: dict[str, dict[str, Optional[str]]]

    def text(self, row: str, column: str, metric: str) -> str:
        """The number as printed in the paper."""
        for what, key, known in (("row", row, self.rows), ("column", column, self.columns),
                                 ("metric", metric, self.metrics)):
            if key not in known:
                raise ValueError(f"Table {self.number}: unknown {what} {key!r}; {what}s: {', '.join(known)}")
        return self.values[row][column][metric]

    def value(self, row: str, column: str, metric: str) -> float:
        """The number as a float."""
        return float(self.text(row, column, metric))

    def best(self, column: str, metric: str, *, rows: Optional[tuple[str, ...]] = None) -> str:
        """The row key with the lowest ``metric`` in ``column`` (encoders only by default)."""
        keys = rows or tuple(r for r in self.rows if r not in ("random_q", "identity"))
        return min(keys, key=lambda r: self.value(r, column, metric))


def _check(number: int, raw: dict) -> Table:
    try:
        rows, columns, metrics = dict(raw["rows"]), dict(raw["columns"]), tuple(raw["metrics"])
        values = raw["values"]
    except KeyError as err:
        raise ValueError(f"paper_tables.json: Table {number} lacks {err}") from None
    unknown = set(metrics) - set(METRIC_LABELS)
    if unknown:
        raise ValueError(f"paper_tables.json: Table {number} has unknown metrics {sorted(unknown)}")
    out: dict[str, dict[str, dict[str, str]]] = {}
    for row in rows:
        for column in columns:
            printed = values.get(row, {}).get(column)
            if printed is None or len(printed) != len(metrics):
                raise ValueError(f"paper_tables.json: Table {number} needs {len(metrics)} values at ({row}, {column})")
            for text in printed:
                float(text)  # ValueError names the bad text
            out.setdefault(row, {})[column] = dict(zip(metrics, printed))
    extra = set(values) - set(rows)
    if extra:
        raise ValueError(f"paper_tables.json: Table {number} has values for unknown rows {sorted(extra)}")
    return Table(number, raw["caption"], raw["section"], raw.get("effect"), raw.get("trained_with"), rows, columns,
                 metrics, out, tuple(raw.get("notes", ())), dict(raw.get("configurations", {})))


@lru_cache(maxsize=1)
def _load() -> dict[int, Table]:
    path = resources.files("beafx") / "data" / "assets" / "paper_tables.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    tables = {int(k): _check(int(k), v) for k, v in raw["tables"].items()}
    if tuple(sorted(tables)) != TABLES:
        raise ValueError(f"paper_tables.json: expected Tables {TABLES}, found {tuple(sorted(tables))}")
    return tables


def table(number: int) -> Table:
    """Table ``number`` (2-5) of the paper."""
    if number not in TABLES:
        raise ValueError(f"the paper's result tables are {TABLES}, not {number!r}")
    return _load()[number]


def text(number: int, row: str, column: str, metric: str) -> str:
    """A number of Table ``number`` as printed, e.g. ``text(5, "clipper", "params", "mel")``."""
    return table(number).text(row, column, metric)


def value(number: int, row: str, column: str, metric: str) -> float:
    """A number of Table ``number`` as a float."""
    return table(number).value(row, column, metric)


def table_html(number: int, *, highlight: Optional[set[tuple[str, str, str]]] = None) -> str:
    """Table ``number`` as an HTML table (one column per analysis effect and metric); cells
    ``(row, column, metric)`` in ``highlight`` are bold. The caption names the table."""
    t = table(number)
    highlight = highlight or set()
    head1 = "<th></th>" + "".join(f'<th colspan="{len(t.metrics)}">{html.escape(label)}</th>' for label in t.columns.values())
    head2 = "<th></th>" + "".join(f"<th>{METRIC_LABELS[m]}</th>" for _ in t.columns for m in t.metrics)
    body = []
    for row, label in t.rows.items():
        cells = []
        for column in t.columns:
            for metric in t.metrics:
                v = html.escape(t.text(row, column, metric))
                cells.append(f"<td><b>{v}</b></td>" if (row, column, metric) in highlight else f"<td>{v}</td>")
        body.append(f"<tr><th>{html.escape(label)}</th>{''.join(cells)}</tr>")
    caption = f"Table {t.number} of the paper (section {t.section}): {html.escape(t.caption)}."
    return (f'<table class="table beafx-paper" style="font-size:0.9em"><caption>{caption}</caption>'
            f"<thead><tr>{head1}</tr><tr>{head2}</tr></thead><tbody>{''.join(body)}</tbody></table>")


# --------------------------------------------------------------------------- the Mel metric
@lru_cache(maxsize=1)
def _auraloss_mel():
    import auraloss

    return auraloss.freq.MelSTFTLoss(sample_rate=44100, fft_size=4096, hop_size=1024, win_length=4096, n_mels=128,
                                     w_sc=0.0, w_log_mag=1.0, w_lin_mag=0.0)


def mel_distance(y_hat: Tensor, y: Tensor) -> float:
    """The paper's Mel metric (eq. 10) between ``y_hat`` and ``y``, each ``(1, channels,
    samples)`` at 44.1 kHz: DC removed and RMS-normalised, then the L1 distance of log mel
    magnitudes (4096-point FFT, hop 1024, 128 bands). Uses :func:`beafx.losses.mel_loss`
    when the package has it, else auraloss with the same settings."""
    if y_hat.shape != y.shape or y.dim() != 3 or y.shape[0] != 1:
        raise ValueError(f"mel_distance: need two (1, channels, samples) tensors of one shape, got "
                         f"{tuple(y_hat.shape)} and {tuple(y.shape)}")
    try:
        from .losses import mel_loss
    except ImportError:
        from .functional.levels import rms_normalize

        return float(_auraloss_mel()(rms_normalize(y_hat.float()), rms_normalize(y.float())))
    return float(mel_loss(y_hat.float(), y.float()))


__all__ = ["TABLES", "Table", "table", "text", "value", "table_html", "mel_distance", "METRIC_LABELS"]
