"""The independence adversary: an MMD with a learned kernel, trained against the codec's encoder.

With fixed Gaussian bandwidths at hundreds of dimensions the kernel is nearly flat: a dependence
carried by a few directions of the K·D-dimensional row barely moves the statistic. An
:class:`IndependenceCritic` learns per-codebook feature maps φ_k (the learned kernel is a Gaussian
on ``(φ_1(u_1), ..., φ_K(u_K))``); :class:`IndependenceAdversary` trains it to MAXIMISE the MMD²
between the joint law of the K vectors and the product of their marginals (the loss's own pipeline
and estimator, :func:`.mmd.mmd_independence` with ``feature_map``), while the encoder MINIMISES the
same statistic under the frozen critic. The critic is updated on detached streams with its own
optimizer, once or more per codec step, as AudioCraft's compression solver trains its
discriminators (``AdversarialLoss.train_adv`` then the generator's loss under a read-only adversary).

Stability: the features are bounded (``tanh``) and every linear layer is spectrally normalised
(1-Lipschitz), so the critic cannot blow the statistic up by scaling, and its kernel changes
smoothly with the rows. The statistic under a learned kernel is an estimate on the rows the critic
is trained on; as a test it must be read on held-out rows (see ``tests/test_adversary.py``).
"""

from __future__ import annotations

import typing as tp

import flashy
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from .mmd import MMDIndependence, MMDIndependenceLoss, mmd_independence


def _linear(in_features: int, out_features: int, normalized: bool) -> nn.Module:
    layer = nn.Linear(in_features, out_features)
    return spectral_norm(layer) if normalized else layer


class IndependenceCritic(nn.Module):
    """Per-codebook feature maps ``φ_k: R^D -> [-1, 1]^F``, the learned kernel of the adversary.

    One small MLP per codebook (its marginal may differ from the others'); with fewer active
    codebooks than maps (quantizer dropout) the first K maps are used.

    Args:
        num_codebooks: K, the number of maps.
        dim: D, the dimension of a codebook's vector.
        hidden: Width of the hidden layers.
        features: F, the dimension of a codebook's features.
        spectral: Spectrally normalise the linear layers.
    """

    def __init__(self, num_codebooks: int, dim: int, hidden: int = 128, features: int = 16, spectral: bool = True):
        super().__init__()
        self.maps = nn.ModuleList([
            nn.Sequential(_linear(dim, hidden, spectral), nn.LeakyReLU(0.2),
                          _linear(hidden, hidden, spectral), nn.LeakyReLU(0.2),
                          _linear(hidden, features, spectral), nn.Tanh())
            for _ in range(num_codebooks)])

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """``[N, K, D]`` rows -> ``[N, K, F]`` features."""
        if rows.shape[1] > len(self.maps):
            raise ValueError(f"rows have K = {rows.shape[1]} codebooks, the critic has {len(self.maps)} maps")
        return torch.stack([feature_map(rows[:, k]) for k, feature_map in enumerate(self.maps[:rows.shape[1]])], 1)


class IndependenceAdversary:
    """A critic, its optimizer and the two halves of an adversarial step.

    Args:
        critic: The learned feature maps.
        loss: The independence loss whose options (delays, bandwidths, estimator, standardisation,
            clamp) the adversary's statistic uses; its ``feature_map`` is replaced by ``critic``.
        optimizer: Optimizer of the critic's parameters.
        steps: Critic updates per codec step.
    """

    def __init__(self, critic: IndependenceCritic, loss: MMDIndependenceLoss, optimizer: torch.optim.Optimizer,
                 steps: int = 1):
        self.critic = critic
        options = {**loss.options(), "feature_map": critic}
        self.loss = MMDIndependenceLoss(clamp=loss.clamp, **options)
        self.optimizer = optimizer
        self.steps = steps
        flashy.distrib.broadcast_model(self.critic)

    def train_critic(self, streams: torch.Tensor, generator: tp.Optional[torch.Generator] = None) -> torch.Tensor:
        """``steps`` updates of the critic maximising the (unclamped) MMD² on detached ``streams``
        ``[B, K, D, T]``; returns the statistic before the last update (detached)."""
        loss_fn = self.loss.first_codebooks(streams.shape[1])
        streams = streams.detach()
        self.critic.train()
        for _ in range(self.steps):
            estimate = mmd_independence(streams, clamp=False, generator=generator, **loss_fn.options()).estimate
            self.optimizer.zero_grad()
            with flashy.distrib.eager_sync_model(self.critic):
                (-estimate).backward()
            self.optimizer.step()
        return estimate.detach()

    def __call__(self, streams: torch.Tensor, generator: tp.Optional[torch.Generator] = None) -> MMDIndependence:
        """The statistic under the frozen critic, differentiable w.r.t. ``streams`` only (the
        encoder's loss); ``result.loss`` is clamped if the loss clamps."""
        loss_fn = self.loss.first_codebooks(streams.shape[1])
        self.critic.eval()  # spectral norm: no power iteration outside the critic's own updates
        with flashy.utils.readonly(self.critic):
            loss_fn(streams, generator=generator)
        assert loss_fn.last_result is not None
        return loss_fn.last_result

    def state_dict(self) -> tp.Dict[str, tp.Any]:
        return {"critic": self.critic.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: tp.Mapping[str, tp.Any]) -> None:
        self.critic.load_state_dict(state["critic"])
        self.optimizer.load_state_dict(state["optimizer"])
