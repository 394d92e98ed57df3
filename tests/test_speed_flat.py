"""The flat child update: a kernel count independent of the tensor count, the old update's numbers, resume."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from benchmarks.rewards_bench import kernel_ops
from enas_ext.batched import EnasSpeed
from enas_ext.presets import configure
from enas_ext.search import EnasSearch
from nascore.flat import ChoiceParams, FlatSGD, step_on
from nasib.search import choice_params
from nasib.supernet import Supernet
from nasib.timing import synthetic_splits

CPU = torch.device("cpu")
TINY = {"layers": 6, "channels": 8, "batch_size": 16, "data": {"valid_size": 50, "train_size": 320}}


def _searcher(space: str, flat: bool, **over) -> EnasSearch:
    torch.manual_seed(0)
    cfg = configure("smoke", space, {**TINY, **over})
    return EnasSearch(cfg, synthetic_splits(320, 50), CPU, seed=0,
                      speed=EnasSpeed(batched_rewards="off", flat_update="on" if flat else "off"))


def update_ops(search: EnasSearch) -> int:
    """CPU ops (each a kernel launch on a GPU) of one child update after the backward."""
    x, y = next(iter(search.train_loader))
    ops = [0] * search.cfg.layers
    skips = [[1] * k for k in range(search.cfg.layers)]
    for _ in range(2):  # the second update is the steady state (the first starts the momentum)
        F.cross_entropy(search.child(x, ops, skips), y).backward()
        search.update_child()
    F.cross_entropy(search.child(x, ops, skips), y).backward()
    return kernel_ops(search.update_child)


def test_flat_update_launches_the_same_kernels_for_6_and_18_ops():
    small, big = _searcher("original", True), _searcher("extended", True)
    assert len(big.params) > 2.5 * len(small.params)  # 6 vs 18 ops per layer: about 3x the tensors
    assert update_ops(small) == update_ops(big)


def test_the_per_tensor_update_grows_with_the_tensor_count():
    # What the flat buffers remove: the list path's work grows with the space (a regression guard
    # for the comparison above, which would pass vacuously if both counts were tiny constants).
    assert update_ops(_searcher("extended", False)) > 2 * update_ops(_searcher("original", False))


def _train(search: EnasSearch, steps: int, lr: float = 0.05) -> None:
    search.opt.lr = lr
    if not isinstance(search.opt, FlatSGD):
        for g in search.opt.param_groups:
            g["lr"] = lr
    torch.manual_seed(7)
    stream = iter(search.train_loader)
    g = torch.Generator().manual_seed(3)
    for _ in range(steps):
        x, y = next(stream)
        ops = torch.randint(len(search.space.ops), (search.cfg.layers,), generator=g).tolist()
        skips = [torch.randint(2, (k,), generator=g).tolist() for k in range(search.cfg.layers)]
        search.train_step(x, y, ops, skips)


def test_flat_update_matches_the_per_tensor_update_over_20_steps():
    # Clip at 0.05 so it binds on most tensors (at the default 5 it rarely does at this size).
    flat, old = _searcher("extended", True, grad_clip=0.05), _searcher("extended", False, grad_clip=0.05)
    _train(flat, 20)
    _train(old, 20)
    for (name, p), q in zip(flat.child.named_parameters(), old.child.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
    moved = sum((p - q).abs().sum() for p, q in zip(flat.child.parameters(), _searcher("extended", True).params,
                                                      strict=True))
    assert moved > 0


def test_flat_checkpoints_load_both_ways_and_resume_exactly():
    flat, old = _searcher("original", True), _searcher("original", False)
    _train(flat, 3)
    _train(old, 3)
    saved = copy.deepcopy(flat.state_dict())
    assert set(saved["child_opt"]["state"][0]) == {"momentum_buffer"}  # torch SGD's layout
    again = _searcher("original", True)
    again.load_state_dict(saved)
    _train(flat, 4)
    _train(again, 4)
    assert all(torch.equal(p, q) for p, q in zip(flat.params, again.params, strict=True))
    # A checkpoint of the per-tensor update loads into the flat one (and back): the same momentum.
    cross = _searcher("original", True)
    cross.load_state_dict(copy.deepcopy(old.state_dict()))
    assert all(torch.equal(a, b["momentum_buffer"]) for a, b in
               zip(cross.opt.momentum_buffers(), old.opt.state_dict()["state"].values(), strict=True))
    back = _searcher("original", False)
    back.load_state_dict(copy.deepcopy(cross.state_dict()))
    assert all(torch.equal(p, q) for p, q in zip(back.params, old.params, strict=True))


def test_nasib_step_on_the_tensors_that_ran_equals_the_whole_model_step():
    torch.manual_seed(0)
    net = Supernet(("conv3x3", "sep3x3", "maxpool3x3", "identity", "conv1x3"), channels=4, layers=4)
    twin = copy.deepcopy(net)
    lean = choice_params(net)
    opts = [torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
            for m in (net, twin)]
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    for ops in ([[4, 0], [1, 2], [3, 0], [0, 1]], [[0, 1], [4, 3], [2, 1], [1, 4]], [[1, 0]] * 4):
        for m, opt in zip((net, twin), opts, strict=True):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(m(x, ops), y).backward()
        ran = [p for p in lean.ran(ops) if p.grad is not None]
        assert len(ran) < len(list(net.parameters()))
        torch.nn.utils.clip_grad_norm_(ran, 0.5)
        step_on(opts[0], ran)
        torch.nn.utils.clip_grad_norm_(list(twin.parameters()), 0.5)
        opts[1].step()
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), twin.parameters(), strict=True))
    assert len(opts[0].param_groups[0]["params"]) == len(list(net.parameters()))  # restored after the step


def test_choice_params_refuses_a_partition_out_of_model_order():
    a, b, c = (torch.nn.Parameter(torch.zeros(1)) for _ in range(3))
    ChoiceParams([a, b, c], [a], [[[b], [c]]])
    try:
        ChoiceParams([a, b, c], [b], [[[a], [c]]])
    except ValueError as e:
        assert "order" in str(e)
    else:
        raise AssertionError("a backbone after a choice was accepted")


def test_a_search_with_both_levers_on_resumes_to_the_same_records(tmp_path, tiny_data, monkeypatch):
    import pytest

    from enas_ext.search import search_trial
    from nascore.data import DataConfig
    from nascore.loop import Interrupted, RunSpec
    from nascore.records import Trial

    monkeypatch.setenv("NASIB_ENAS_SPEED", "batched_rewards=on,flat_update=on")
    over = {"layers": 4, "channels": 8, "batch_size": 32, "eval_batch": 50, "epochs": 3,
            "controller": {"train_steps": 2, "num_aggregate": 3}, "data": {"valid_size": 100, "train_size": 192}}

    def search(name: str) -> list[dict]:
        spec = RunSpec(out=tmp_path / name, seed=0, device="cpu", data=DataConfig(data_dir=str(tiny_data)))
        search_trial(spec, "extended", "smoke", over)
        return [{k: v for k, v in r.items() if not k.endswith("_s")} for r in Trial(tmp_path / name).read_epochs()]

    straight = search("straight")
    real = EnasSearch.run_epoch

    def stop_in_epoch_2(self, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return real(self, epoch)

    monkeypatch.setattr(EnasSearch, "run_epoch", stop_in_epoch_2)
    with pytest.raises(Interrupted):
        search("cut")
    monkeypatch.setattr(EnasSearch, "run_epoch", real)
    assert search("cut") == straight and len(straight) == 3
