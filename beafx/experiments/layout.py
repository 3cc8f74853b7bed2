"""The paper's Tables 2-5 declared once: rows, columns, metrics, and every cell as declared
runs (book chapter "Reproducing the paper's experiments"; issue 10).

A cell is one or more :class:`RunSpec` (one per seed). Tables 2-4 (trained with the Mel loss,
seed 0) have one row per encoder and one column per analysis effect; Table 5 has one row per
effect (the paper's choices: TFE for the equalizer, MEE for the compressor and the clipper, TFE
for the chain) and one column per training loss, with two seeds per cell. Our rows and columns
sit beside the paper's and are marked ``ours``:

- Tables 2-4, row ``te_authors``: the TE as published (``authors_channel_bug=True``);
- Table 3, column ``compressor``: the differentiable exact DSP compressor as analysis effect;
- Table 3, column ``simple_compressor_authors``: the simplified compressor as published
  (``SimpleCompressor(authors_time_constant_bug=True)``), TFE only;
- Table 5, rows ``compressor_exact`` and ``chain_exact``: the exact compressor in place of the
  hybrid (our best configuration declared in advance: the synthesis implementation).

``GPU_ONLY`` names the cells a CPU profile skips (the neural proxy is too slow to train on
this 2-core machine). A run declared by several cells (e.g. Table 5's compressor row, Mel loss,
seed 0, is Table 3's MEE x hybrid cell) is one run; it is GPU-only only when every cell
declaring it is.

Baselines (DESIGN.md): ``random``, ``xy``, ``mean_q``, ``oracle`` from
:func:`beafx.evaluation.evaluate_baselines`, once per (synthesis, analysis, source), and
``best_constant`` (a bias-only ``q_hat`` trained with the run's loss), once per (synthesis,
analysis, source, loss).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

#: The whole mastering chain of the paper (synthesis) and its analysis chain in Table 5.
CHAIN = "peq+compressor+clipper"
CHAIN_HYBRID = "peq+hybrid_compressor+clipper"
#: Baselines shown beside every table (``best_constant`` is per training loss).
BASELINE_ROWS = ("random", "xy", "mean_q", "oracle", "best_constant")
#: Profiles on which ``gpu_only`` cells are skipped when no GPU is present.
GPU_ONLY_PROFILES = ("cpu",)
#: Seeds of Table 5's cells.
TABLE5_SEEDS = (0, 1)
#: best_constant: Adam on a bias of C logits (q_hat = sigmoid(b)) at this learning rate, for
#: the run's number of steps capped at BEST_CONSTANT_MAX_STEPS (a bias needs no more; the
#: profile's learning rate, 1e-4, would barely move it from q_hat = 0.5).
BEST_CONSTANT_LR = 1e-2
BEST_CONSTANT_MAX_STEPS = 100


@dataclass(frozen=True)
class RunSpec:
    """One declared training run, independent of profile and source. ``authors_time_constant_bug``
    selects ``SimpleCompressor(authors_time_constant_bug=True)`` in the analysis chain."""

    synthesis: str
    analysis: str
    encoder: str
    loss: str = "mel"
    seed: int = 0
    authors_channel_bug: bool = False
    authors_time_constant_bug: bool = False

    def name(self, profile: str) -> str:
        """The run's file name, e.g. ``peq-peq-tfe-mel-cpu-s0``; equal to
        :meth:`beafx.training.RunConfig.name` for every run a RunConfig can express."""
        synth = self.synthesis.replace("+", "_")
        anal = self.analysis.replace("+", "_") + ("-authorstc" if self.authors_time_constant_bug else "")
        bug = "-authors" if self.authors_channel_bug else ""
        return f"{synth}-{anal}-{self.encoder}{bug}-{self.loss}-{profile}-s{self.seed}"


@dataclass(frozen=True)
class Cell:
    """One cell of a table: its row and column keys and its runs (one per seed)."""

    table: str
    row: str
    column: str
    runs: tuple[RunSpec, ...]
    gpu_only: bool = False

    @property
    def synthesis(self) -> str:
        return self.runs[0].synthesis

    @property
    def analysis(self) -> str:
        return self.runs[0].analysis

    @property
    def loss(self) -> str:
        return self.runs[0].loss


@dataclass(frozen=True)
class TableLayout:
    """A table: ``rows``/``columns`` are ``(key, label)`` pairs (keys as in
    ``beafx/data/assets/paper_tables.json`` for the paper's), ``metrics`` the metrics shown per
    column (keys of :data:`beafx.evaluation.METRICS`), ``cells`` every declared cell (a
    ``(row, column)`` pair without a cell is not run), ``ours`` the row and column keys that are
    not the paper's. ``baselines_by``: ``"column"`` when baselines are extra rows (one value per
    column: Tables 2-4), ``"row"`` when they are extra columns (one per row: Table 5)."""

    key: str
    paper: Optional[int]
    title: str
    rows: tuple[tuple[str, str], ...]
    columns: tuple[tuple[str, str], ...]
    metrics: tuple[str, ...]
    cells: tuple[Cell, ...]
    ours: frozenset[str] = field(default_factory=frozenset)
    baselines_by: str = "column"

    def cell(self, row: str, column: str) -> Optional[Cell]:
        for c in self.cells:
            if c.row == row and c.column == column:
                return c
        return None

    def row_keys(self) -> list[str]:
        return [k for k, _ in self.rows]

    def column_keys(self) -> list[str]:
        return [k for k, _ in self.columns]


ENCODER_ROWS = (("mee", "MEE"), ("te", "TE"), ("tfe", "TFE"), ("te_authors", "TE (as published)"))


def _encoder_of(row: str) -> tuple[str, bool]:
    return ("te", True) if row == "te_authors" else (row, False)


def _grid(key: str, paper: int, title: str, synthesis: str, columns: tuple[tuple[str, str], ...],
          *, gpu_only: set[tuple[str, str]] = frozenset(), only_rows: Optional[dict[str, tuple[str, ...]]] = None,
          ours_columns: tuple[str, ...] = ()) -> TableLayout:
    """Tables 2-4: encoder rows x analysis columns, Mel loss, seed 0."""
    cells = []
    for row, _ in ENCODER_ROWS:
        encoder, bug = _encoder_of(row)
        for column, _ in columns:
            if only_rows and column in only_rows and row not in only_rows[column]:
                continue
            legacy = column.endswith("_authors")
            analysis = column[: -len("_authors")] if legacy else column
            spec = RunSpec(synthesis, analysis, encoder, "mel", 0, authors_channel_bug=bug, authors_time_constant_bug=legacy)
            cells.append(Cell(key, row, column, (spec,), gpu_only=(row, column) in gpu_only))
    return TableLayout(key, paper, title, ENCODER_ROWS, columns, ("mse_y", "mel"), tuple(cells),
                       frozenset({"te_authors", *ours_columns}), "column")


TABLE2 = _grid(
    "table2", 2, "Equalizer: analysis implementation x encoder (synthesis: parametric EQ; Mel loss)", "peq",
    (("peq", "Parametric"), ("geq", "Graphic")),
)

_PROXY_GPU = {(r, c) for r in ("mee", "te", "te_authors") for c in ("np_compressor", "hybrid_compressor")}
TABLE3 = _grid(
    "table3", 3, "Compressor: analysis implementation x encoder (synthesis: DSP compressor; Mel loss)", "compressor",
    (("np_compressor", "NP"), ("hybrid_compressor", "Hybrid NP"), ("simple_compressor", "Simpl. DSP (fixed)"),
     ("compressor", "DSP (exact, ours)"), ("simple_compressor_authors", "Simpl. DSP (as published)")),
    gpu_only=_PROXY_GPU,
    only_rows={"simple_compressor_authors": ("tfe",)},
    ours_columns=("compressor", "simple_compressor_authors"),
)

TABLE4 = _grid(
    "table4", 4, "Clipper: analysis implementation x encoder (synthesis: parametric clipper; Mel loss)", "clipper",
    (("clipper", "Parametric"), ("taylor", "Taylor"), ("chebyshev", "Chebyshev")),
)

#: Table 5 rows: key -> (label, synthesis, analysis, encoder).
TABLE5_ROWS = {
    "equalizer": ("Eq.", "peq", "peq", "tfe"),
    "compressor": ("Comp.", "compressor", "hybrid_compressor", "mee"),
    "clipper": ("Clip.", "clipper", "clipper", "mee"),
    "chain": ("Chain", CHAIN, CHAIN_HYBRID, "tfe"),
    "compressor_exact": ("Comp., exact DSP (ours)", "compressor", "compressor", "mee"),
    "chain_exact": ("Chain, exact DSP (ours)", CHAIN, CHAIN, "tfe"),
}


def _table5() -> TableLayout:
    cells = []
    for row, (_, synthesis, analysis, encoder) in TABLE5_ROWS.items():
        for loss in ("mel", "params"):
            runs = tuple(RunSpec(synthesis, analysis, encoder, loss, seed) for seed in TABLE5_SEEDS)
            cells.append(Cell("table5", row, loss, runs))
    return TableLayout(
        "table5", 5, "Training loss: Mel (audio) vs MSE_q (parameters), single effects and the whole chain",
        tuple((k, v[0]) for k, v in TABLE5_ROWS.items()), (("mel", "trained with Mel"), ("params", "trained with MSE_q")),
        ("mse_y", "mel", "mse_q"), tuple(cells), frozenset({"compressor_exact", "chain_exact"}), "row",
    )


TABLE5 = _table5()
#: Every table, in order.
TABLES: dict[str, TableLayout] = {t.key: t for t in (TABLE2, TABLE3, TABLE4, TABLE5)}

#: The smoke subset: each analysis effect and each encoder at least once (CI).
SMOKE_CELLS = (
    ("table2", "tfe", "peq"), ("table2", "te", "geq"),
    ("table3", "mee", "np_compressor"), ("table3", "tfe", "hybrid_compressor"),
    ("table3", "te", "simple_compressor"), ("table3", "mee", "compressor"),
    ("table4", "mee", "clipper"), ("table4", "tfe", "taylor"), ("table4", "te", "chebyshev"),
    ("table5", "chain", "mel"),
)


@dataclass(frozen=True)
class PlanEntry:
    """What a profile's committed plan runs on one source: ``source`` is a spec or a kind
    (``musdb`` stands for any ``musdb:PATH``); ``cells``: ``None`` for every cell, else
    ``(table, row, column)`` triples (``row``/``column`` may be ``"*"``); ``seeds``: keep only
    these seeds (None: all); ``baselines``: tables whose baselines are computed even where no
    cell runs."""

    source: str
    cells: Optional[tuple[tuple[str, str, str], ...]] = None
    seeds: Optional[tuple[int, ...]] = None
    baselines: tuple[str, ...] = ()


#: The committed plan per profile (issue 10): ``cpu`` runs everything on ``synthetic`` and
#: Table 5's TFE rows plus every table's baselines on ``debian-music``; ``smoke`` runs
#: :data:`SMOKE_CELLS` with one seed; ``paper`` runs everything on MUSDB18.
PLANS: dict[str, tuple[PlanEntry, ...]] = {
    "cpu": (
        PlanEntry("synthetic", baselines=tuple(TABLES)),
        PlanEntry("debian-music", cells=(("table5", "equalizer", "*"), ("table5", "chain", "*")),
                  baselines=tuple(TABLES)),
    ),
    "smoke": (PlanEntry("synthetic", cells=SMOKE_CELLS, seeds=(0,)),),
    "paper": (PlanEntry("musdb", baselines=tuple(TABLES)),),
}

#: Wall-clock budget per profile (hours, summed over the JSON of every source of its plan):
#: issue 10 gives the ``cpu`` grid 16 hours of this 2-core machine. The dry run checks the
#: spent time plus the estimate against it.
BUDGET_HOURS: dict[str, float] = {"cpu": 16.0}
