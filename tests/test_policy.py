"""P1/P2 sampling distributions, the two-path rescale, sparse momentum, priors and derive."""

from __future__ import annotations

import itertools

import pytest
import torch
from scipy.stats import binomtest, chisquare

from nasib.policy import (
    PolicyConfig,
    Sampler,
    SparseMomentumSGD,
    alpha_step,
    derive,
    priors_to_alphas,
    rescale_,
    two_path_weights,
)

ROWS = 20_000  # layers sharing one row of logits: one batched draw gives ROWS samples
P_MIN = 1e-3  # chi-square p-value threshold; seeds are fixed, so this never flakes


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def repeated(row: list[float], rows: int = ROWS) -> torch.Tensor:
    return torch.tensor(row).repeat(rows, 1)


def first_pick_p(ops: torch.Tensor, probs: torch.Tensor) -> float:
    """Chi-square p-value of the first picks against `probs` (one row)."""
    counts = torch.bincount(ops[:, 0], minlength=probs.numel()).double()
    probs = probs.double() / probs.double().sum()  # float32 softmax sums to 1 only to ~1e-7
    expected = probs * counts.sum()
    return chisquare(counts.numpy(), expected.numpy()).pvalue


def test_p1_first_pick_is_softmax_of_minus_freq() -> None:
    freq = [0.0, 0.5, 1.0, 2.0, 3.0]
    sampler = Sampler(ROWS, 5)
    sampler.freq = repeated(freq)
    draw = sampler.draw(torch.zeros(ROWS, 5), p_explore=1.0, generator=gen(1), count=False)
    assert bool(draw.used_p1.all())
    assert first_pick_p(draw.ops, torch.softmax(-torch.tensor(freq), 0)) > P_MIN
    assert torch.equal(sampler.freq, repeated(freq))  # count=False leaves the counts


@pytest.mark.parametrize("paths", [1, 2])
def test_p2_first_pick_is_softmax_of_alpha_over_lambda(paths: int) -> None:
    row = [0.3, -0.2, 0.1, 0.0, 0.25]
    sampler = Sampler(ROWS, 5, PolicyConfig(lam=0.5, paths=paths))
    draw = sampler.draw(repeated(row), p_explore=0.0, generator=gen(2))
    assert draw.ops.shape == (ROWS, paths) and not bool(draw.used_p1.any())
    assert first_pick_p(draw.ops, torch.softmax(torch.tensor(row) / 0.5, 0)) > P_MIN


def test_pairs_are_sampled_without_replacement() -> None:
    # Ordered pair (a, b) has probability p_a * p_b / (1 - p_a): successive draws without replacement.
    row = [0.8, 0.0, -0.5, 0.4]
    sampler = Sampler(ROWS, 4, PolicyConfig(lam=1.0))
    ops = sampler.draw(repeated(row), p_explore=0.0, generator=gen(3)).ops
    assert bool((ops[:, 0] != ops[:, 1]).all())
    p = torch.softmax(torch.tensor(row, dtype=torch.float64), 0)
    pairs = list(itertools.permutations(range(4), 2))
    observed = [int(((ops[:, 0] == a) & (ops[:, 1] == b)).sum()) for a, b in pairs]
    expected = [float(p[a] * p[b] / (1 - p[a])) * ROWS for a, b in pairs]
    assert chisquare(observed, expected).pvalue > P_MIN


def test_policy_choice_rate_and_conditional_distributions() -> None:
    freq, alphas = [0.0, 4.0, 4.0], [0.0, 0.5, 0.0]
    sampler = Sampler(ROWS, 3, PolicyConfig(lam=0.25, paths=1))
    sampler.freq = repeated(freq)
    draw = sampler.draw(repeated(alphas), p_explore=0.3, generator=gen(4), count=False)
    n_p1 = int(draw.used_p1.sum())
    assert binomtest(n_p1, ROWS, 0.3).pvalue > P_MIN
    p1 = sampler.probs(repeated(alphas), "p1")[0]
    p2 = sampler.probs(repeated(alphas), "p2")[0]
    assert first_pick_p(draw.ops[draw.used_p1], p1) > P_MIN
    assert first_pick_p(draw.ops[~draw.used_p1], p2) > P_MIN


def test_distinct_even_when_probabilities_underflow() -> None:
    sampler = Sampler(64, 6, PolicyConfig(lam=0.01))
    sampler.freq = repeated([0.0, 1e5, 1e5, 1e5, 1e5, 1e5], 64)
    alphas = repeated([50.0, -50.0, -50.0, -50.0, -50.0, -50.0], 64)
    for p in (0.0, 1.0):
        ops = sampler.draw(alphas, p_explore=p, generator=gen(5), count=False).ops
        assert bool((ops[:, 0] == 0).all()) and bool((ops[:, 1] != 0).all())


