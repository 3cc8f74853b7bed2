"""Training the analysis network with Lightning (book chapter "Training the analysis network",
``book/10_training``).

- :class:`RunConfig` (:mod:`.config`): what a run is (chains, encoder, loss, profile, source, seed);
- :func:`train` (:mod:`.run`): the one training function that a chapter calls and ``beafx train``
  wraps, the same on a laptop CPU, in a notebook, on one GPU and on several;
- :func:`load_model` / :func:`export_model` / :class:`TrainedModel` (:mod:`.checkpoint`).

The neural proxy compressor is trained by :mod:`beafx.training.proxy`.
"""
from __future__ import annotations

from .checkpoint import DEMO_MODELS, MODEL_FORMAT, RUN_FORMAT, TrainedModel, build_network, demo_model_path, export_model, load_model
from .config import ENCODER_NAMES, LOSS_NAMES, RunConfig

__all__ = [
    "DEMO_MODELS", "ENCODER_NAMES", "LOSS_NAMES", "MODEL_FORMAT", "demo_model_path", "RUN_FORMAT", "RunConfig", "TrainResult", "TrainedModel",
    "build_network", "export_model", "load_model", "train",
]


def __getattr__(name: str):
    if name in ("train", "TrainResult"):
        from . import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
