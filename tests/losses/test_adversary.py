"""The independence adversary: a learned kernel separates dependent from independent streams where
the flat fixed kernel at 512 dimensions barely does; in the solver it trains, logs and checkpoints."""

import copy

import pytest
import torch

from audiocraft_mmd import train
from audiocraft_mmd.errors import ConfigError
from audiocraft_mmd.losses import MMDIndependenceLoss, mmd_independence
from audiocraft_mmd.losses.adversary import IndependenceAdversary, IndependenceCritic

K, D, N = 4, 128, 256  # 4 codebooks x 128 = 512 dimensions


def draw(dependent: bool, generator: torch.Generator, coords: int = 4, rho: float = 0.3) -> torch.Tensor:
    """Streams ``[1, K, D, N]``: Gaussian rows; when dependent, the first ``coords`` features of every
    codebook share a common factor (correlation ``rho`` between codebooks), the other 124 are noise."""
    rows = torch.randn(N, K, D, generator=generator)
    if dependent:
        common = torch.randn(N, 1, coords, generator=generator)
        rows[:, :, :coords] = rho ** 0.5 * common + (1 - rho) ** 0.5 * rows[:, :, :coords]
    return rows.permute(1, 2, 0).unsqueeze(0)


def separation(statistic, generator, draws: int = 30):
    """Standardised gap (mean under dependence - mean under independence) / std under independence,
    and the power of the level-5 % test whose threshold is the independent draws' 95 % quantile."""
    with torch.no_grad():
        dependent = torch.tensor([statistic(draw(True, generator)) for _ in range(draws)])
        independent = torch.tensor([statistic(draw(False, generator)) for _ in range(draws)])
    gap = (dependent.mean() - independent.mean()) / independent.std()
    power = (dependent > independent.quantile(0.95)).float().mean()
    return gap.item(), power.item()


def test_learned_kernel_separates_better_than_the_fixed_kernel():
    torch.manual_seed(0)
    critic = IndependenceCritic(K, D, hidden=64, features=8)
    adversary = IndependenceAdversary(critic, MMDIndependenceLoss(clamp=False),
                                      torch.optim.Adam(critic.parameters(), lr=3e-3, betas=(0.5, 0.9)))
    training = torch.Generator().manual_seed(1)
    for _ in range(300):  # the critic sees dependent streams only, fresh each step
        adversary.train_critic(draw(True, training))

    held_out = torch.Generator().manual_seed(2)  # evaluated on rows it never saw
    fixed_gap, fixed_power = separation(lambda s: mmd_independence(s, clamp=False).estimate.item(), held_out)
    learned_gap, learned_power = separation(lambda s: adversary(s).estimate.item(), held_out)
    print(f"fixed kernel: gap {fixed_gap:.2f}, power {fixed_power:.2f}; "
          f"learned: gap {learned_gap:.2f}, power {learned_power:.2f}")
    assert fixed_power < 0.8  # the flat kernel misses the dependence often
    assert learned_gap > 3 * max(fixed_gap, 1.0)
    assert learned_power >= 0.9


def test_critic_is_bounded_and_lipschitz():
    torch.manual_seed(0)
    critic = IndependenceCritic(3, 16, hidden=32, features=4).eval()
    rows = 100 * torch.randn(50, 3, 16)
    features = critic(rows)
    assert features.shape == (50, 3, 4) and features.abs().max() <= 1
    linears = [layer for feature_map in critic.maps for layer in feature_map if isinstance(layer, torch.nn.Linear)]
    assert len(linears) == 3 * 3  # three layers in each codebook's map
    for layer in linears:
        assert torch.linalg.matrix_norm(layer.weight.detach(), ord=2).item() == pytest.approx(1.0, rel=0.05)
    with pytest.raises(ValueError, match="K = 4 codebooks, the critic has 3 maps"):
        critic(torch.randn(5, 4, 16))


def test_encoder_loss_leaves_the_critic_untouched():
    critic = IndependenceCritic(2, 8, hidden=16, features=4)
    adversary = IndependenceAdversary(critic, MMDIndependenceLoss(clamp=False),
                                      torch.optim.Adam(critic.parameters(), lr=1e-3))
    streams = torch.randn(2, 2, 8, 30, requires_grad=True)
    adversary(streams).loss.backward()
    assert streams.grad is not None and streams.grad.abs().sum() > 0
    assert all(p.grad is None for p in critic.parameters())
    before = [p.detach().clone() for p in critic.parameters()]
    adversary.train_critic(streams)
    assert streams.grad is not None and any(not torch.equal(b, p) for b, p in zip(before, critic.parameters()))


def test_solver_trains_with_the_adversary_and_checkpoints_it(make_tiny_solver):
    solver = make_tiny_solver("mmd.adversary.weight=1")
    assert solver.mmd_adversary is not None
    batch = next(iter(solver.dataloaders["train"]))
    critic_before = {k: v.clone() for k, v in solver.mmd_adversary.critic.state_dict().items()}
    steps = []

    def run():
        for idx in range(3):
            steps.append(solver.run_step(idx, batch, {}))

    solver.run_stage("train", run)
    for metrics in steps:
        for key in ["mmd", "mmd_adv", "mmd_adv_critic", "mmd_loss", "mmd_grad_ratio", "g_loss"]:
            assert torch.isfinite(torch.as_tensor(metrics[key])), key
        assert metrics["nonfinite_step"] == 0.0
    critic_after = solver.mmd_adversary.critic.state_dict()
    assert any(not torch.equal(critic_before[k], critic_after[k]) for k in critic_before)

    state = copy.deepcopy(solver.state_dict())  # state dicts hold the live tensors
    assert set(state["mmd_adversary"]) == {"critic", "optimizer"}
    assert state["mmd_adversary"]["optimizer"]["state"]  # Adam moments after the updates
    saved = {k: v.clone() for k, v in critic_after.items()}
    with torch.no_grad():
        for p in solver.mmd_adversary.critic.parameters():
            p.add_(1.0)
    solver.load_state_dict(state)
    for k, v in solver.mmd_adversary.critic.state_dict().items():
        assert torch.equal(v, saved[k]), k

    valid = []
    solver.run_stage("valid", lambda: valid.append(solver.run_step(0, batch, {})))
    assert "mmd_adv" in valid[0] and "mmd_adv_critic" not in valid[0]  # measured, not trained, in valid


@pytest.mark.parametrize("overrides, key", [
    (dict(weight=-1.0), "mmd.adversary.weight"),
    (dict(weight=1.0, hidden=0), "mmd.adversary.hidden"),
    (dict(weight=1.0, features=2.5), "mmd.adversary.features"),
    (dict(weight=1.0, lr=0), "mmd.adversary.lr"),
    (dict(weight=1.0, betas=[0.5]), "mmd.adversary.betas"),
    (dict(weight=1.0, steps=0), "mmd.adversary.steps"),
])
def test_bad_adversary_config_is_rejected(overrides, key):
    from audiocraft_mmd.solvers.compression_mmd import validate_mmd_config
    cfg = train.main.get_xp(["solver=compression/mmd"]).cfg
    cfg.mmd.adversary.update(overrides)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_mmd_config(cfg)
