"""The MLP head that maps an embedding to normalised parameters (book chapter 08, "Encoders",
``book/08_encoders``; the authors' ``Controller_Network``).

``[Linear(d, 2048) + BN + PReLU] -> [Linear(2048, 1024) + BN + PReLU] -> [Linear(1024, 512) +
BN + PReLU] -> Linear(512, C) -> sigmoid``; PReLU with one parameter, PyTorch's default init.
"""
from __future__ import annotations

from torch import Tensor, nn

from .layers import SafeBatchNorm1d

HIDDEN: tuple[int, ...] = (2048, 1024, 512)


class MLPHead(nn.Module):
    """Embedding ``(batch, in_features)`` -> ``q_hat`` ``(batch, num_params)`` in (0, 1)."""

    def __init__(self, in_features: int, num_params: int) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("num_params", num_params)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        layers: list[nn.Module] = []
        width = in_features
        for hidden in HIDDEN:
            layers += [nn.Linear(width, hidden), SafeBatchNorm1d(hidden), nn.PReLU()]
            width = hidden
        layers += [nn.Linear(width, num_params), nn.Sigmoid()]
        self.layers = nn.Sequential(*layers)
        self.in_features = in_features
        self.out_features = num_params

    def forward(self, z: Tensor) -> Tensor:
        return self.layers(z)
