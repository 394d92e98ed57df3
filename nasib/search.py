"""The one-shot search loop shared by the strategies, inside a wall-clock budget.

Epoch: weight steps on the train split (each runs the strategy's draw: the two sampled
ops per layer summed, or, for darts/snas, all ops weighted by relaxed alphas); alpha
steps on the held-out split interleaved evenly, so one epoch uses every held-out batch
once (after weight step b, floor((b+1)V/T) - floor(bV/T) alpha steps for T train and V
held-out batches); then the validation accuracy of the network the strategy favours.
Host syncs: the sampled indices once per step (python picks the modules), losses and
accuracies once per epoch.

Budget: the search measures and runs epochs; the budget clock (`nasib.clock`) owns the
budget. It starts counting when `search_trial` is called, so loading data, building the
supernet, the timing run, every epoch, checkpoints, derivation and writing records are all
charged. The timing run (`measure_epoch`) takes real steps (warm-up, then timed weight steps,
alpha steps and evaluation batches, and one checkpoint serialisation) on the live state and
restores that state and every RNG afterwards; the shared loop hands it to the clock, which
plans the epochs, re-plans after every epoch and says when an epoch must stop early.
"""
from __future__ import annotations

import copy
import io
import sys
import time
from collections.abc import Callable
from dataclasses import asdict

import torch
import torch._dynamo  # noqa: F401 - the first optimiser construction imports it (seconds): here, before the budget clock
import torch.nn.functional as F

from nascore.bn import bn_eval
from nascore.data import DeviceLoader, Splits, forever
from nascore.flat import ChoiceParams, step_on
from nascore.loop import RunSpec
from nascore.ops import count_params
from nascore.recipe import Recipe, data_location, run_recipe
from nascore.records import Trial, snapshot
from nascore.runtime import rng_state, set_rng_state, sync
from nascore.schedules import cosine
from nascore.spaces import Space, SpaceLike
from nasib.clock import BudgetClock, Measured
from nasib.presets import NasibSearchConfig, configure
from nasib.strategies import Ops, get_strategy
from nasib.supernet import FixedNet, Supernet
from nasib.timing import batch_counts, projected_epoch

CALIBRATION_BATCHES = 10  # training batches the 'recalibrate' BN rule re-estimates statistics on


def choice_params(model: Supernet) -> ChoiceParams:
    """The supernet's parameters as backbone (stem, reductions, classifier) plus one list per (layer, op)."""
    ops = {id(p) for layer in model.layers for p in layer.parameters()}
    backbone = [p for p in model.parameters() if id(p) not in ops]
    return ChoiceParams(list(model.parameters()), backbone,
                        [[list(block.parameters()) for block in layer.ops] for layer in model.layers])


