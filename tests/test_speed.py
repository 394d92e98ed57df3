"""The routed ENAS reward/validation pass gives the sequential path's numbers; speed settings parse."""
from __future__ import annotations

import pytest
import torch

from enas_ext.batched import EnasSpeed, RoutedChild, interleave
from enas_ext.presets import configure
from enas_ext.search import EnasSearch, to_lists
from nascore.data import forever
from nasib.timing import synthetic_splits

CPU = torch.device("cpu")
TINY = {"layers": 6, "channels": 8, "batch_size": 16, "eval_batch": 25,
        "controller": {"train_steps": 3, "num_aggregate": 5}, "data": {"valid_size": 100, "train_size": 64}}
CASES = [("original", "intended", "batch"), ("extended", "intended", "batch"),
         ("original", "as-released", "running"), ("extended", "as-released", "batch"),
         ("extended", "intended", "running"), ("original", "as-released", "batch")]


def _searcher(space: str, mode: str, rule: str, batched: bool) -> EnasSearch:
    torch.manual_seed(0)
    cfg = configure("smoke", space, {**TINY, "branch_mode": mode, "bn_eval": rule})
    speed = EnasSpeed(batched_rewards="on" if batched else "off", flat_update="off", eval_chunk=3)
    return EnasSearch(cfg, synthetic_splits(64, 100), CPU, seed=0, speed=speed)


def _trained_pair(space, mode, rule):
    """Two searchers (routed, sequential) after one identical child epoch: BN statistics are non-trivial."""
    pair = [_searcher(space, mode, rule, b) for b in (True, False)]
    for s in pair:
        torch.manual_seed(1)
        s.train_epoch(0.05)
    return pair


@pytest.mark.parametrize(("space", "mode", "rule"), CASES)
def test_routed_rewards_equal_the_sequential_ones_and_the_controller_after_an_epoch(space, mode, rule):
    routed, seq = _trained_pair(space, mode, rule)
    assert routed.routed() is not None and seq.routed() is None
    sample = seq.controller.sample(7, torch.Generator().manual_seed(3))
    with routed.judging(), seq.judging():
        torch.manual_seed(2)  # the reward stream's shuffle
        r = routed.rewards(sample, forever(routed.reward_loader), routed.routed())
        torch.manual_seed(2)
        s = seq.rewards(sample, forever(seq.reward_loader))
    assert torch.equal(r, s), (r, s)
    assert len(set(r.tolist())) > 1  # rewards that differ per child: a mixed-up child would show
    for a in (routed, seq):
        torch.manual_seed(3)
        a.controller_epoch()
    for (name, p), q in zip(routed.controller.state_dict().items(), seq.controller.state_dict().values(),
                            strict=True):
        assert torch.equal(p, q), name  # bitwise on the CPU
    assert torch.equal(routed.trainer.baseline, seq.trainer.baseline)
    assert routed.evaluate().item() == seq.evaluate().item()


def test_routed_pass_leaves_the_bn_buffers_and_the_child_unchanged():
    routed, _ = _trained_pair("original", "intended", "batch")
    before = {k: v.clone() for k, v in routed.child.state_dict().items()}
    with routed.judging():
        routed.rewards(routed.controller.sample(4), forever(routed.reward_loader), routed.routed())
    assert all(torch.equal(before[k], v) for k, v in routed.child.state_dict().items())


def test_each_child_sees_only_its_own_images():
    # The routed logits of child c equal the child's own forward on its own batch (batch-stat BN):
    # a BN view that mixed children, or a gather by the wrong index, changes them.
    routed, _ = _trained_pair("extended", "intended", "batch")
    archs = to_lists(routed.controller.sample(4, torch.Generator().manual_seed(5)))
    stream = forever(routed.reward_loader)
    batches = [next(stream) for _ in archs]
    with routed.judging():
        got = RoutedChild(routed.child, "batch").logits(interleave(batches)[0], archs).view(16, 4, -1)
        for c, ((x, _), (ops, skips)) in enumerate(zip(batches, archs, strict=True)):
            torch.testing.assert_close(got[:, c], routed.child(x, ops, skips), rtol=1e-5, atol=1e-5)


