"""``beafx bench``: speed measured as ratios against baselines timed in the same run.

Each module of this package registers one group of lines with :func:`register`. A group
function takes ``quick`` (smaller sizes, for tests) and returns :class:`Line` objects.
Never assert a speed in a test: run ``beafx bench`` and record the table.
"""
from __future__ import annotations

import importlib
import json
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import torch

#: Group name -> module that registers it (imported lazily, in this order).
GROUP_MODULES = {
    "eq": "beafx.bench.eq",
    "compressor": "beafx.bench.compressor",
    "proxy": "beafx.bench.proxy",
    "data": "beafx.bench.data",
    "widgets": "beafx.bench.widgets",
    "training": "beafx.bench.training",
}

_GROUPS: dict[str, Callable[[bool], list["Line"]]] = {}


@dataclass
class Line:
    """One benchmark row. ``ratio`` is baseline time / this time (> 1: faster than the baseline)."""

    group: str
    name: str
    seconds: Optional[float]
    baseline: str = ""
    ratio: Optional[float] = None
    note: str = ""
    extra: dict = field(default_factory=dict)


def register(group: str):
    """Decorator: register ``fn(quick: bool) -> list[Line]`` as the bench group ``group``."""

    def deco(fn):
        _GROUPS[group] = fn
        return fn

    return deco


def timeit(fn: Callable[[], object], *, repeat: int = 3, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def groups() -> list[str]:
    return list(GROUP_MODULES)


def run(only: Optional[list[str]] = None, *, quick: bool = False) -> list[Line]:
    """Run the selected groups (all by default) and return their lines."""
    selected = only or list(GROUP_MODULES)
    unknown = [g for g in selected if g not in GROUP_MODULES]
    if unknown:
        raise ValueError(f"unknown bench group(s) {unknown}; groups: {', '.join(GROUP_MODULES)}")
    lines: list[Line] = []
    for group in selected:
        try:
            importlib.import_module(GROUP_MODULES[group])
        except ModuleNotFoundError as err:
            if err.name == GROUP_MODULES[group]:
                lines.append(Line(group, "(not implemented yet)", None, note=str(err)))
                continue
            raise
        lines.extend(_GROUPS[group](quick))
    return lines


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def format_table(lines: list[Line]) -> str:
    """Markdown table of the lines."""
    rows = ["| group | line | seconds | vs baseline | note |", "|---|---|---:|---|---|"]
    for ln in lines:
        secs = "n/a" if ln.seconds is None else f"{ln.seconds:.4f}"
        rel = "" if ln.ratio is None else f"{ln.ratio:.2f}x vs {ln.baseline}"
        rows.append(f"| {ln.group} | {ln.name} | {secs} | {rel} | {ln.note} |")
    return "\n".join(rows)


def to_json(lines: list[Line]) -> str:
    return json.dumps({"machine": machine(), "lines": [asdict(ln) for ln in lines]}, indent=2)


README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


def write_readme(path: str, lines: list[Line]) -> None:
    """Replace, between :data:`README_START` and :data:`README_END` in ``path``, the rows of the
    groups in ``lines`` (other groups' rows and their measurement line are kept, so one group can
    be re-measured alone), with the machine description of this run."""
    with open(path) as fh:
        text = fh.read()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{path} has no {README_START} ... {README_END} section to update")
    head, rest = text.split(README_START, 1)
    old, tail = rest.split(README_END, 1)
    new_groups = {ln.group for ln in lines}
    kept_rows = [r for r in old.splitlines() if r.startswith("| ") and not r.startswith("| group")
                 and r.split("|")[1].strip() not in new_groups]
    kept_groups = sorted({r.split("|")[1].strip() for r in kept_rows})
    kept_desc = [d for d in old.splitlines() if d.startswith("Measured by") and kept_groups]
    m = machine()
    desc = (f"Measured by `beafx bench --readme README.md` on {time.strftime('%Y-%m-%d')} "
            f"({', '.join(sorted(new_groups))}): Python {m['python']}, torch {m['torch']}, {m['threads']} torch threads, "
            f"{m['cuda'] or 'no GPU'}.")
    order = {g: i for i, g in enumerate(GROUP_MODULES)}
    table = format_table(lines).splitlines()
    rows = sorted(table[2:] + kept_rows, key=lambda r: order.get(r.split("|")[1].strip(), len(order)))
    body = "\n".join(table[:2] + rows)
    descs = "\n".join([desc] + [d for d in kept_desc if d != desc])
    with open(path, "w") as fh:
        fh.write(f"{head}{README_START}\n{descs}\n\n{body}\n{README_END}{tail}")