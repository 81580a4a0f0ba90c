"""The row bank (``mmd.bank``): its incremental estimate equals ``hsic`` on all rows, values and gradients."""

import pytest
import torch

from audiocraft_mmd import train
from audiocraft_mmd.errors import ConfigError
from audiocraft_mmd.losses import mmd_independence
from audiocraft_mmd.losses.bank import RowBank
from audiocraft_mmd.losses.hsic import hsic_mmd
from audiocraft_mmd.solvers.compression_mmd import validate_mmd_config

from common_utils import TINY_RUN, datasource, mmd_cfg

BANDWIDTHS = [1.5, 6.0, 24.0]


def dependent_rows(n: int, seed: int, num_codebooks: int = 3, dim: int = 4) -> torch.Tensor:
    rows = torch.randn(n, num_codebooks, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    rows[:, 1] += 0.8 * rows[:, 0]
    return rows


@pytest.mark.parametrize("capacity", [1, 3])
def test_bank_estimate_and_gradient_match_hsic_on_all_rows_through_pushes_and_evictions(capacity):
    bank = RowBank(capacity, BANDWIDTHS)
    for step in range(9):  # fills, then evicts; recomputes its sums every `capacity` pushes
        current = dependent_rows(5 + step % 3, seed=step).requires_grad_()
        ours = bank.estimate(current)
        reference = hsic_mmd(torch.cat([*bank.batches, current]), torch.tensor(BANDWIDTHS, dtype=torch.float64))
        assert ours.item() == pytest.approx(reference.item(), rel=1e-10, abs=1e-14)
        (ours_grad,), (reference_grad,) = torch.autograd.grad(ours, current), torch.autograd.grad(reference, current)
        torch.testing.assert_close(ours_grad, reference_grad, rtol=1e-9, atol=1e-14)
        bank.push(current)
        assert len(bank.batches) == min(step + 1, capacity)


def test_bank_state_round_trips_and_empty_bank_is_plain_hsic():
    bank = RowBank(2, BANDWIDTHS)
    current = dependent_rows(6, seed=0)
    assert bank.estimate(current).item() == pytest.approx(
        hsic_mmd(current, torch.tensor(BANDWIDTHS, dtype=torch.float64)).item(), rel=1e-10)
    for seed in (1, 2, 3):
        bank.push(dependent_rows(6, seed))
    restored = RowBank(2)
    restored.load_state_dict(bank.state_dict())
    probe = dependent_rows(4, seed=9)
    assert restored.estimate(probe).item() == pytest.approx(bank.estimate(probe).item(), rel=1e-12)
    with pytest.raises(ValueError, match="cannot join"):
        bank.push(torch.randn(3, 2, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="capacity"):
        RowBank(0)


def test_loss_with_a_bank_counts_its_rows_and_needs_hsic_and_fixed_bandwidths():
    streams = [torch.randn(2, 4, 8, 10, generator=torch.Generator().manual_seed(s)) for s in range(3)]
    bank = RowBank(2)
    rows = [mmd_independence(s, delays=[0, 1, 2, 3], bank=bank).num_rows for s in streams]
    assert rows == [14, 28, 42]  # 2 x (10 - 3) rows per batch, then the bank's
    assert bank.bandwidths == pytest.approx([a * 32 for a in (0.25, 0.5, 1.0, 2.0, 4.0)])  # dim scale, K·D = 32
    with pytest.raises(ValueError, match="'hsic' estimate"):
        mmd_independence(streams[0], estimator="permutation", bank=RowBank(2))
    with pytest.raises(ValueError, match="fixed bandwidths"):
        mmd_independence(streams[0], bandwidth_scale="median", bank=RowBank(2))


@pytest.mark.parametrize("overrides, key", [
    (dict(bank=-2), "mmd.bank"),
    (dict(bank=4, macro_batch=2), "mmd.macro_batch"),
    (dict(bank=4, estimator="permutation"), "mmd.estimator"),
    (dict(bank=4, scope="global"), "mmd.scope"),
    (dict(bank=4, bandwidth_scale="median"), "mmd.bandwidth_scale"),
    (dict(bank=4, adversary={"weight": 1.0}), "mmd.adversary.weight"),
])
def test_bad_bank_config_is_rejected(overrides, key):
    with pytest.raises(ConfigError, match=key):
        validate_mmd_config(mmd_cfg(**overrides))


def test_bank_refuses_quantizer_dropout():
    cfg = mmd_cfg(bank=4)
    cfg.rvq.q_dropout = True
    with pytest.raises(ConfigError, match="rvq.q_dropout"):
        validate_mmd_config(cfg)


def test_solver_trains_with_a_bank_and_checkpoints_it(tiny_egs, tmp_path, monkeypatch):
    monkeypatch.setattr(train.main.dora, "dir", tmp_path)
    xp = train.main.get_xp(["solver=compression/mmd", *TINY_RUN, *datasource(tiny_egs), "mmd.bank=3"])
    with xp.enter():
        solver = train.get_solver(xp.cfg)
        batch = next(iter(solver.dataloaders["train"]))
        seen = []

        def train_steps():
            for index in range(4):
                before = solver.model.encoder.model[0].conv.conv.bias.detach().clone()
                metrics = solver.run_step(index, batch, {})
                seen.append((metrics["mmd_rows"], metrics["mmd_loss"],
                             not torch.equal(before, solver.model.encoder.model[0].conv.conv.bias)))

        solver.run_stage("train", train_steps)
        state = solver.state_dict()
    rows = 4 * (50 - 3)
    assert [row for row, _, _ in seen] == [rows, 2 * rows, 3 * rows, 3 * rows]
    assert all(torch.isfinite(torch.as_tensor(loss)) and changed for _, loss, changed in seen)
    assert [batch.shape[0] for batch in state["row_bank"]["batches"]] == [rows, rows]
