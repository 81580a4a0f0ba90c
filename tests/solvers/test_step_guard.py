"""Non-finite training steps change nothing (weights, codebooks, optimizer, balancer) and are counted."""

import flashy
import pytest
import torch
from torch import nn

from audiocraft_mmd.solvers.rng_state import GeneratorState, GlobalRNGState
from audiocraft_mmd.solvers.step_guard import NonFiniteStepGuard, StatefulAverager


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 3)
        self.norm = nn.BatchNorm1d(3)  # running statistics: buffers updated by the forward pass

    def forward(self, x):
        return self.norm(self.linear(x))


def snapshot(module: nn.Module):
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def assert_same(before, after):
    assert before.keys() == after.keys()
    for name in before:
        assert torch.equal(before[name], after[name]), name


def guarded_step(net, optimizer, guard, x):
    with guard.step():
        optimizer.zero_grad()
        net(x).pow(2).mean().backward()
        optimizer.step()


def test_a_nan_step_is_a_no_op_and_a_finite_one_is_not():
    torch.manual_seed(0)
    net = TinyNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.1)
    averager = StatefulAverager(0.9)
    guard = NonFiniteStepGuard(net, [optimizer], states=[averager])
    averager({"norm": 1.0})
    before, averaged = snapshot(net), averager.state_dict()

    x = torch.randn(8, 3)
    x[2, 1] = float("nan")
    with guard.step():
        averager({"norm": float("nan")})
        optimizer.zero_grad()
        net(x).pow(2).mean().backward()
        optimizer.step()
    assert guard.skipped and guard.num_skipped == 1
    assert_same(before, snapshot(net))  # parameters and BatchNorm buffers
    assert optimizer.state_dict()["state"] == {}  # Adam saw no step
    assert averager.state_dict() == averaged

    guarded_step(net, optimizer, guard, torch.randn(8, 3))
    assert not guard.skipped and guard.num_skipped == 1
    after = snapshot(net)
    assert not torch.equal(before["linear.weight"], after["linear.weight"])
    assert not torch.equal(before["norm.running_mean"], after["norm.running_mean"])
    assert all(torch.isfinite(value).all() for value in after.values())


def test_an_infinite_gradient_is_dropped_too():
    net = TinyNet()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    guard = NonFiniteStepGuard(net, [optimizer])
    before = snapshot(net)
    with guard.step():
        optimizer.zero_grad()
        (net(torch.randn(4, 3)).sum() * float("inf")).backward()
        optimizer.step()
    assert guard.skipped
    assert_same(before, snapshot(net))


def test_stateful_averager_matches_flashy_and_round_trips():
    ours, theirs = StatefulAverager(0.7), flashy.averager(0.7)
    for step in range(5):
        metrics = {"a": float(step), "b": step ** 2 / 3}
        assert ours(metrics) == pytest.approx(theirs(metrics))
    copy = StatefulAverager(0.7)
    copy.load_state_dict(ours.state_dict())
    assert copy({"a": 1.0}) == ours({"a": 1.0})


def test_global_rng_state_round_trips():
    import random
    state = GlobalRNGState().state_dict()
    first = (torch.rand(3), random.random())
    GlobalRNGState().load_state_dict(state)
    assert torch.equal(torch.rand(3), first[0]) and random.random() == first[1]


def test_generator_state_round_trips():
    generator = torch.Generator().manual_seed(3)
    state = GeneratorState(generator).state_dict()
    first = torch.rand(4, generator=generator)
    GeneratorState(generator).load_state_dict(state)
    assert torch.equal(torch.rand(4, generator=generator), first)


def test_solver_drops_a_nan_batch_and_keeps_training(tiny_solver):
    batch = next(iter(tiny_solver.dataloaders["train"]))
    poisoned = batch.clone()
    poisoned[0, 0, 100] = float("nan")
    seen = {}

    def train_steps():
        tiny_solver.run_step(0, batch, {})  # k-means init of the codebooks, one update
        seen["before"], seen["balancer"] = snapshot(tiny_solver.model), tiny_solver.balancer.averager.state_dict()
        seen["poisoned"] = tiny_solver.run_step(1, poisoned, {})
        seen["after_poisoned"] = snapshot(tiny_solver.model)
        seen["balancer_after"] = tiny_solver.balancer.averager.state_dict()
        seen["finite"] = tiny_solver.run_step(2, batch, {})
        seen["after"] = snapshot(tiny_solver.model)

    tiny_solver.run_stage("train", train_steps)
    assert seen["poisoned"]["nonfinite_step"] == 1.0
    assert_same(seen["before"], seen["after_poisoned"])  # weights and EMA codebooks
    assert seen["balancer_after"] == seen["balancer"]
    assert seen["finite"]["nonfinite_step"] == 0.0
    assert torch.isfinite(torch.as_tensor(seen["finite"]["g_loss"]))
    assert all(torch.isfinite(value.float()).all() for value in seen["after"].values())
    name = "encoder.model.0.conv.conv.bias"
    assert not torch.equal(seen["before"][name], seen["after"][name])


def test_checkpoint_state_holds_the_balancer_and_the_loss_rng(tiny_solver):
    state = tiny_solver.state_dict()
    assert {"balancer.averager", "mmd_rng_state", "global_rng_state"} <= set(state)
    torch.rand(3, generator=tiny_solver.mmd_rng)
    tiny_solver.load_state_dict(state)
    assert torch.equal(tiny_solver.mmd_rng.get_state(), state["mmd_rng_state"]["state"])