class NasibSearch:
    """A `nascore.loop.Searcher`: supernet weights, strategy, schedule and budget of one search."""

    def __init__(self, cfg: NasibSearchConfig, splits: Splits, device: torch.device, seed: int,
                 clock: Callable[[], float] = time.monotonic, used_s: float = 0.0,
                 budget: BudgetClock | None = None, space: Space | None = None):
        # space: the resolved space searched (a planted one, say); None: the one the config's fields name
        self.cfg, self.device = cfg, device
        self.space = space if space is not None else cfg.named_space()
        cfg.check_space(self.space)
        self.op_names = self.space.ops
        torch.backends.cudnn.benchmark = torch.backends.cudnn.benchmark and cfg.cudnn_autotune
        self.model = Supernet(self.op_names, cfg.channels, cfg.layers).to(device)
        self.params = list(self.model.parameters())  # cached: walking ~1000 modules per step is slow
        self.lean = choice_params(self.model)  # the tensors a weight step's draw runs, without walking all
        self._stale = self.params  # tensors that may hold a gradient (all, before the first step)
        self.optimizer = torch.optim.SGD(self.params, lr=cfg.lr_max, momentum=cfg.momentum,
                                         nesterov=cfg.nesterov and cfg.momentum > 0, weight_decay=cfg.weight_decay)
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.strategy = get_strategy(cfg.strategy)(self.op_names, cfg, device, self.generator)
        mean, std = splits.mean, splits.std
        self.train_loader = DeviceLoader(splits.train, cfg.batch_size, device, mean, std, cfg.augment)
        self.valid_loader = DeviceLoader(splits.valid, cfg.batch_size, device, mean, std)
        self.eval_loader = DeviceLoader(splits.valid, cfg.eval_batch_size, device, mean, std, shuffle=False,
                                 drop_last=False)
        self.counts = batch_counts(len(splits.train), len(splits.valid), cfg)
        # The budget (or the --epochs count) lives in one clock, which the loop holds too.
        self.budget = budget if budget is not None else BudgetClock(cfg.budget, cfg.k, cfg.epochs, clock, used_s)

    # ---- the Searcher protocol -------------------------------------------------------------
    def done(self, epoch: int) -> bool:
        """True when the clock does not let `epoch` start (a budget needs its timing run first: start_clock)."""
        return not self.budget.may_start(epoch)

    def planned_epochs(self) -> int:
        """Epochs in the current plan (0 before a budgeted search has measured)."""
        return self.budget.planned_epochs

    def run_epoch(self, epoch: int) -> dict:
        """Train weights (and alphas), evaluate; hands the clock the epoch's time; returns its record fields."""
        t0 = self.budget.now()
        p, total = self.budget.begin_epoch(epoch)
        lr, alpha_lr = self._set_lrs(epoch, total)
        self.strategy.set_epoch(epoch, total)
        loss, acc, seen, cut = self._train_epoch(epoch, p, total)
        correct = [self._correct(lambda: self.strategy.eval_ops(self.generator))]
        if self.strategy.has_sampled_eval:
            correct.append(self._correct(lambda: self.strategy.sampled_eval_ops(self.generator)))
        n_eval = len(self.eval_loader.split)
        stats = torch.stack([loss / seen, acc / seen, *(c / n_eval for c in correct)]).tolist()
        fields = self.strategy.epoch_fields()
        sync(self.device)
        budget_fields = self.budget.end_epoch(epoch, self.budget.now() - t0)
        rec = {"train_loss": stats[0], "train_acc": stats[1], "valid_acc": stats[2], "lr": lr}
        if len(stats) > 3:
            rec["valid_acc_sampled"] = stats[3]
        if self.strategy.trains_alphas:
            rec["alpha_lr"] = alpha_lr
        if self.strategy.uses_p_explore:
            rec["p_explore"] = p
        rec.update(fields)
        rec.update(budget_fields)
        if cut:
            rec["cut_short"] = True  # the budget's reserve was reached inside this epoch
        return rec

    def finish(self, trial: Trial, epochs: list[dict]) -> dict:
        """Write samples.json, arch.json (and alphas.json); return the result fields."""
        cfg = self.cfg
        samples = self.strategy.samples(cfg.num_samples, self.generator)
        names = self.strategy.derive(samples, lambda arch: self._accuracy([[i] for i in arch]), self.generator)
        # The space's record leads (its name; m/K, a planted op where it has them), so retraining rebuilds it.
        arch = {**self.space.to_record(), "ops": names, "channels": cfg.channels, "layers": cfg.layers,
                "family": "nasib", "strategy": self.strategy.name}
        listed = [{"ops": [self.op_names[i] for i in s]} for s in samples]
        trial.write_json("samples.json", {"space": self.space.name, "op_names": list(self.op_names),
                                          "samples": listed})
        trial.write_json("arch.json", arch)
        alphas = self.strategy.alphas_record()
        if alphas is not None:
            trial.write_json("alphas.json", alphas)
        accs, budget = [e["valid_acc"] for e in epochs], self.budget.result_fields()
        return {"final_valid_acc": accs[-1] if accs else None, "best_valid_acc": max(accs) if accs else None,
                "gpu_days": budget["budget_used_s"] / 86400 if self.device.type == "cuda" else None,
                "device": str(self.device), "params": count_params(FixedNet(arch)), "num_ops": len(self.op_names),
                **budget, "realised_epochs": len(epochs),
                "measured_epoch_s": (self.budget.timing or {}).get("epoch_s"), "arch": names}

    def state_dict(self) -> dict:
        """Weights, optimizers, strategy, sampling RNG and the budget clock's state (with the seconds used)."""
        return {**self._train_state(), **self.budget.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Resume exactly; the clock does not charge the time between the kill and now."""
        self._load_train_state(state)
        self.budget.load_state_dict(state)

    # ---- steps ------------------------------------------------------------------------------
    def _set_lrs(self, t: float, total: int) -> tuple[float, float]:
        """Cosine learning rates of weights and alphas at (fractional) epoch t of `total`."""
        cfg = self.cfg
        lr = cosine(cfg.lr_max, cfg.lr_min, t, total)
        alpha_lr = cfg.alpha_lr if cfg.alpha_lr_min is None else cosine(cfg.alpha_lr, cfg.alpha_lr_min, t, total)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.strategy.set_alpha_lr(alpha_lr)
        return lr, alpha_lr

    def _weight_step(self, x: torch.Tensor, y: torch.Tensor, p: float,
                     then_alpha: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """One weight update on the strategy's draw; returns (summed loss, hits) as device tensors.

        Only the tensors that ran are walked (backbone plus the drawn ops, in model order): the others
        have grad None, which clip_grad_norm_ and SGD skip, so the arithmetic is the same."""
        ops, weights = self.strategy.weight_ops(p, self.generator, then_alpha)
        logits = self.model(x, ops, weights)
        loss = F.cross_entropy(logits, y)
        for q in self._stale:  # unsampled ops keep grad None: SGD skips them
            q.grad = None
        loss.backward()
        ran = [q for q in self.lean.ran(ops) if q.grad is not None]
        torch.nn.utils.clip_grad_norm_(ran, self.cfg.grad_clip)
        step_on(self.optimizer, ran)
        self._stale = ran
        self.strategy.after_weight_step()  # single-level strategies (SNAS) step their alphas here
        return loss.detach() * len(y), (logits.detach().argmax(1) == y).sum()

    def _train_epoch(self, epoch: int, p: float, total: int):
        """Weight steps with evenly interleaved alpha steps; stops early when the budget says so."""
        self.model.train()
        n_tr = len(self.train_loader)
        n_va = self._alpha_batches(n_tr, len(self.valid_loader))
        held_out = forever(self.valid_loader)
        loss = torch.zeros((), device=self.device)
        hits = torch.zeros((), device=self.device)
        seen, cut, t0 = 0, False, self.budget.now()
        for b, (x, y) in enumerate(self.train_loader):
            self._set_lrs(epoch + b / n_tr, total)
            alpha_after = (b + 1) * n_va // n_tr - b * n_va // n_tr
            step_loss, step_hits = self._weight_step(x, y, p, then_alpha=alpha_after > 0)
            loss, hits, seen = loss + step_loss, hits + step_hits, seen + len(y)
            for _ in range(alpha_after):
                xv, yv = next(held_out)
                self.strategy.alpha_step(self.model, xv, yv, p, self.generator)
            now = self.budget.now()  # step to step, so a pause while the next batch loads is seen too
            step_s, t0 = now - t0, now
            if self.budget.must_stop(step_s) and b + 1 < n_tr:
                cut = True
                break
        return loss, hits, seen, cut

    def _alpha_steps(self) -> float | None:
        """Alpha steps per weight step: the config's, else the strategy's own rule (None: one held-out pass)."""
        if not self.strategy.trains_alphas:
            return 0.0
        return self.cfg.alpha_steps if self.cfg.alpha_steps is not None else self.strategy.alpha_steps

    def _alpha_batches(self, n_train: int, n_valid: int) -> int:
        """Alpha steps in an epoch of `n_train` weight steps (held-out batches cycle when they run out)."""
        rate = self._alpha_steps()
        return n_valid if rate is None else round(rate * n_train)

    @torch.no_grad()
    def _correct(self, choose: Callable[[], tuple[Ops, torch.Tensor | None]]) -> torch.Tensor:
        """Correct predictions on the held-out split; `choose` gives each batch's ops and weights."""
        correct = torch.zeros((), device=self.device)
        with bn_eval(self.model, self.cfg.bn_eval, lambda: self._calibrate(choose)):
            for x, y in self.eval_loader:
                ops, weights = choose()
                correct += (self.model(x, ops, weights).argmax(1) == y).sum()
        return correct

    def _calibrate(self, choose: Callable[[], tuple[Ops, torch.Tensor | None]]) -> None:
        """The 'recalibrate' rule: re-estimate BN statistics on a few training batches of the evaluated choice."""
        for _, (x, _) in zip(range(CALIBRATION_BATCHES), self.train_loader, strict=False):
            self.model(x, *choose())

    def _accuracy(self, ops: Ops) -> float:
        """Held-out accuracy of one fixed choice of ops (summed)."""
        return (self._correct(lambda: (ops, None)) / len(self.eval_loader.split)).item()

    # ---- timing run ------------------------------------------------------------------------
    def measure_epoch(self, counts: dict[str, int] | None = None, say: bool = True) -> Measured:
        """The timing run, as the budget clock takes it (`say`: the two stderr lines a search prints)."""
        t0, counts = self.budget.now(), counts or self.counts
        if say:
            print("timing run: measuring weight steps, alpha steps, evaluation and a checkpoint on this machine "
                  "(charged to the budget) ...", file=sys.stderr, flush=True)
        t = self.measure(counts)
        if say:
            print(f"timing run: {self.budget.now() - t0:.1f}s; one epoch here takes about {t['epoch_s']:.1f}s",
                  file=sys.stderr, flush=True)
        return Measured(t, t["weight_s"] + t["alpha_s"] * t["alpha_steps"] / counts["train"],
                        self.strategy.finish_passes * t["eval_pass_s"])

    def measure(self, counts: dict[str, int] | None = None) -> dict[str, float]:
        """Seconds per weight step, alpha step and eval batch, and the projected epoch (state restored)."""
        counts = counts or self.counts
        saved, rngs = copy.deepcopy(self._train_state()), rng_state()
        try:
            t = self._time_steps()
        finally:
            self._load_train_state(saved)
            set_rng_state(rngs)
            self.strategy.epoch_fields()  # drop the timing steps' tallies: epoch 0 counts its own only
        eval_pass = counts["eval"] * t["eval_s"] * (2 if self.strategy.has_sampled_eval else 1)
        alpha_steps = self._alpha_batches(counts["train"], counts["valid"])
        work = counts["train"] * t["weight_s"] + alpha_steps * t["alpha_s"] + eval_pass
        return {**t, "eval_pass_s": eval_pass, "alpha_steps": alpha_steps,
                "epoch_s": projected_epoch(work, t["snapshot_s"], t["checkpoint_s"] - t["snapshot_s"])}

    def _time_steps(self) -> dict[str, float]:
        """Warm up, then time real weight steps, alpha steps, eval batches and a checkpoint."""
        cfg, n_ops = self.cfg, len(self.op_names)
        warm = cfg.warmup_steps if cfg.warmup_steps is not None else -(-n_ops // 2)
        train, held_out, evals = (forever(self.train_loader), forever(self.valid_loader),
                                  forever(self.eval_loader))
        alphas = self.strategy.trains_alphas

        def timed(step: Callable[[], object], count: int) -> float:
            sync(self.device)
            t0 = time.perf_counter()
            for _ in range(count):
                step()
            sync(self.device)
            return (time.perf_counter() - t0) / count

        def weight() -> None:
            self._weight_step(*next(train), 1.0)

        def alpha() -> None:
            self.strategy.alpha_step(self.model, *next(held_out), 1.0, self.generator)

        def evaluate() -> None:
            with torch.no_grad():
                x, _ = next(evals)
                self.model(x, *self.strategy.eval_ops(self.generator)).argmax(1)

        for _ in range(warm):
            weight()
            if alphas:
                alpha()
        out = {"weight_s": timed(weight, cfg.measure_steps),
               "alpha_s": timed(alpha, cfg.measure_steps) if alphas else 0.0,
               "eval_s": timed(evaluate, cfg.measure_steps)}
        t0 = time.perf_counter()
        frozen = snapshot({**self._train_state(), "planner": None})  # what the loop's save pays
        out["snapshot_s"] = time.perf_counter() - t0
        torch.save(frozen, io.BytesIO())  # what the background writer then does
        out["checkpoint_s"] = time.perf_counter() - t0  # the whole save, as the search's last one blocks
        return out

    def _train_state(self) -> dict:
        """Everything the training steps change (the plan excluded)."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "strategy": self.strategy.state_dict(), "generator": self.generator.get_state()}

    def _load_train_state(self, state: dict) -> None:
        """Restore `_train_state()` output."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.strategy.load_state_dict(state["strategy"])
        self.generator.set_state(state["generator"])



def search_trial(spec: RunSpec, space: SpaceLike, scale: str = "quick",
                 overrides: dict | None = None) -> dict | None:
    """Run (or resume) one search trial; None when it is finished and spec.force is off.

    `space` is resolved here, once (`nasib.presets.configure`); config.json records its name, m and
    K, and its whole record (`space_record`) only when those would not rebuild it (a planted space).
    `overrides` are NasibSearchConfig fields (budget, epochs, priors, a partial `data`, ...;
    unknown keys fail). Where the data lives comes from spec.data; which subsets, from the
    scale (and overrides), as for retraining.
    """
    t_start = time.monotonic()  # the budget counts from here
    over = dict(overrides or {})
    over["data"] = {**(over.get("data") or {}), **data_location(spec)}
    cfg, value = configure(scale, space, over)
    budget = BudgetClock(cfg.budget, cfg.k, cfg.epochs, used_s=time.monotonic() - t_start)

    def build(splits: Splits, device: torch.device) -> NasibSearch:
        return NasibSearch(cfg, splits, device, spec.seed, budget=budget, space=value)

    extra = {} if value == cfg.named_space() else {"space_record": value.to_record()}
    return run_recipe(spec, Recipe(
        family="nasib", strategy=get_strategy(cfg.strategy).name, space=cfg.space, scale=scale, config=asdict(cfg),
        data=cfg.data, build=build, batch_size=cfg.batch_size, layers=cfg.layers, budget=cfg.budget,
        clock=budget, extra=extra))