def test_counting_and_p1_balance() -> None:
    sampler = Sampler(3, 7)
    total = 0
    for i in range(70):
        draw = sampler.draw(torch.zeros(3, 7), p_explore=1.0, generator=gen(i))
        total += 2
        assert sampler.freq.sum(dim=1).tolist() == [float(total)] * 3
    spread = sampler.freq.max(dim=1).values - sampler.freq.min(dim=1).values
    assert bool((spread <= 3).all())  # P1 favours rarely drawn ops, so counts stay level
    before = sampler.freq.clone()
    sampler.draw(torch.zeros(3, 7), p_explore=1.0, generator=gen(0), count=False)
    assert torch.equal(sampler.freq, before)
    assert draw.ops.dtype == torch.long and draw.used_p1.dtype == torch.bool


def test_draws_are_seeded_and_state_round_trips() -> None:
    alphas = torch.randn(4, 9, generator=gen(9))
    a, b = Sampler(4, 9), Sampler(4, 9)
    for i in range(5):
        da = a.draw(alphas, 0.5, generator=gen(i))
        db = b.draw(alphas, 0.5, generator=gen(i))
        assert torch.equal(da.ops, db.ops) and torch.equal(da.used_p1, db.used_p1)
    c = Sampler(4, 9)
    c.load_state_dict(a.state_dict())
    assert torch.equal(c.freq, a.freq)
    with pytest.raises(ValueError, match="shape"):
        Sampler(3, 9).load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="shape"):
        a.draw(torch.zeros(4, 8), 0.5, generator=gen(0))


def test_config_errors() -> None:
    with pytest.raises(ValueError, match="lam"):
        PolicyConfig(lam=0.0)
    with pytest.raises(ValueError, match="k must"):
        PolicyConfig(k=1.0)
    with pytest.raises(ValueError, match="num_ops"):
        Sampler(2, 1)
    with pytest.raises(ValueError, match="unknown policy 'p3'; valid: p1, p2"):
        Sampler(2, 3).probs(torch.zeros(2, 3), "p3")


def test_two_path_weights_are_a_differentiable_pair_softmax() -> None:
    alphas = torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]], requires_grad=True)
    ops = torch.tensor([[0, 2], [1, 0]])
    w = two_path_weights(alphas, ops)
    assert torch.allclose(w[0], torch.softmax(torch.tensor([1.0, 3.0]), 0))
    assert torch.allclose(w.sum(dim=1), torch.ones(2))
    w[:, 0].sum().backward()
    assert alphas.grad[0, 1] == 0 and alphas.grad[1, 2] == 0 and alphas.grad[0, 0] > 0


def test_rescale_keeps_unsampled_probabilities() -> None:
    g = gen(11)
    alphas = torch.randn(12, 9, generator=g)
    ops = torch.stack([torch.randperm(9, generator=g)[:2] for _ in range(12)])
    old = alphas.clone()
    alphas.scatter_(1, ops, alphas.gather(1, ops) + 3.0 * torch.randn(12, 2, generator=g))
    moved_diff = alphas.gather(1, ops).diff(dim=1)
    rescale_(alphas, ops, old)
    unsampled = torch.ones(12, 9, dtype=torch.bool).scatter_(1, ops, False)
    p_old, p_new = torch.softmax(old, 1), torch.softmax(alphas, 1)
    assert torch.allclose(p_new[unsampled], p_old[unsampled], atol=1e-6, rtol=0)
    assert torch.allclose(p_new.gather(1, ops).sum(1), p_old.gather(1, ops).sum(1), atol=1e-6)
    # The pair keeps the gap the step gave it: it moved as the gradient said.
    assert torch.allclose(alphas.gather(1, ops).diff(dim=1), moved_diff, atol=1e-5)


def test_alpha_step_moves_pair_as_gradient_says() -> None:
    alphas = torch.zeros(5, 6, requires_grad=True)
    opt = SparseMomentumSGD(alphas, lr=0.5)
    ops = torch.tensor([[0, 1], [2, 3], [4, 5], [1, 4], [3, 0]])
    loss_of_op = torch.tensor([0.0, 1.0])  # the first sampled op has the lower loss in every layer
    before = torch.softmax(alphas.detach(), 1)
    for _ in range(3):
        opt.zero_grad()
        (two_path_weights(alphas, ops) * loss_of_op).sum().backward()
        alpha_step(opt, ops)
    after = torch.softmax(alphas.detach(), 1)
    first, second = ops[:, :1], ops[:, 1:]
    assert bool((after.gather(1, first) > before.gather(1, first)).all())
    assert bool((after.gather(1, second) < before.gather(1, second)).all())
    unsampled = torch.ones(5, 6, dtype=torch.bool).scatter_(1, ops, False)
    assert torch.allclose(after[unsampled], before[unsampled], atol=1e-6, rtol=0)


