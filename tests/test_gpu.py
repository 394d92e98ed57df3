"""On CUDA (skipped without it): exact resume, the out-of-memory message, CUDA = CPU numbers, budget use."""
from __future__ import annotations

import copy
import random
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from nascore.data import DataConfig
from nascore.loop import Interrupted, RunSpec
from nascore.ops import build_op
from nascore.records import Trial
from nascore.spaces import get_space

pytestmark = pytest.mark.gpu

ENAS_TINY = {"layers": 4, "channels": 8, "batch_size": 32, "eval_batch": 50,
             "controller": {"train_steps": 2, "num_aggregate": 3}, "data": {"valid_size": 100, "train_size": 192}}
NASIB_TINY = {"layers": 4, "channels": 8, "batch_size": 32, "eval_batch_size": 50, "warmup_steps": 1,
              "measure_steps": 2, "data": {"valid_size": 100, "train_size": 192}}


def numbers(out: Path) -> list[dict]:
    """epochs.jsonl without times (anything in seconds)."""
    return [{k: v for k, v in rec.items() if not k.endswith("_s")} for rec in Trial(out).read_epochs()]


@pytest.fixture
def exact():
    """Full-precision matmuls and convolutions (TF32 would differ from the CPU by ~1e-3)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _search(method: str, out: Path, data: Path, epochs: int) -> dict | None:
    """A tiny deterministic CUDA search of `method` into `out`."""
    spec = RunSpec(out=out, seed=0, device="cuda", data=DataConfig(data_dir=str(data)), deterministic=True)
    if method == "enas":
        from enas_ext.search import search_trial

        return search_trial(spec, "extended", "smoke", {**ENAS_TINY, "epochs": epochs})
    from nasib.search import search_trial

    return search_trial(spec, "superkernel", "smoke", {**NASIB_TINY, "epochs": epochs, "strategy": "nasib"})


@pytest.mark.parametrize("method", ["enas", "nasib"])
def test_cuda_resume_gives_the_same_records(method, tmp_path, tiny_data, monkeypatch):
    from enas_ext.search import EnasSearch
    from nasib.search import NasibSearch

    cls = EnasSearch if method == "enas" else NasibSearch
    _search(method, tmp_path / "straight", tiny_data, epochs=3)
    real = cls.run_epoch

    def stop_in_epoch_2(self, epoch):
        if epoch == 2:
            raise KeyboardInterrupt  # Ctrl-C in epoch 2: epoch 1's checkpoint is the last
        return real(self, epoch)

    monkeypatch.setattr(cls, "run_epoch", stop_in_epoch_2)
    with pytest.raises(Interrupted):
        _search(method, tmp_path / "cut", tiny_data, epochs=3)
    monkeypatch.setattr(cls, "run_epoch", real)
    _search(method, tmp_path / "cut", tiny_data, epochs=3)
    assert numbers(tmp_path / "cut") == numbers(tmp_path / "straight")
    assert len(numbers(tmp_path / "cut")) == 3


def test_out_of_memory_is_one_line_with_what_to_lower(tmp_path, tiny_data):
    from enas_ext.__main__ import cli

    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(0.002)  # ~0.3 GB of an 80-140 GB card: a real CUDA OOM
    try:
        res = CliRunner().invoke(cli, ["search", "--scale", "smoke", "--channels", "512", "--batch-size", "256",
                                       "--device", "cuda", "--data-dir", str(tiny_data), "--valid-size", "100",
                                       "--out", str(tmp_path / "oom")])
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    assert res.exit_code == 1, res.output
    last = res.output.strip().splitlines()[-1]
    assert last.startswith("Error: CUDA out of memory at batch size 256") and "--batch-size" in last


OPS = sorted(set(get_space("extended").ops) | set(get_space("narrow").ops) | set(get_space("superkernel").ops))


def _agree(module: torch.nn.Module, run) -> None:
    """`run(module, device)` gives the same output and gradients on CUDA as on the CPU."""
    gpu = copy.deepcopy(module).cuda()
    out_cpu, out_gpu = run(module, "cpu"), run(gpu, "cuda")
    torch.testing.assert_close(out_gpu.cpu(), out_cpu, rtol=1e-4, atol=1e-4)
    if not out_cpu.requires_grad:  # pooling and identity have no weights
        return
    out_cpu.square().sum().backward()
    out_gpu.square().sum().backward()
    for (name, p), q in zip(module.named_parameters(), gpu.parameters(), strict=True):
        if p.grad is not None:
            torch.testing.assert_close(q.grad.cpu(), p.grad, rtol=1e-3, atol=1e-4, msg=f"gradient of {name}")


def test_every_op_agrees_between_cuda_and_cpu(exact):
    torch.manual_seed(0)
    x = torch.randn(4, 8, 16, 16)
    for name in OPS:
        _agree(build_op(name, 8), lambda m, dev: m(x.to(dev)))


def test_enas_child_and_nasib_supernet_agree_between_cuda_and_cpu(exact):
    from enas_ext.child import SharedChild
    from nasib.supernet import Supernet

    torch.manual_seed(0)
    x, rng = torch.randn(4, 3, 32, 32), random.Random(0)
    child = SharedChild(get_space("extended").ops, layers=6, channels=8)
    child.dropout.p = 0.0  # dropout draws differ between devices
    ops = [rng.randrange(len(get_space("extended").ops)) for _ in range(6)]
    skips = [[rng.randrange(2) for _ in range(i)] for i in range(6)]
    _agree(child, lambda m, dev: m(x.to(dev), ops, skips))
    net = Supernet(get_space("superkernel").ops, channels=8, layers=4)
    pairs, weights = [[3, 17], [80, 0], [40, 41], [5, 6]], torch.tensor([[0.3, 0.7]] * 4)
    _agree(net, lambda m, dev: m(x.to(dev), pairs, weights.to(dev)))


def test_a_budgeted_search_on_the_gpu_uses_95_to_100_percent_of_its_budget():
    from benchmarks.nasib_bench import budget_fidelity

    (row,) = budget_fidelity("cuda", [45.0], scale="smoke")
    assert row["status"] == "ok" and row["epochs"] >= 2
    assert 0.95 <= row["used_ratio"] <= 1.0, row
    assert row["wall_ratio"] <= 1.0, row
