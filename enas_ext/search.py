"""ENAS macro search: child epoch, controller REINFORCE updates, evaluation; records per the contract.

Per epoch (as the reference's main loop):
(a) train the shared child over the train split, a fresh architecture per batch. The
    whole epoch's architectures are drawn in one batched controller call: the controller
    does not change during the child epoch, so this is the same distribution as drawing
    one per step, at one LSTM unroll instead of hundreds;
(b) `train_steps` controller updates of `num_aggregate` architectures each; an
    architecture's reward is its accuracy on the next minibatch of a shuffled, unaugmented
    valid stream (eval-mode BN);
(c) valid accuracy with a fresh architecture per batch of `eval_batch` over the valid split.
Losses and counts stay on the device (no per-step `.item()`); the host reads them once at
the epoch's end. The only other host copies are the sampled architectures themselves
(one per phase, one per controller update), which Python needs to route the child.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from enas_ext.child import FixedChild, SharedChild, arch_to_dict
from enas_ext.controller import Controller, ControllerSample, ControllerTrainer
from enas_ext.presets import EnasSearchConfig, configure
from nascore.config import from_dict
from nascore.data import DeviceLoader, Splits, forever, load_splits
from nascore.loop import RunSpec, run_trial
from nascore.ops import count_params
from nascore.records import RecordError, Trial, read_json
from nascore.runtime import resolve_device, seed_everything
from nascore.schedules import cosine_restart_lr
from nascore.spaces import get_space
from nascore.trial import oom_hint, open_trial, trial_meta

Arch = tuple[list[int], list[list[int]]]


def to_lists(sample: ControllerSample) -> list[Arch]:
    """Batched controller output -> (ops, skip rows) per architecture, as plain lists (one host copy)."""
    ops, skips = sample.ops.tolist(), sample.skips.to(torch.int8).tolist()
    return [(o, [row[:k] for k, row in enumerate(s)]) for o, s in zip(ops, skips, strict=True)]


def sampling_generator(seed: int) -> torch.Generator:
    """The controller's own CPU generator, decorrelated from the global torch seed."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, 0xE5A5]).generate_state(1)[0]))