def test_sparse_momentum_leaves_unsampled_entries() -> None:
    g = gen(13)
    alphas = torch.randn(4, 6, generator=g).requires_grad_()
    opt = SparseMomentumSGD(alphas, lr=0.1, momentum=0.9)
    buf = torch.zeros(4, 6)
    for _ in range(6):
        ops = torch.stack([torch.randperm(6, generator=g)[:2] for _layer in range(4)])
        opt.zero_grad()
        alphas.grad = torch.randn(4, 6, generator=g)  # dense on purpose: unsampled grads must be ignored
        prev_alpha, prev_buf = alphas.detach().clone(), opt.buf.clone()
        opt.step(ops)
        mask = torch.zeros(4, 6, dtype=torch.bool).scatter_(1, ops, True)
        buf = torch.where(mask, 0.9 * buf + alphas.grad, buf)
        assert torch.equal(alphas.detach()[~mask], prev_alpha[~mask])
        assert torch.equal(opt.buf[~mask], prev_buf[~mask])
        assert torch.allclose(opt.buf, buf)
        assert torch.allclose(alphas.detach()[mask], (prev_alpha - 0.1 * buf)[mask])
    clone = SparseMomentumSGD(alphas.detach().clone().requires_grad_(), lr=0.0)
    clone.load_state_dict(opt.state_dict())
    assert torch.equal(clone.buf, opt.buf) and clone.lr == 0.1


def test_step_needs_gradient() -> None:
    opt = SparseMomentumSGD(torch.zeros(2, 3, requires_grad=True))
    with pytest.raises(RuntimeError, match="backward"):
        opt.step(torch.tensor([[0, 1], [1, 2]]))


NAMES = ["conv3x3", "conv5x5", "sep3x3", "maxpool3x3"]


def test_priors_shift_p2() -> None:
    alphas = priors_to_alphas(NAMES, {"sep3x3": 2.0}, layers=ROWS)
    assert alphas.shape == (ROWS, 4) and bool((alphas[:, 2] == 2.0).all())
    assert alphas[:, [0, 1, 3]].abs().sum() == 0
    ops = Sampler(ROWS, 4, PolicyConfig(lam=1.0, paths=1)).draw(alphas, 0.0, generator=gen(7)).ops[:, 0]
    counts = torch.bincount(ops, minlength=4)
    assert int(counts[2]) > 5 * int(counts[0])  # e^2 = 7.4 times as likely as each other op
    flat = Sampler(ROWS, 4, PolicyConfig(paths=1)).draw(torch.zeros(ROWS, 4), 0.0, generator=gen(7)).ops[:, 0]
    assert int((flat == 2).sum()) < ROWS // 3


def test_unknown_prior_lists_valid_names() -> None:
    message = "unknown op 'conv9x9' in priors; valid: conv3x3, conv5x5, sep3x3, maxpool3x3"
    with pytest.raises(ValueError, match=message):
        priors_to_alphas(NAMES, {"conv9x9": 1.0}, layers=2)
    with pytest.raises(ValueError, match="finite"):
        priors_to_alphas(NAMES, {"conv3x3": float("nan")}, layers=2)


def test_derive_takes_argmax() -> None:
    alphas = torch.tensor([[0.1, 0.9, 0.0, 0.2], [1.0, -1.0, 0.0, 0.5], [0.0, 0.0, 0.0, 3.0]])
    assert derive(alphas, NAMES) == ["conv5x5", "conv3x3", "maxpool3x3"]
    with pytest.raises(ValueError, match="op names"):
        derive(alphas, NAMES[:3])


def test_sparse_adam_moves_only_the_sampled_pair_by_about_lr():
    from nasib.policy import SparseAdam

    alphas = torch.zeros(2, 5, requires_grad=True)
    opt = SparseAdam(alphas, lr=0.1)
    ops = torch.tensor([[0, 3], [1, 2]])
    alphas.grad = torch.full((2, 5), 1e-4)  # tiny gradient: Adam still steps by ~lr, against it
    for col in (0, 3):
        alphas.grad[0, col] = -1e-4 if col == 0 else 1e-4
    opt.step(ops)
    moved = alphas.detach()
    assert moved[0, 0].item() == pytest.approx(0.1, rel=1e-3) and moved[0, 3].item() == pytest.approx(-0.1, rel=1e-3)
    assert moved[0, [1, 2, 4]].abs().sum() == 0 and moved[1, [0, 3, 4]].abs().sum() == 0
    assert opt.t.sum().item() == 4
    state = opt.state_dict()
    again = SparseAdam(torch.zeros(2, 5, requires_grad=True))
    again.load_state_dict(state)
    assert torch.equal(again.v, opt.v) and again.lr == 0.1
