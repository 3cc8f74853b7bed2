"""Trained models on disk: load a run, a Lightning checkpoint or an exported demo model, and
export a small fp16 model for the book and ``beafx estimate`` (book chapter
"Training the analysis network", ``book/10_training``).

Three forms are accepted by :func:`load_model`:

- a run folder (``RUN_DIR``): its ``best.ckpt``;
- a Lightning checkpoint (``.ckpt``) written by :func:`beafx.training.train`;
- an exported model (``.pt``, :func:`export_model`): the network's weights (fp16 by default),
  its :class:`RunConfig`, the profile's sizes and the parameter names; no optimiser or trainer
  state, loadable without Lightning;
- ``demo:NAME``: a demo model shipped in the package (:data:`DEMO_MODELS`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import Tensor

from ..effects import Chain
from ..profiles import Profile
from .config import RunConfig

#: Written into every checkpoint and exported model; checked on loading.
RUN_FORMAT = "beafx-run/1"
MODEL_FORMAT = "beafx-model/1"
SAMPLE_RATE = 44100

PathLike = Union[str, Path]


@dataclass
class TrainedModel:
    """A trained analysis network with what is needed to use it.

    ``network``: :class:`beafx.encoders.AnalysisNetwork` (eval mode, float32);
    ``config``: its :class:`RunConfig`; ``metadata``: what the file recorded (steps, metrics...).
    """

    network: torch.nn.Module
    config: RunConfig
    metadata: Optional[dict] = None

    def __post_init__(self) -> None:
        self.network.eval()

    @property
    def profile(self) -> Profile:
        return self.config.resolved_profile()

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def clip_samples(self) -> int:
        return self.profile.clip_samples

    def analysis_chain(self) -> Chain:
        """The differentiable chain the network's ``q_hat`` drives (eval mode)."""
        return self.config.analysis_chain().eval()

    def synthesis_chain(self) -> Chain:
        """The chain that made the training data (exact synthesis paths, eval mode)."""
        from ..data import synthesis_chain

        return synthesis_chain(self.config.synthesis, SAMPLE_RATE)

    @torch.no_grad()
    def predict(self, y: Tensor) -> Tensor:
        """``q_hat (batch, C)`` for audio ``y (batch, channels, samples)``, in eval mode."""
        self.network.eval()
        param = next(self.network.parameters())
        return self.network(y.to(device=param.device, dtype=param.dtype))


def build_network(config: RunConfig, num_params: int) -> torch.nn.Module:
    """A fresh :class:`beafx.encoders.AnalysisNetwork` for ``config``."""
    from ..encoders import AnalysisNetwork

    return AnalysisNetwork(
        config.encoder,
        num_params,
        mee_width=config.mee_width,
        authors_channel_bug=config.authors_channel_bug,
        sample_rate=SAMPLE_RATE,
    )


def run_metadata(config: RunConfig, num_params: int, param_names: list[str], **extra: Any) -> dict:
    """The ``beafx`` record stored in every checkpoint."""
    return {
        "format": RUN_FORMAT,
        "config": config.to_dict(),
        "profile": asdict(config.resolved_profile()),
        "num_params": int(num_params),
        "param_names": list(param_names),
        "sample_rate": SAMPLE_RATE,
        **extra,
    }


def _read(path: Path) -> dict:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load fails in many ways on a file that is not a checkpoint
        raise ValueError(f"{path} is not a beafx checkpoint or model (cannot read it: {(str(err).splitlines() or [type(err).__name__])[0]})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path} is not a beafx checkpoint or model (it holds a {type(obj).__name__})")
    return obj


#: Demo models shipped in the package (``beafx/models/<name>/model.pt``), loadable as ``demo:<name>``.
DEMO_MODELS = {"peq": "peq_tfe_mel", "chain": "chain_tfe_mel"}