class EnasSearch:
    """The ENAS macro searcher for nascore.loop.run_trial."""

    def __init__(self, cfg: EnasSearchConfig, splits: Splits, device: torch.device, seed: int):
        self.cfg, self.device = cfg, device
        self.space = get_space(cfg.space)
        self.child = SharedChild(self.space.ops, cfg.layers, cfg.channels, cfg.keep_prob).to(device)
        self.params = list(self.child.parameters())
        # Weight decay is folded into the gradient by hand (see `train_step`), so SGD gets 0.
        self.opt = torch.optim.SGD(self.params, lr=cfg.lr_max, momentum=cfg.momentum, nesterov=cfg.nesterov,
                                   fused=device.type == "cuda")
        for p in self.params:  # every weight is decayed every step, used or not, as the reference's L2
            p.grad = torch.zeros_like(p)
        self.controller = Controller(cfg.controller).to(device)
        self.trainer = ControllerTrainer(self.controller, sampling_generator(seed))
        mean, std = splits.mean, splits.std
        self.train_loader = DeviceLoader(splits.train, cfg.batch_size, device, mean, std, cfg.augment)
        self.reward_loader = DeviceLoader(splits.valid, cfg.batch_size, device, mean, std, None)
        self.eval_loader = DeviceLoader(splits.valid, cfg.eval_batch, device, mean, std, None,
                                        shuffle=False, drop_last=False)

    # --- the Searcher protocol -------------------------------------------------------------

    def state_dict(self) -> dict:
        """Child weights, child SGD state, controller trainer (controller, Adam, baseline, sampler).

        The lr needs no state: it is a pure function of the epoch index, which the driver keeps.
        """
        return {"child": self.child.state_dict(), "child_opt": self.opt.state_dict(),
                "controller": self.trainer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore what state_dict() returned."""
        self.child.load_state_dict(state["child"])
        self.opt.load_state_dict(state["child_opt"])
        self.trainer.load_state_dict(state["controller"])

    def done(self, epoch: int) -> bool:
        """True once the configured epochs have run."""
        return epoch >= self.cfg.epochs

    def planned_epochs(self) -> int:
        """The configured epoch count."""
        return self.cfg.epochs

    def lr(self, epoch: int) -> float:
        """Child learning rate of `epoch`."""
        c = self.cfg
        return cosine_restart_lr(epoch, c.lr_max, c.lr_min, c.lr_t0, c.lr_tmul)

    def run_epoch(self, epoch: int) -> dict:
        """Child epoch, controller updates, evaluation; returns the epoch's record fields."""
        lr = self.lr(epoch)
        loss_sum, correct, seen = self.train_epoch(lr)
        ctrl = self.controller_epoch()
        valid_correct = self.evaluate()
        stats = torch.stack([loss_sum, correct, valid_correct, ctrl["reward"], ctrl["entropy"],
                             ctrl["baseline"], ctrl["skip_rate"]]).tolist()  # the epoch's one host sync
        n_valid = len(self.eval_loader.split)
        return {"train_loss": stats[0] / seen, "train_acc": stats[1] / seen, "valid_acc": stats[2] / n_valid,
                "lr": lr, "controller_reward": stats[3], "entropy": stats[4], "baseline": stats[5],
                "skip_rate": stats[6]}

    def finish(self, trial: Trial, epochs: list[dict]) -> dict:
        """Write samples.json and arch.json; return the result fields."""
        cfg = self.cfg
        trial.write_json("samples.json", self.samples(cfg.num_samples))
        ops, skips = self.controller.greedy()
        arch = {**arch_to_dict(self.space, ops, skips, cfg.channels, cfg.layers), "method": "enas"}
        trial.write_json("arch.json", arch)
        accs = [e["valid_acc"] for e in epochs]
        search_s = epochs[-1]["wall_s"] if epochs else 0.0
        return {"final_valid_acc": accs[-1] if accs else None, "best_valid_acc": max(accs) if accs else None,
                "gpu_days": search_s / 86400 if self.device.type == "cuda" else None,
                "device": str(self.device), "params": count_params(FixedChild(arch)),
                "num_ops": len(self.space.ops)}

    # --- the three phases ------------------------------------------------------------------

    def train_step(self, x: torch.Tensor, y: torch.Tensor, ops: list[int],
                   skips: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """One child SGD step on one architecture; returns (loss, logits), detached, on the device."""
        logits = self.child(x, ops, skips)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        grads = [p.grad for p in self.params]
        if self.cfg.weight_decay > 0:  # the gradient of the reference's l2 term, before clipping
            torch._foreach_add_(grads, self.params, alpha=self.cfg.weight_decay)
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip, foreach=True)
        self.opt.step()
        self.opt.zero_grad(set_to_none=False)  # keep zero grads so unused weights still decay
        return loss.detach(), logits.detach()

    def train_epoch(self, lr: float) -> tuple[torch.Tensor, torch.Tensor, int]:
        """One pass over the train split; returns (loss sum, correct count) on the device and images seen."""
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.child.train()
        with torch.no_grad():  # the controller is frozen for the whole child epoch
            archs = to_lists(self.controller.sample(len(self.train_loader), self.trainer.generator))
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        seen = 0
        for (x, y), (ops, skips) in zip(self.train_loader, archs, strict=True):
            loss, logits = self.train_step(x, y, ops, skips)
            loss_sum += loss * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
        return loss_sum, correct, seen

    @torch.no_grad()
    def rewards(self, sample: ControllerSample, stream: Iterator) -> torch.Tensor:
        """Accuracy of each sampled architecture on its own next valid minibatch (eval mode)."""
        accs = []
        for ops, skips in to_lists(sample):
            x, y = next(stream)
            accs.append((self.child(x, ops, skips).argmax(1) == y).float().mean())
        return torch.stack(accs)

    def controller_epoch(self) -> dict[str, torch.Tensor]:
        """`train_steps` REINFORCE updates; mean reward/entropy/skip rate and the final baseline."""
        self.child.eval()
        stream = forever(self.reward_loader)
        steps = [self.trainer.update(lambda s: self.rewards(s, stream))
                 for _ in range(self.cfg.controller.train_steps)]
        mean = {k: torch.stack([s[k] for s in steps]).mean() for k in ("reward", "entropy", "skip_rate")}
        return {**mean, "baseline": steps[-1]["baseline"]}

    @torch.no_grad()
    def evaluate(self) -> torch.Tensor:
        """Correct count over the valid split, a fresh architecture per batch (eval mode)."""
        self.child.eval()
        archs = to_lists(self.controller.sample(len(self.eval_loader), self.trainer.generator))
        correct = torch.zeros((), device=self.device)
        for (x, y), (ops, skips) in zip(self.eval_loader, archs, strict=True):
            correct += (self.child(x, ops, skips).argmax(1) == y).sum()
        return correct

    @torch.no_grad()
    def samples(self, n: int) -> dict:
        """samples.json content: `n` architectures drawn from the controller."""
        return samples_record(self.controller, self.space.name, n, self.trainer.generator)


def samples_record(controller: Controller, space: str, n: int, generator: torch.Generator | None) -> dict:
    """{"space", "op_names", "samples": [{"ops": names, "skips": rows}]} of `n` controller draws."""
    ops_names = get_space(space).ops
    with torch.no_grad():
        archs = to_lists(controller.sample(n, generator))
    return {"space": space, "op_names": list(ops_names),
            "samples": [{"ops": [ops_names[i] for i in ops], "skips": skips} for ops, skips in archs]}


def search_trial(spec: RunSpec, space: str, preset: str = "quick",
                 overrides: dict | None = None) -> dict | None:
    """Run (or resume) one ENAS search trial into spec.out; None when it is finished and not forced."""
    over = dict(overrides or {})
    # Where the data lives comes from the run; which subset to use, from the preset and overrides.
    data_dir = None if spec.data.data_dir is None else str(spec.data.data_dir)
    over["data"] = {**over.get("data", {}), "data_dir": data_dir, "download": spec.data.download}
    cfg = configure(preset, space, over)
    device = resolve_device(spec.device)
    trial = open_trial(spec.out, spec.force)
    if trial is None:
        return None
    seed_everything(spec.seed, spec.deterministic)
    splits = load_splits(cfg.data)
    try:
        searcher = EnasSearch(cfg, splits, device, spec.seed)
        meta = trial_meta(spec, device, splits.source, method="enas", space=cfg.space, preset=preset,
                          config=dataclasses.asdict(cfg))
        return run_trial(trial, searcher, meta)
    except torch.cuda.OutOfMemoryError as e:
        e.hint = oom_hint(cfg.batch_size, cfg.layers)
        raise


def sample_from_trial(trial_dir: Path, n: int = 50, seed: int = 0) -> list[dict]:
    """Draw `n` architectures from a trial's checkpointed controller into samples.json; returns them."""
    trial = Trial(trial_dir)
    conf = read_json(trial.file("config.json"), need_format=True)
    if conf.get("method") != "enas":
        raise RecordError(f"{trial.file('config.json')}: method {conf.get('method')!r} is not an ENAS search")
    cfg = from_dict(EnasSearchConfig, conf["config"], f"{trial.file('config.json')} config")
    state = trial.load_checkpoint()
    if state is None:
        raise RecordError(f"{trial.path}: no checkpoint.pt; run the search (at least one epoch) first")
    controller = Controller(cfg.controller)
    controller.load_state_dict(state["searcher"]["controller"]["controller"])
    record = samples_record(controller, cfg.space, n, sampling_generator(seed))
    trial.write_json("samples.json", record)
    return record["samples"]
