"""Which BN statistics give a sampled architecture's honest accuracy: one trained shared child, every rule.

Collect step only (analysis reads the JSON it writes). From a trial's checkpoint, draw
`num_archs` architectures from its controller and score each on the whole valid split
under every rule of `nascore.bn`: same weights, same architectures, same images. The
reference is `recalibrate` with many calibration batches: the architecture's own
statistics, as a stand-alone network with these weights would have them.
"""
from __future__ import annotations

from pathlib import Path

import torch

from enas_ext.search import EnasSearch, checkpointed_search, sampling_generator, to_lists
from nascore.bn import BN_RULES, bn_eval
from nascore.data import load_splits
from nascore.records import Trial
from nascore.runtime import resolve_device, seed_everything

PROBE_FILE = "bn_rules.json"


def _searcher(trial: Trial, device: torch.device, seed: int) -> EnasSearch:
    """The trial's searcher with its checkpointed child and controller restored."""
    cfg, space, state = checkpointed_search(trial)
    seed_everything(seed, True)
    searcher = EnasSearch(cfg, load_splits(cfg.data), device, seed, space=space)
    searcher.load_state_dict(state["searcher"])
    return searcher


def _score(s: EnasSearch, arch: tuple, rule: str, batches: int) -> float:
    """Correct count of one architecture over the whole valid split under `rule`."""
    every_batch = [arch] * len(s.eval_loader)
    if rule != "recalibrate":
        return float(s.evaluate(rule, every_batch))
    s.child.eval()  # one calibration for the whole split, then its statistics in eval mode
    with bn_eval(s.child, "recalibrate", lambda: s.calibrate(*arch, batches)):
        return float(s.evaluate("running", every_batch))


def probe(trial_dir: Path, num_archs: int = 10, reference_batches: int = 32, seed: int = 0,
          device: str = "cpu") -> dict:
    """Valid accuracy of `num_archs` sampled architectures under each BN rule; writes bn_rules.json."""
    trial = Trial(trial_dir)
    s = _searcher(trial, resolve_device(device), seed)
    with torch.no_grad():
        archs = to_lists(s.controller.sample(num_archs, sampling_generator(seed + 1)))
    n_valid = len(s.eval_loader.split)
    cfg = s.cfg
    rules = {r: (r, cfg.bn_calibrate_batches) for r in BN_RULES}
    rules[f"recalibrate-{reference_batches}"] = ("recalibrate", reference_batches)
    accs = {label: [_score(s, arch, rule, batches) / n_valid for arch in archs]
            for label, (rule, batches) in rules.items()}
    ref = accs[f"recalibrate-{reference_batches}"]
    summary = {label: {"mean_acc": sum(a) / len(a),
                       "mean_abs_gap_to_reference": sum(abs(x - r) for x, r in zip(a, ref, strict=True)) / len(a),
                       "per_arch": a} for label, a in accs.items()}
    record = {"trial": trial.path.name, "branch_mode": cfg.branch_mode, "space": cfg.space,
              "num_archs": num_archs, "valid_images": n_valid, "calibrate_batches": cfg.bn_calibrate_batches,
              "reference": f"recalibrate-{reference_batches}", "batch_size": cfg.batch_size,
              "eval_batch": cfg.eval_batch, "rules": summary}
    trial.write_json(PROBE_FILE, record)
    return record
