"""What a training run is: :class:`RunConfig`, a small JSON-able record (book chapter
"Training the analysis network", ``book/10_training``).

A run estimates the parameters of the ``analysis`` chain from audio made by the ``synthesis``
chain, with one encoder and one loss, sized by a profile (:mod:`beafx.profiles`). Its hash keys
results; the commit and package version are recorded beside it, never keyed.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Optional

from ..data.sources import parse_source
from ..effects import make
from ..profiles import PROFILES, Profile, get_profile

#: Encoder names (see :mod:`beafx.encoders`).
ENCODER_NAMES = ("mee", "te", "tfe")
#: Training losses: the paper's audio (Mel) loss and the usual parameter loss.
LOSS_NAMES = ("mel", "params")


@dataclass(frozen=True)
class RunConfig:
    """One training run. ``synthesis``/``analysis``: chain specs (``"peq"``,
    ``"peq+compressor+clipper"`` ...); ``encoder``: ``mee|te|tfe``; ``loss``: ``mel|params``;
    ``profile``: ``paper|cpu|smoke``; ``source``: a data source spec; ``max_steps`` caps the
    profile; ``authors_channel_bug`` reproduces the published TE and
    ``authors_time_constant_bug`` the published simplified compressor (analysis side)."""

    synthesis: str = "peq"
    analysis: str = "peq"
    encoder: str = "tfe"
    loss: str = "mel"
    profile: str = "cpu"
    source: str = "synthetic"
    seed: int = 0
    max_steps: Optional[int] = None
    authors_channel_bug: bool = False
    authors_time_constant_bug: bool = False

    def __post_init__(self) -> None:
        if self.encoder not in ENCODER_NAMES:
            raise ValueError(f"unknown encoder {self.encoder!r}; encoders: {', '.join(ENCODER_NAMES)}")
        if self.loss not in LOSS_NAMES:
            raise ValueError(f"unknown loss {self.loss!r}; losses: {', '.join(LOSS_NAMES)}")
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; profiles: {', '.join(PROFILES)}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps < 1):
            raise ValueError(f"max_steps must be a positive integer, got {self.max_steps!r}")
        if self.authors_channel_bug and self.encoder != "te":
            raise ValueError("authors_channel_bug only applies to the TE encoder (--encoder te)")
        if self.authors_time_constant_bug and "simple_compressor" not in self.analysis.split("+"):
            raise ValueError("authors_time_constant_bug only applies to an analysis chain with simple_compressor")
        parse_source(self.source)
        synthesis, analysis = make(self.synthesis), self.analysis_chain()
        if self.loss == "params" and not self.same_parameters(synthesis, analysis):
            raise ValueError(
                f"the parameter loss needs the analysis chain to have the synthesis chain's parameters; "
                f"{self.analysis!r} has {analysis.param_names} and {self.synthesis!r} has {synthesis.param_names}"
            )

    def analysis_chain(self):
        """The differentiable analysis chain of this run (with the authors' simplified-compressor
        switch when set)."""
        options = {"authors_time_constant_bug": True} if self.authors_time_constant_bug else {}
        return make(self.analysis, **options)

    @staticmethod
    def same_parameters(synthesis, analysis) -> bool:
        """True when both chains have the same parameters in order (each effect's own names and
        ranges), so q is comparable; chain keys (compressor vs hybrid_compressor) do not matter."""
        key = lambda chain: [(s.name, s.minimum, s.maximum, s.scale) for s in chain.param_specs]  # noqa: E731
        return key(synthesis) == key(analysis)

    def resolved_profile(self) -> Profile:
        """The profile, capped by ``max_steps`` (``$BEAFX_MAX_STEPS`` is read when a config is
        made from the command line, never here: a config's hash does not depend on the shell)."""
        return get_profile(self.profile, max_steps=self.max_steps, env=False)

    @property
    def mee_width(self) -> float:
        return self.resolved_profile().mee_width

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown run config field(s) {sorted(unknown)}")
        return cls(**data)

    def hash(self) -> str:
        """Short hash of the config and the resolved profile's sizes (keys results)."""
        payload = {"config": self.to_dict(), "profile": asdict(self.resolved_profile())}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]

    def name(self) -> str:
        """A readable run name, e.g. ``peq-peq-tfe-mel-cpu-s0``."""
        synth = self.synthesis.replace("+", "_")
        anal = self.analysis.replace("+", "_")
        bug = "-authors" if self.authors_channel_bug else ""
        tc = "-authorstc" if self.authors_time_constant_bug else ""
        return f"{synth}-{anal}{tc}-{self.encoder}{bug}-{self.loss}-{self.profile}-s{self.seed}"


def profile_hash(profile: Profile) -> str:
    """Short hash of a profile's sizes."""
    return hashlib.sha256(json.dumps(asdict(profile), sort_keys=True).encode()).hexdigest()[:12]
