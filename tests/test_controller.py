"""Tests for the ENAS macro controller: probabilities, formulas, shapes, and a learning sanity check."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F

from enas_ext.controller import (
    Controller,
    ControllerConfig,
    ControllerSample,
    ControllerTrainer,
    skip_kl_penalty,
    update_baseline,
)


def _controller(seed: int = 0, **overrides: object) -> Controller:
    """A small controller with seeded weights."""
    torch.manual_seed(seed)
    return Controller(ControllerConfig(**{"num_layers": 5, "num_ops": 4, "lstm_size": 16, **overrides}))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_sample_shapes_and_strict_lower_triangular_skips() -> None:
    ctrl = _controller()
    s = ctrl.sample(7, _gen(1))
    L = ctrl.config.num_layers
    assert s.ops.shape == (7, L) and s.ops.dtype == torch.long
    assert s.skips.shape == (7, L, L) and s.skips.dtype == torch.bool
    assert not torch.triu(s.skips).any()
    assert int(s.ops.min()) >= 0 and int(s.ops.max()) < ctrl.config.num_ops
    for t in (s.log_prob, s.entropy, s.skip_penalty, s.skip_count):
        assert t.shape == (7,)
    assert torch.equal(s.skip_count, s.skips.sum((1, 2)))
    assert s.log_prob.requires_grad and not s.entropy.requires_grad
    assert (s.log_prob < 0).all() and (s.entropy > 0).all()


def test_sampling_reproducible_with_same_seed() -> None:
    ctrl = _controller()
    a, b, c = ctrl.sample(16, _gen(3)), ctrl.sample(16, _gen(3)), ctrl.sample(16, _gen(4))
    assert torch.equal(a.ops, b.ops) and torch.equal(a.skips, b.skips)
    assert torch.allclose(a.log_prob, b.log_prob)
    assert not (torch.equal(a.ops, c.ops) and torch.equal(a.skips, c.skips))


def test_batch_rows_are_independent_samples() -> None:
    """A batch of 64 from a near-uniform policy should not repeat one architecture."""
    s = _controller().sample(64, _gen(5))
    rows = {tuple(s.ops[i].tolist()) + tuple(s.skips[i].flatten().tolist()) for i in range(64)}
    assert len(rows) > 60


def test_teacher_forced_log_prob_matches_sample() -> None:
    ctrl = _controller()
    s = ctrl.sample(9, _gen(2))
    forced = ctrl.evaluate(s.ops, s.skips)
    assert torch.allclose(forced.log_prob, s.log_prob, atol=1e-6)
    assert torch.allclose(forced.entropy, s.entropy, atol=1e-6)
    assert torch.allclose(forced.skip_penalty, s.skip_penalty, atol=1e-6)
    assert torch.allclose(ctrl.log_prob(s.ops, s.skips), s.log_prob, atol=1e-6)


def _replay(ctrl: Controller, ops: list[int], skips: list[list[int]]) -> list[tuple[torch.Tensor, int]]:
    """Replay one architecture with plain tensors: (log-prob vector, chosen index) per decision."""
    c, cfg = ctrl, ctrl.config
    h = torch.zeros(1, cfg.lstm_size)
    state = (h, h.clone())
    x = c.g_emb
    anchors: list[torch.Tensor] = []
    out: list[tuple[torch.Tensor, int]] = []
    for k in range(cfg.num_layers):
        state = c.lstm(x, state)
        logits = cfg.tanh_constant * torch.tanh(state[0] @ c.op_head.weight.T)
        out.append((F.log_softmax(logits, -1)[0], ops[k]))
        state = c.lstm(c.op_emb.weight[ops[k]][None], state)
        x = c.g_emb
        if k > 0:
            chosen = torch.zeros(1, cfg.lstm_size)
            for j, a in enumerate(anchors):
                pre = c.attn_anchor.weight @ a[0] + c.attn_query.weight @ state[0][0]
                q = c.attn_v.weight @ torch.tanh(pre)
                q = cfg.tanh_constant * torch.tanh(q)
                out.append((F.log_softmax(torch.cat([-q, q]), 0), skips[k][j]))
                chosen = chosen + skips[k][j] * a
            x = chosen / (1 + sum(skips[k]))
        anchors.append(state[0])
    return out


def _rows(skips: torch.Tensor) -> list[list[int]]:
    return [skips[k, :k].long().tolist() for k in range(skips.shape[0])]


@torch.no_grad()
def test_log_prob_is_sum_of_independent_decisions() -> None:
    ctrl = _controller(num_layers=4)
    s = ctrl.sample(3, _gen(7))
    L = ctrl.config.num_layers
    for b in range(3):
        per_decision = [float(vec[i]) for vec, i in _replay(ctrl, s.ops[b].tolist(), _rows(s.skips[b]))]
        assert len(per_decision) == L + L * (L - 1) // 2
        assert math.isclose(sum(per_decision), float(s.log_prob[b]), abs_tol=1e-5)
        expected_entropy = sum(-lp * math.exp(lp) for lp in per_decision)
        assert math.isclose(expected_entropy, float(s.entropy[b]), abs_tol=1e-5)


@torch.no_grad()
def test_greedy_takes_argmax_everywhere() -> None:
    torch.manual_seed(0)
    # Wider init than U(-0.1, 0.1) so greedy decisions are not all near-ties.
    ctrl = _controller()
    for p in ctrl.parameters():
        p.uniform_(-1.0, 1.0)
    ops, skips = ctrl.greedy()
    L = ctrl.config.num_layers
    assert len(ops) == L and [len(r) for r in skips] == list(range(L))
    steps = _replay(ctrl, ops, skips)
    assert all(i == int(vec.argmax()) for vec, i in steps)
    ops_t = torch.tensor([ops])
    skips_t = torch.zeros(1, L, L, dtype=torch.bool)
    for k, row in enumerate(skips):
        skips_t[0, k, :k] = torch.tensor(row, dtype=torch.bool)
    total = sum(float(v[i]) for v, i in steps)
    assert math.isclose(float(ctrl.log_prob(ops_t, skips_t)), total, abs_tol=1e-5)


def test_baseline_formula_by_hand() -> None:
    b0, d = 0.5, 0.9
    rewards = torch.tensor([1.0, 0.0, 2.0])
    b1 = b0 - (1 - d) * (b0 - 1.0)  # 0.55
    b2 = b1 - (1 - d) * (b1 - 0.0)  # 0.495
    b3 = b2 - (1 - d) * (b2 - 2.0)  # 0.6455
    new_b, per = update_baseline(torch.tensor(b0), rewards, d)
    assert torch.allclose(per, torch.tensor([b1, b2, b3]), atol=1e-6)
    assert math.isclose(float(new_b), 0.6455, abs_tol=1e-6)
    zero_decay_b, zero_per = update_baseline(torch.tensor(b0), rewards, 0.0)
    assert torch.allclose(zero_per, rewards) and float(zero_decay_b) == 2.0


def test_skip_penalty_matches_hand_kl() -> None:
    logits = torch.tensor([0.0, 1.0, -2.0])
    got = skip_kl_penalty(logits, 0.4)
    for q, kl in zip(logits.tolist(), got.tolist(), strict=True):
        p = 1 / (1 + math.exp(-q))
        hand = p * math.log(p / 0.4) + (1 - p) * math.log((1 - p) / 0.6)
        assert math.isclose(kl, hand, rel_tol=1e-5, abs_tol=1e-7)
    # At q = 0 the penalty is KL([.5, .5] || [.6, .4]).
    assert math.isclose(float(got[0]), 0.5 * math.log(0.5 / 0.4) + 0.5 * math.log(0.5 / 0.6), rel_tol=1e-5)


@torch.no_grad()
def test_sample_skip_penalty_is_mean_over_skip_layers() -> None:
    ctrl = _controller(num_layers=3)
    s = ctrl.sample(1, _gen(0))
    # Recompute the on-logits q' for layers 1 and 2 and average their per-layer KL sums over L-1 = 2.
    per_layer = []
    ops = s.ops[0].tolist()
    cfg = ctrl.config
    state, x, anchors = None, ctrl.g_emb, []
    for k in range(3):
        state = ctrl.lstm(x, state)
        state = ctrl.lstm(ctrl.op_emb.weight[ops[k]][None], state)
        x = ctrl.g_emb
        if k > 0:
            a = torch.cat(anchors)
            q = ctrl.attn_v(torch.tanh(ctrl.attn_anchor(a) + ctrl.attn_query(state[0]))).squeeze(-1)
            per_layer.append(float(skip_kl_penalty(cfg.tanh_constant * torch.tanh(q), 0.4).sum()))
            bits = s.skips[0, k, :k].float()
            x = (bits @ a)[None] / (1 + bits.sum())
        anchors.append(state[0])
    assert math.isclose(float(s.skip_penalty[0]), sum(per_layer) / 2, rel_tol=1e-5)


def test_entropy_is_added_to_reward() -> None:
    ctrl = _controller(num_aggregate=4, entropy_weight=10.0, baseline_decay=0.5)
    gen = _gen(11)
    trainer = ControllerTrainer(ctrl, generator=gen)
    expected = ctrl.sample(4, _gen(11))  # same draws as the trainer's first update
    stats = trainer.update(lambda s: torch.zeros(s.batch))
    rewards = 10.0 * expected.entropy
    b = 0.0
    for r in rewards.tolist():
        b = b - 0.5 * (b - r)
    assert math.isclose(float(stats["baseline"]), b, rel_tol=1e-5)
    assert math.isclose(float(stats["reward"]), float(rewards.mean()), rel_tol=1e-5)


def test_update_returns_detached_tensors_and_rejects_bad_rewards() -> None:
    trainer = ControllerTrainer(_controller(num_aggregate=3), generator=_gen(0))
    stats = trainer.update(lambda s: torch.ones(s.batch))
    assert set(stats) == {"reward", "baseline", "entropy", "skip_rate", "loss"}
    assert all(isinstance(v, torch.Tensor) and not v.requires_grad for v in stats.values())
    assert 0.0 <= float(stats["skip_rate"]) <= 1.0
    with pytest.raises(ValueError, match="reward_fn"):
        trainer.update(lambda s: torch.ones(s.batch + 1))


def test_checkpoint_resume_is_exact() -> None:
    def reward(s: ControllerSample) -> torch.Tensor:
        return (s.ops == 1).float().mean(1)

    a = ControllerTrainer(_controller(num_aggregate=5), generator=_gen(9))
    for _ in range(2):
        a.update(reward)
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)  # the round trip a search checkpoint takes
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    with pytest.raises(ValueError, match="no generator"):
        ControllerTrainer(_controller(num_aggregate=5)).load_state_dict(state)
    b = ControllerTrainer(_controller(seed=123, num_aggregate=5), generator=_gen(0))
    b.load_state_dict(state)
    for _ in range(2):
        sa, sb = a.update(reward), b.update(reward)
        for key in sa:
            assert torch.equal(sa[key], sb[key]), key
    for pa, pb in zip(a.controller.parameters(), b.controller.parameters(), strict=True):
        assert torch.equal(pa, pb)


def _op_two_frequency(ctrl: Controller) -> float:
    with torch.no_grad():
        return float((ctrl.sample(512, _gen(1)).ops == 2).float().mean())


def test_learning_raises_probability_of_rewarded_op() -> None:
    torch.manual_seed(0)
    # A larger lr than the reference's 1e-3 so a handful of updates shows the effect (TensorFlow's
    # Adam epsilon convention damps the first steps, as in the reference).
    cfg = ControllerConfig(num_layers=3, num_ops=4, lstm_size=16, num_aggregate=16, lr=0.05)
    ctrl = Controller(cfg)
    trainer = ControllerTrainer(ctrl, generator=_gen(0))
    before = _op_two_frequency(ctrl)
    for _ in range(30):
        trainer.update(lambda s: (s.ops == 2).float().mean(1))
    after = _op_two_frequency(ctrl)
    assert before < 0.35  # near-uniform start: about 1/4
    assert after > 0.6
    assert ctrl.greedy()[0] == [2, 2, 2]


@pytest.mark.parametrize(
    ("field", "value"),
    [("num_ops", 1), ("skip_target", 1.0), ("baseline_decay", 1.0), ("num_layers", 0), ("lr", 0.0)],
)
def test_config_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        ControllerConfig(**{field: value})


def test_config_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown controller option.*lstm_units.*valid:"):
        ControllerConfig.from_dict({"lstm_units": 32})
    assert ControllerConfig.from_dict({"num_ops": 18}).num_ops == 18


def test_log_prob_rejects_bad_architectures() -> None:
    ctrl = _controller()
    L = ctrl.config.num_layers
    ok_skips = torch.zeros(1, L, L, dtype=torch.bool)
    with pytest.raises(ValueError, match="ops must lie"):
        ctrl.log_prob(torch.full((1, L), 99), ok_skips)
    upper = ok_skips.clone()
    upper[0, 1, 3] = True
    with pytest.raises(ValueError, match="lower-triangular"):
        ctrl.log_prob(torch.zeros(1, L, dtype=torch.long), upper)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_with_cpu_generator() -> None:
    ctrl = _controller()
    cpu = ctrl.sample(8, _gen(3))
    gpu = ctrl.to("cuda").sample(8, _gen(3))
    assert gpu.ops.is_cuda
    assert torch.equal(cpu.ops, gpu.ops.cpu()) and torch.equal(cpu.skips, gpu.skips.cpu())
    assert torch.allclose(cpu.log_prob, gpu.log_prob.cpu(), atol=1e-5)
    trainer = ControllerTrainer(ctrl, generator=_gen(0))
    stats = trainer.update(lambda s: (s.ops == 0).float().mean(1))
    assert stats["baseline"].is_cuda