def test_recalibrate_and_planted_spaces_stay_sequential_unless_asked():
    auto = EnasSpeed()
    assert not auto.batched(CPU, "batch", ("conv3x3", "identity"))  # CPU: sequential is faster at small sizes
    cuda = torch.device("cuda")
    assert auto.batched(cuda, "batch", ("conv3x3", "identity"))
    assert not auto.batched(cuda, "recalibrate", ("conv3x3", "identity"))
    assert not auto.batched(cuda, "batch", ("conv3x3", "lossy@conv3x3"))
    assert EnasSpeed(batched_rewards="on").batched(CPU, "running", ("conv3x3",))
    assert not EnasSpeed(batched_rewards="on").batched(CPU, "recalibrate", ("conv3x3",))
    with pytest.raises(ValueError, match="recalibrate"):
        RoutedChild(_searcher("original", "intended", "batch", True).child, "recalibrate")


def test_speed_settings_come_from_the_environment_with_one_line_errors(monkeypatch):
    monkeypatch.setenv("NASIB_ENAS_SPEED", "batched_rewards=on, flat_update=off,eval_chunk=7")
    assert EnasSpeed.from_env() == EnasSpeed("on", "off", 7)
    monkeypatch.setenv("NASIB_ENAS_SPEED", "batched=on")
    with pytest.raises(ValueError, match="unknown setting 'batched'"):
        EnasSpeed.from_env()
    monkeypatch.setenv("NASIB_ENAS_SPEED", "flat_update=yes")
    with pytest.raises(ValueError, match="flat_update='yes'"):
        EnasSpeed.from_env()


def _nasib(seed: int = 0):
    from nasib.presets import apply_overrides, preset
    from nasib.search import NasibSearch

    cfg = apply_overrides(preset("smoke", "narrow"), {"layers": 4, "channels": 4, "batch_size": 16, "epochs": 1,
                                                      "data": {"valid_size": 64, "train_size": 64}})
    torch.manual_seed(seed)
    return NasibSearch(cfg, synthetic_splits(64, 64), CPU, seed=seed)


def test_nasib_pair_is_drawn_with_one_host_copy_and_the_same_draws(monkeypatch):
    ahead, later = _nasib(), _nasib()
    (x, y), (xv, yv) = next(iter(ahead.train_loader)), next(iter(ahead.valid_loader))
    copies = []
    real = torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, "tolist", lambda t: copies.append(1) or real(t))
    for s, together in ((ahead, True), (later, False)):
        copies.clear()
        for p in (1.0, 0.5, 0.0, 0.3):  # P1 (counts) and P2 (alphas) draws both
            s._weight_step(x, y, p, then_alpha=together)
            s.strategy.alpha_step(s.model, xv, yv, p, s.generator)
        assert len(copies) == (4 if together else 8)
    a, b = ahead.strategy, later.strategy
    assert torch.equal(a.alphas, b.alphas) and torch.equal(a.sampler.freq, b.sampler.freq)
    assert torch.equal(ahead.generator.get_state(), later.generator.get_state())
    assert all(torch.equal(p, q) for p, q in zip(ahead.params, later.params, strict=True))
    ahead._weight_step(x, y, 1.0, then_alpha=True)
    ahead.strategy.load_state_dict(later.strategy.state_dict())  # a resumed state drops a draw taken ahead
    assert ahead.strategy._ahead is None


def test_the_nasib_search_module_imports_dynamo_before_any_budget_clock():
    # The first optimiser construction imports torch._dynamo (seconds on a CPU); importing
    # nasib.search (before search_trial starts the clock) must already have paid for it.
    import subprocess
    import sys

    code = "import sys, nasib.search; assert 'torch._dynamo' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=__file__.rsplit("/tests/", 1)[0])