def demo_model_path(name: str) -> Path:
    """Path of the shipped demo model ``name`` (``peq``: the ``cpu`` PEQ/TFE/Mel model; ``chain``:
    the ``cpu`` whole-chain TFE/Mel model of Table 5, analysis with the hybrid compressor)."""
    if name not in DEMO_MODELS:
        raise ValueError(f"unknown demo model {name!r}; demo models: {', '.join(DEMO_MODELS)}")
    path = Path(__file__).resolve().parent.parent / "models" / DEMO_MODELS[name] / "model.pt"
    if not path.exists():
        raise FileNotFoundError(f"the demo model {name!r} is not in this installation ({path})")
    return path


def _resolve(path: PathLike) -> Path:
    if isinstance(path, str) and path.startswith("demo:"):
        return demo_model_path(path[len("demo:"):])
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint or run folder at {path}")
    if path.is_dir():
        best = path / "best.ckpt"
        if not best.exists():
            raise FileNotFoundError(f"{path} is a folder without best.ckpt (is it a beafx run folder? a run writes best.ckpt after its first validation)")
        return best
    return path


def _from_record(path: Path, record: dict, state: dict[str, Tensor], extra: dict) -> TrainedModel:
    try:
        config = RunConfig.from_dict(record["config"])
        num_params = int(record["num_params"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path} has a damaged beafx record: {err}") from None
    if int(record.get("sample_rate", SAMPLE_RATE)) != SAMPLE_RATE:
        raise ValueError(f"{path} was trained at {record['sample_rate']} Hz; beafx runs at {SAMPLE_RATE} Hz")
    network = build_network(config, num_params)
    # Non-persistent buffers (the CQT's fixed kernels) may sit in checkpoints written before they
    # became non-persistent: they are recomputed at construction, so they are dropped here.
    fixed = {name for name, _ in network.named_buffers()} - set(network.state_dict())
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items() if k not in fixed}
    missing, unexpected = network.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{path} does not match the {config.encoder.upper()} network it names "
            f"(missing {len(missing)} tensors, e.g. {missing[:2]}; unexpected {len(unexpected)}, e.g. {unexpected[:2]})"
        )
    metadata = {k: v for k, v in record.items() if k not in ("config",)}
    metadata.update(extra)
    return TrainedModel(network.eval(), config, metadata)


def load_model(path: PathLike) -> TrainedModel:
    """Load a trained model from a run folder, a ``.ckpt`` or an exported ``.pt`` (see the
    module docstring). Raises ``FileNotFoundError`` when nothing is there and ``ValueError``
    for a file that is not a beafx checkpoint, is damaged, or does not match its network."""
    path = _resolve(path)
    obj = _read(path)
    if obj.get("format") == MODEL_FORMAT:
        return _from_record(path, obj, obj["state_dict"], {"exported": True, "metrics": obj.get("metrics")})
    record = obj.get("beafx")
    if isinstance(record, dict) and record.get("format") == RUN_FORMAT and "state_dict" in obj:
        prefix = "network."
        state = {k[len(prefix):]: v for k, v in obj["state_dict"].items() if k.startswith(prefix)}
        extra = {"global_step": obj.get("global_step"), "exported": False}
        return _from_record(path, record, state, extra)
    raise ValueError(f"{path} is not a beafx checkpoint or model (no beafx record in it)")


def export_model(source: PathLike, out_path: PathLike, *, fp16: bool = True, metrics: Optional[dict] = None) -> Path:
    """Write the network of ``source`` (run folder, ``.ckpt`` or ``.pt``) to ``out_path`` as a
    small model file: weights (fp16 if ``fp16``), config, profile, parameter names and
    ``metrics`` (e.g. the evaluation JSON). Returns the path written."""
    model = load_model(source)
    state = {
        k: (v.half() if fp16 and v.is_floating_point() else v).contiguous()
        for k, v in model.network.state_dict().items()
    }
    record = run_metadata(
        model.config,
        model.network.num_params,
        list((model.metadata or {}).get("param_names", [])),
        global_step=(model.metadata or {}).get("global_step"),
    )
    record.update({"format": MODEL_FORMAT, "state_dict": state, "fp16": bool(fp16), "metrics": metrics})
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(record, out_path)
    return out_path
