"""ENAS macro search: child epoch, controller REINFORCE updates, evaluation; records per the contract.

Per epoch (as the reference's main loop):
(a) train the shared child for ceil(train / batch) steps, a fresh architecture per batch
    (the last batch topped up from a fresh shuffle, as the release's endless stream gives
    full batches). The whole epoch's architectures are drawn in one batched controller
    call: the controller does not change during the child epoch, so this is the same
    distribution as drawing one per step, at one LSTM unroll instead of hundreds;
(b) `train_steps` controller updates of `num_aggregate` architectures each; an
    architecture's reward is its accuracy on the next minibatch of a shuffled, unaugmented
    valid stream;
(c) valid accuracy with a fresh architecture per batch of `eval_batch` over the valid split.
(b) and (c) run in eval mode with BN statistics chosen by `bn_eval` (nascore.bn).
Losses and counts stay on the device (no per-step `.item()`); the host reads them once at
the epoch's end. The only other host copies are the sampled architectures themselves
(one per phase, one per controller update), which Python needs to route the child.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from enas_ext.batched import EnasSpeed, RoutedChild
from enas_ext.child import FixedChild, SharedChild, arch_to_dict
from enas_ext.controller import Controller, ControllerSample, ControllerTrainer
from enas_ext.presets import EnasSearchConfig, configure, enas_space
from nascore.bn import bn_eval
from nascore.config import from_dict
from nascore.data import DeviceLoader, Splits, forever
from nascore.flat import FlatSGD
from nascore.loop import RunSpec
from nascore.ops import count_params
from nascore.recipe import Recipe, data_location, run_recipe
from nascore.records import RecordError, Trial, read_json
from nascore.schedules import cosine_restart_lr
from nascore.spaces import Space, SpaceLike, resolve_space

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

    def __init__(self, cfg: EnasSearchConfig, splits: Splits, device: torch.device, seed: int,
                 speed: EnasSpeed | None = None, space: Space | None = None):
        # speed: how (not what) to compute; default from $NASIB_ENAS_SPEED, not recorded (same numbers)
        # space: the resolved space searched (a planted one, other extra ops); None: cfg.space by name
        self.cfg, self.device = cfg, device
        self.speed = speed if speed is not None else EnasSpeed.from_env()
        self.space = space if space is not None else resolve_space(cfg.space)
        cfg.check_space(self.space)
        self.child = SharedChild(self.space.ops, cfg.layers, cfg.channels, cfg.keep_prob,
                                 branch_mode=cfg.branch_mode, released_op=cfg.released_op).to(device)
        self.params = list(self.child.parameters())
        self.opt = self._child_optimizer()
        self.controller = Controller(cfg.controller).to(device)
        self.trainer = ControllerTrainer(self.controller, sampling_generator(seed))
        mean, std = splits.mean, splits.std
        self.train_loader = DeviceLoader(splits.train, cfg.batch_size, device, mean, std, cfg.augment,
                                         fill_last=True)
        # Recalibration batches come from the train split as the child sees it in training.
        self.calib_stream = forever(self.train_loader)
        self.reward_loader = DeviceLoader(splits.valid, cfg.batch_size, device, mean, std, None)
        self.eval_loader = DeviceLoader(splits.valid, cfg.eval_batch, device, mean, std, None,
                                        shuffle=False, drop_last=False)

    def _child_optimizer(self) -> torch.optim.SGD | FlatSGD:
        """Nesterov SGD of the child; flat buffers when the speed setting says so (same arithmetic)."""
        cfg = self.cfg
        if self.speed.flat(self.device):  # L2 and the per-tensor clip in a fixed handful of kernels
            return FlatSGD(self.params, cfg.lr_max, cfg.momentum, cfg.nesterov, cfg.weight_decay, cfg.grad_clip)
        # Weight decay is folded into the gradient by hand (see `train_step`), so SGD gets 0.
        opt = torch.optim.SGD(self.params, lr=cfg.lr_max, momentum=cfg.momentum, nesterov=cfg.nesterov,
                              fused=self.device.type == "cuda")
        for p in self.params:  # every weight is decayed every step, used or not, as the reference's L2
            p.grad = torch.zeros_like(p)
        return opt

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
        arch = {**arch_to_dict(self.space, ops, skips, cfg.channels, cfg.layers), "family": "enas", "strategy": "enas"}
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
        self.update_child()
        return loss.detach(), logits.detach()

    def update_child(self) -> None:
        """After a backward: L2 on every weight, the per-tensor clip, Nesterov SGD, gradients zeroed."""
        if isinstance(self.opt, FlatSGD):  # the same arithmetic on flat buffers
            self.opt.step()
            return
        grads = [p.grad for p in self.params]
        if self.cfg.weight_decay > 0:  # the gradient of the reference's l2 term, before clipping
            torch._foreach_add_(grads, self.params, alpha=self.cfg.weight_decay)
        if self.cfg.grad_clip > 0:
            clip_per_tensor_(grads, self.cfg.grad_clip)
        self.opt.step()
        self.opt.zero_grad(set_to_none=False)  # keep zero grads so unused weights still decay

    def train_epoch(self, lr: float) -> tuple[torch.Tensor, torch.Tensor, int]:
        """One pass over the train split; returns (loss sum, correct count) on the device and images seen."""
        if isinstance(self.opt, FlatSGD):
            self.opt.lr = lr
        else:
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

    @contextmanager
    def judging(self, rule: str | None = None) -> Iterator[None]:
        """Eval mode for a phase of evaluations; `running`/`batch` BN set once here, `recalibrate` per architecture."""
        rule = rule or self.cfg.bn_eval
        was_training = self.child.training
        self.child.eval()  # before bn_eval, which may switch BN layers back to batch statistics
        try:
            with nullcontext() if rule == "recalibrate" else bn_eval(self.child, rule):
                yield
        finally:
            self.child.train(was_training)

    @torch.no_grad()
    def correct(self, x: torch.Tensor, y: torch.Tensor, ops: list[int], skips: list[list[int]],
                rule: str | None = None) -> torch.Tensor:
        """Correct predictions of one architecture on one batch, inside `judging(rule)`."""
        if (rule or self.cfg.bn_eval) != "recalibrate":
            return (self.child(x, ops, skips).argmax(1) == y).sum()
        with bn_eval(self.child, "recalibrate", lambda: self.calibrate(ops, skips)):
            return (self.child(x, ops, skips).argmax(1) == y).sum()

    def calibrate(self, ops: list[int], skips: list[list[int]], batches: int | None = None) -> None:
        """Forward `batches` training batches through one architecture (BN re-estimates its statistics)."""
        for _ in range(batches or self.cfg.bn_calibrate_batches):
            self.child(next(self.calib_stream)[0], ops, skips)

    def routed(self, rule: str | None = None) -> RoutedChild | None:
        """The routed many-children pass for a phase under BN `rule`, or None for the sequential path."""
        rule = rule or self.cfg.bn_eval
        return RoutedChild(self.child, rule) if self.speed.batched(self.device, rule, self.space.ops) else None

    def rewards(self, sample: ControllerSample, stream: Iterator, router: RoutedChild | None = None) -> torch.Tensor:
        """Accuracy of each sampled architecture on its own next valid minibatch (inside `judging`)."""
        archs = to_lists(sample)  # the update's one device-to-host copy
        if router is not None:  # one routed pass, the same images per child
            batches = [next(stream) for _ in archs]
            return router.hits(batches, archs).float() / len(batches[0][1])
        accs = []
        for ops, skips in archs:
            x, y = next(stream)
            accs.append(self.correct(x, y, ops, skips).float() / len(y))
        return torch.stack(accs)

    def controller_epoch(self) -> dict[str, torch.Tensor]:
        """`train_steps` REINFORCE updates; mean reward/entropy/skip rate and the final baseline."""
        stream = forever(self.reward_loader)
        with self.judging():
            router = self.routed()
            steps = [self.trainer.update(lambda s: self.rewards(s, stream, router))
                     for _ in range(self.cfg.controller.train_steps)]
        mean = {k: torch.stack([s[k] for s in steps]).mean() for k in ("reward", "entropy", "skip_rate")}
        return {**mean, "baseline": steps[-1]["baseline"]}

    def evaluate(self, rule: str | None = None, archs: list[Arch] | None = None) -> torch.Tensor:
        """Correct count over the valid split, a fresh architecture per batch (or `archs`), BN per `rule`."""
        if archs is None:
            with torch.no_grad():
                archs = to_lists(self.controller.sample(len(self.eval_loader), self.trainer.generator))
        correct = torch.zeros((), device=self.device)
        with self.judging(rule):
            router = self.routed(rule)
            if router is not None:
                batches = list(self.eval_loader)
                if len(batches) != len(archs):
                    raise ValueError(f"{len(archs)} architectures for {len(batches)} validation batches")
                return router.correct(batches, archs, self.speed.eval_chunk)
            for (x, y), (ops, skips) in zip(self.eval_loader, archs, strict=True):
                correct += self.correct(x, y, ops, skips, rule)
        return correct

    @torch.no_grad()
    def samples(self, n: int) -> dict:
        """samples.json content: `n` architectures drawn from the controller."""
        return samples_record(self.controller, self.space, n, self.trainer.generator)


def clip_per_tensor_(grads: list[torch.Tensor], bound: float) -> None:
    """Scale each gradient tensor whose norm exceeds `bound` down to norm `bound` (TF's clip_by_norm)."""
    norms = torch._foreach_norm(grads)
    torch._foreach_div_(grads, torch._foreach_clamp_min(norms, bound))
    torch._foreach_mul_(grads, bound)


def samples_record(controller: Controller, space: Space, n: int, generator: torch.Generator | None) -> dict:
    """{"space", "op_names", "samples": [{"ops": names, "skips": rows}]} of `n` controller draws."""
    ops_names = space.ops
    with torch.no_grad():
        archs = to_lists(controller.sample(n, generator))
    return {"space": space.name, "op_names": list(ops_names),
            "samples": [{"ops": [ops_names[i] for i in ops], "skips": skips} for ops, skips in archs]}


def search_trial(spec: RunSpec, space: SpaceLike, scale: str = "quick",
                 overrides: dict | None = None) -> dict | None:
    """Run (or resume) one ENAS search trial into spec.out; None when it is finished and not forced.

    `space` is resolved here, once; config.json records its name, and its whole record
    (`space_record`) only when the name alone would not rebuild it.
    """
    value = enas_space(space)
    over = dict(overrides or {})
    over["data"] = {**over.get("data", {}), **data_location(spec)}
    cfg = configure(scale, value, over)
    record = value.to_record()
    extra = {"branch_mode": cfg.branch_mode, **({"space_record": record} if len(record) > 1 else {})}
    return run_recipe(spec, Recipe(
        family="enas", strategy="enas", space=cfg.space, scale=scale, config=dataclasses.asdict(cfg), data=cfg.data,
        build=lambda splits, device: EnasSearch(cfg, splits, device, spec.seed, space=value),
        batch_size=cfg.batch_size, layers=cfg.layers, extra=extra))


def checkpointed_search(trial: Trial) -> tuple[EnasSearchConfig, Space, dict]:
    """An ENAS trial's config, space and last checkpoint; one-line errors when it is no ENAS search or has none."""
    conf = read_json(trial.file("config.json"), need_format=True)
    if conf.get("family") != "enas":
        raise RecordError(f"{trial.file('config.json')}: family {conf.get('family')!r} is not an ENAS search")
    cfg = from_dict(EnasSearchConfig, conf["config"], f"{trial.file('config.json')} config")
    space = resolve_space(conf.get("space_record") or cfg.space)
    cfg.check_space(space)
    state = trial.load_checkpoint()
    if state is None:
        raise RecordError(f"{trial.path}: no checkpoint.pt; run the search (at least one epoch) first")
    return cfg, space, state


def sample_from_trial(trial_dir: Path, n: int = 50, seed: int = 0) -> list[dict]:
    """Draw `n` architectures from a trial's checkpointed controller into samples.json; returns them."""
    trial = Trial(trial_dir)
    cfg, space, state = checkpointed_search(trial)
    controller = Controller(cfg.controller)
    controller.load_state_dict(state["searcher"]["controller"]["controller"])
    record = samples_record(controller, space, n, sampling_generator(seed))
    trial.write_json("samples.json", record)
    return record["samples"]
