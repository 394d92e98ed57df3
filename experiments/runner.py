"""Experiment configs -> trial plans: load and validate YAML, expand to trials, dedupe, order.

A config (configs/<name>.yaml, schema in docs/experiments.md) lists trial groups; each group
expands to one trial per (budget x seed) at a scale. Shared groups point at another
experiment's folders, so one trial feeds several figures and runs once. Running a plan
(method registry, skip/resume, outcomes) lives in experiments.launchers. Neither module
imports torch or a method until a trial runs, so listing, dry runs and tests stay fast.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

from contract.budget import Budget, BudgetError
from contract.names import METHOD_SPACES as SPACES  # which spaces each method family takes, said once
from contract.names import OPTIONAL_SCALES, SCALES, STRATEGIES
from nascore.config import ConfigError, deep_merge, from_dict, read_yaml

CONFIG_DIR = Path(__file__).with_name("configs")

PLACEHOLDERS = ("seed", "space", "budget", "strategy", "family")
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class ExperimentError(ValueError):
    """An unknown experiment or scale, or seeds that cannot be used."""


@dataclass(frozen=True)
class Budgets:
    """Budget labels of a NASIB group, per scale (the same figure, smaller clocks); parsed into
    `Budget` values (a Budget is its label) when the config is loaded."""

    smoke: tuple[str, ...]  # e.g. ["30s", "60s"]: 2-core CPU
    quick: tuple[str, ...]  # e.g. ["2m", "4m"]: one GPU, under ~30 minutes a figure
    paper: tuple[str, ...]  # the paper's settings


@dataclass(frozen=True)
class Group:
    """One trial group of a config: a method family on a space, expanded over budgets and seeds."""

    id: str  # trial-id template; {seed} required, {space} {budget} {strategy} {family} optional
    family: str  # enas | nasib | retrain: the program that runs the trial
    space: str  # the search space (retrain: the source's space)
    strategy: str | None = None  # nasib only: nasib (default) | random | darts | snas
    budgets: Budgets | None = None  # nasib only: wall-clock budget labels per scale
    source: str | None = None  # retrain only: source trial-id template, "<experiment>/<template>" if foreign
    shared_with: str | None = None  # experiment owning these trials (their folders live there)
    overrides: dict = field(default_factory=dict)  # the family's settings over the scale's, for this group
    RENAMED: ClassVar[dict[str, str]] = {"method": "family"}  # configs before one name per axis (from_dict)


@dataclass(frozen=True)
class FamilyOverrides:
    """Per-family settings a scale passes to every trial of that family."""

    enas: dict = field(default_factory=dict)  # enas_ext.search.search_trial overrides
    nasib: dict = field(default_factory=dict)  # nasib.search.search_trial overrides
    retrain: dict = field(default_factory=dict)  # retraining.train.retrain_trial overrides


@dataclass(frozen=True)
class Scale:
    """How big one scale of an experiment is."""

    base: str  # the search scale (smoke | quick | paper) the overrides adjust; trials record it as scale
    seeds: tuple[int, ...] | None = None  # this scale's seeds (None: the config's)
    overrides: FamilyOverrides = field(default_factory=FamilyOverrides)  # per-family settings
    budgets: tuple[str, ...] | None = None  # optional scales only: every nasib group's budget labels here
    # Measured cost of the scale's new trials in CPU-hours (one thread a trial), shown by
    # `experiments list`; None where nobody measured it.
    cpu_hours: float | None = None
    RENAMED: ClassVar[dict[str, str]] = {"preset": "base"}  # configs before one name per axis (from_dict)


@dataclass(frozen=True)
class Scales:
    """The three scales every experiment defines."""

    smoke: Scale  # 2-core CPU, a few minutes for the figure
    quick: Scale  # one GPU, under ~30 minutes
    paper: Scale  # the paper's settings
    ci: Scale | None = None  # optional: a minutes-long run on one GPU for `make ci-gpu` (fig2 and fig5 define it)
    medium: Scale | None = None  # optional: hours on a 2-core CPU, above the scorecard's gates (analysis/gates.py)



@dataclass(frozen=True)
class _File:
    """The top level of a config file as written (trials are checked group by group)."""

    name: str  # experiment name: results/<name>/
    description: str  # one line for `python -m experiments list`
    seeds: tuple[int, ...]  # default seeds
    trials: list  # trial groups, parsed into Group one by one
    scales: Scales  # smoke | quick | paper settings


@dataclass(frozen=True)
class Experiment:
    """A parsed, validated experiment config."""

    name: str  # experiment name: results/<name>/
    description: str  # one line for `python -m experiments list`
    seeds: tuple[int, ...]  # default seeds
    trials: tuple[Group, ...]  # trial groups, in run order
    scales: Scales  # smoke | quick | paper settings
    path: Path  # the YAML it came from (errors name it; shared owners are found beside it)


@dataclass(frozen=True)
class TrialPlan:
    """One trial to run: everything the method needs, resolved."""

    experiment: str  # the experiment that asked for it
    owner: str  # the experiment whose folder holds it (itself unless shared)
    trial_id: str  # folder name, e.g. enas-extended-s0
    folder: Path  # results/<owner>/<trial_id>
    family: str  # enas | nasib | retrain
    space: str  # search space
    strategy: str | None  # nasib strategy, else None
    budget: Budget | None  # the budget (a Budget is its label), else None
    seed: int  # trial seed
    scale: str  # the search scale its settings start from (the config's base; config.json's `scale`)
    overrides: dict  # passed to the method as is (do not mutate)
    source: Path | None = None  # retrain: the arch.json to retrain

    @property
    def key(self) -> str:
        """'<owner>/<trial-id>', the name records use."""
        return f"{self.owner}/{self.trial_id}"


# --- loading and validation ---------------------------------------------------------------

def available(folder: Path = CONFIG_DIR) -> list[str]:
    """Names of the experiment configs in a folder."""
    return sorted(p.stem for p in Path(folder).glob("*.yaml"))


def load_config(name: str | Path, folder: Path = CONFIG_DIR) -> Experiment:
    """An experiment by name (from `folder`) or by path to a YAML file, validated."""
    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        path = Path(folder) / f"{name}.yaml"
        if not path.is_file():
            raise ExperimentError(f"unknown experiment {str(name)!r}; valid: {', '.join(available(folder))}")
    return parse_config(read_yaml(path), path)


def parse_config(raw: object, path: Path) -> Experiment:
    """Validate a config mapping; every error is one line naming the file and the key."""
    where = str(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping at top level")
    top = from_dict(_File, raw, where)
    if not top.trials:
        raise ConfigError(f"{where}.trials: expected a non-empty list of trial groups")
    parsed = tuple(_parse_group(g, f"{where}: trials[{i}]") for i, g in enumerate(top.trials))
    exp = Experiment(top.name, top.description, top.seeds, parsed, _parsed_scales(top.scales, where), path)
    if exp.name != path.stem:
        raise ConfigError(f"{where}.name: {exp.name!r} must equal the file name {path.stem!r}")
    if not exp.seeds:
        raise ConfigError(f"{where}.seeds: needs at least one seed")
    for scale in defined_scales(exp):
        if getattr(exp.scales, scale).base not in SCALES:
            raise ConfigError(f"{where}.scales.{scale}.base: {getattr(exp.scales, scale).base!r}; "
                              f"valid: {', '.join(SCALES)}")
    _check_optional_scales(exp, where)
    if any(g.shared_with == exp.name for g in parsed):
        raise ConfigError(f"{where}: a group cannot be shared_with its own experiment {exp.name!r}")
    return exp


def _parsed_scales(scales: Scales, where: str) -> Scales:
    """The optional scales' budget labels parsed (the other scales give theirs in the groups)."""
    chosen = {name: getattr(scales, name) for name in OPTIONAL_SCALES}
    return replace(scales, **{name: replace(sc, budgets=_parsed(sc.budgets, f"{where}.scales.{name}.budgets"))
                              for name, sc in chosen.items() if sc is not None and sc.budgets is not None})


def _parse_group(raw: object, where: str) -> Group:
    """One trial group, its per-family rules checked."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping")
    budgets = raw.get("budgets")
    group = from_dict(Group, {**raw, "budgets": None}, where)
    if budgets is not None:
        labels = from_dict(Budgets, budgets, f"{where}.budgets")
        group = replace(group, budgets=Budgets(**{s: _parsed(getattr(labels, s), f"{where}.budgets.{s}")
                                                  for s in SCALES}))
    _check_group(group, where)
    return group


def _parsed(labels: tuple[str, ...], where: str) -> tuple[Budget, ...]:
    """YAML budget labels parsed, here and once; a bad one is one line naming where it is."""
    try:
        return tuple(Budget.parse(label) for label in labels)
    except BudgetError as e:
        raise ConfigError(f"{where}: {e}") from None


def _check_group(g: Group, where: str) -> None:
    """Raise ConfigError for a group whose fields do not fit its family."""
    if g.family not in SPACES:
        raise ConfigError(f"{where}.family: {g.family!r}; valid: {', '.join(SPACES)}")
    if g.space not in SPACES[g.family]:
        raise ConfigError(f"{where}.space: {g.space!r} for {g.family}; valid: {', '.join(SPACES[g.family])}")
    for key, allowed in (("strategy", "nasib"), ("budgets", "nasib"), ("source", "retrain")):
        if getattr(g, key) is not None and g.family != allowed:
            raise ConfigError(f"{where}.{key}: only {allowed} groups take it, not {g.family}")
    if g.strategy is not None and g.strategy not in STRATEGIES:
        raise ConfigError(f"{where}.strategy: {g.strategy!r}; valid: {', '.join(STRATEGIES)}")
    if g.family == "retrain" and not g.source:
        raise ConfigError(f"{where}.source: retrain groups need the search trial to retrain")
    if g.source and set(re.findall(r"{(\w*)}", g.source)) - {"seed", "space"}:
        raise ConfigError(f"{where}.source: {g.source!r} may use only {{seed}} and {{space}}")
    names = set(re.findall(r"{(\w*)}", g.id))
    if names - set(PLACEHOLDERS) or "seed" not in names:
        raise ConfigError(f"{where}.id: {g.id!r} must use {{seed}} and only {', '.join(PLACEHOLDERS)}")
    for scale in SCALES if g.budgets else ():
        labels = getattr(g.budgets, scale)
        if not labels:
            raise ConfigError(f"{where}.budgets.{scale}: needs at least one label")
        if len(labels) > 1 and "budget" not in names:
            raise ConfigError(f"{where}.id: {g.id!r} needs {{budget}} to tell its budgets apart")


# --- expansion ----------------------------------------------------------------------------

def defined_scales(exp: Experiment) -> tuple[str, ...]:
    """The three scales every config has, then the optional ones this config defines."""
    return SCALES + tuple(s for s in OPTIONAL_SCALES if getattr(exp.scales, s) is not None)


def _check_optional_scales(exp: Experiment, where: str) -> None:
    """An optional scale names the budgets of the config's nasib groups, and only then."""
    for scale in SCALES:
        if getattr(exp.scales, scale).budgets is not None:
            raise ConfigError(f"{where}.scales.{scale}.budgets: only {', '.join(OPTIONAL_SCALES)} take budgets "
                              f"here; give the {scale} labels in the group's budgets")
    for scale in defined_scales(exp)[len(SCALES):]:
        labels, budgeted = getattr(exp.scales, scale).budgets, any(g.budgets for g in exp.trials)
        if budgeted and not labels:
            raise ConfigError(f"{where}.scales.{scale}.budgets: the nasib groups need budget labels at this scale")
        if labels and not budgeted:
            raise ConfigError(f"{where}.scales.{scale}.budgets: no group of this config takes a budget")


def scale_of(exp: Experiment, scale: str) -> Scale:
    """The named scale, or an error listing the valid ones."""
    if scale not in defined_scales(exp):
        raise ExperimentError(f"unknown scale {scale!r} for {exp.name}; valid: {', '.join(defined_scales(exp))}")
    return getattr(exp.scales, scale)


def _budgets(g: Group, sc: Scale, scale: str) -> tuple[Budget | None, ...]:
    """A group's budget labels at a scale (an optional scale gives its own), or (None,) without budgets."""
    if not g.budgets:
        return (None,)
    return sc.budgets if scale not in SCALES else getattr(g.budgets, scale)


def expand(exp: Experiment, scale: str, results: Path, seeds: Iterable[int] | None = None,
           check_shared: bool = True) -> list[TrialPlan]:
    """All trials of an experiment at a scale, shared ones checked against their owner, retrains last."""
    sc = scale_of(exp, scale)
    seeds = tuple(seeds) if seeds is not None else (sc.seeds or exp.seeds)
    rows = []
    for i, g in enumerate(exp.trials):
        for budget in _budgets(g, sc, scale):
            for seed in seeds:
                rows.append((i, g, _plan(exp, g, sc, results, budget, seed, f"{exp.path}: trials[{i}]")))
    plans = [p for _, _, p in rows]
    _check_unique_ids(exp, plans)
    plans = [_with_source(p, f"{exp.path}: trials[{i}].source", g, plans, results) for i, g, p in rows]
    if check_shared:
        _check_shared(exp, scale, results, seeds, plans)
    return order(dedupe(plans))


def _check_unique_ids(exp: Experiment, plans: list[TrialPlan]) -> None:
    """Two groups of one experiment must not expand to the same trial id."""
    seen: dict[str, TrialPlan] = {}
    for p in plans:
        if seen.setdefault(p.trial_id, p) is not p:
            raise ConfigError(f"{exp.path}: trial id {p.trial_id!r} comes out of two groups; "
                              f"make the id templates distinct")


def _plan(exp: Experiment, g: Group, sc: Scale, results: Path, budget: Budget | None, seed: int,
          where: str) -> TrialPlan:
    """One trial of a group."""
    strategy = (g.strategy or "nasib") if g.family == "nasib" else None
    tid = g.id.format(seed=seed, space=g.space, budget=budget, strategy=strategy, family=g.family)
    if not _SAFE_ID.fullmatch(tid):
        raise ConfigError(f"{where}.id: {tid!r} is not a safe folder name (letters, digits, . _ -)")
    overrides = deep_merge(getattr(sc.overrides, g.family), g.overrides)
    if g.family == "nasib":
        overrides = {**overrides, "strategy": strategy, **({"budget": budget} if budget else {})}
    owner = g.shared_with or exp.name
    return TrialPlan(exp.name, owner, tid, Path(results) / owner / tid, g.family, g.space, strategy,
                     budget, seed, sc.base, overrides)


def _with_source(plan: TrialPlan, where: str, g: Group, plans: list[TrialPlan], results: Path) -> TrialPlan:
    """A retrain plan with its source arch.json resolved; other plans unchanged."""
    if g.family != "retrain":
        return plan
    ref = g.source.format(seed=plan.seed, space=g.space, budget=None, strategy=None, family=g.family)
    if "/" in ref:
        parts = ref.split("/")
        if len(parts) != 2 or not all(_SAFE_ID.fullmatch(part) for part in parts):
            raise ConfigError(f"{where}: {ref!r} must read '<experiment>/<trial-id>'")
        folder = Path(results).joinpath(*parts)
    else:
        match = [p for p in plans if p.trial_id == ref and p.family != "retrain"]
        if not match:
            raise ConfigError(f"{where}: {ref!r} names no search trial of {plan.experiment}; "
                              f"write '<experiment>/{ref}' for another experiment's trial")
        if match[0].space != plan.space:
            raise ConfigError(f"{where}: {ref!r} searches space {match[0].space!r}, "
                              f"the group says {plan.space!r}")
        folder = match[0].folder
    return replace(plan, source=folder / "arch.json")


def _check_shared(exp: Experiment, scale: str, results: Path, seeds: tuple[int, ...],
                  plans: list[TrialPlan]) -> None:
    """Each shared plan must be a trial its owner defines with the very same settings."""
    owners: dict[str, dict[Path, TrialPlan]] = {}
    for p in (p for p in plans if p.owner != p.experiment):
        if p.owner not in owners:
            try:
                owner = load_config(p.owner, exp.path.parent)
            except ExperimentError as e:
                raise ConfigError(f"{exp.path}: shared_with: {e}") from None
            owners[p.owner] = {q.folder: q for q in expand(owner, scale, results, seeds, check_shared=False)
                               if q.owner == owner.name}
        theirs = owners[p.owner].get(p.folder)
        if theirs is None:
            raise ConfigError(f"{exp.path}: trial {p.trial_id!r} is shared_with {p.owner}, "
                              f"which defines no such trial at scale {scale}")
        for name in ("family", "space", "strategy", "budget", "scale", "overrides"):
            if getattr(p, name) != getattr(theirs, name):
                raise ConfigError(f"{exp.path}: shared trial {p.key} differs from {p.owner}'s in {name}: "
                                  f"{getattr(p, name)!r} here, {getattr(theirs, name)!r} there")


def dedupe(plans: Iterable[TrialPlan]) -> list[TrialPlan]:
    """One plan per folder (the first); two different plans for one folder is an error."""
    seen: dict[Path, TrialPlan] = {}
    for p in plans:
        first = seen.setdefault(p.folder, p)
        if first is not p and replace(first, experiment=p.experiment) != p:
            raise ConfigError(f"two different trials would share the folder {p.folder} "
                              f"({first.experiment} and {p.experiment}); give them distinct ids")
    return list(seen.values())


def order(plans: Iterable[TrialPlan]) -> list[TrialPlan]:
    """Searches first, retrains after every search (their sources), each in config order."""
    plans = list(plans)
    return [p for p in plans if p.family != "retrain"] + [p for p in plans if p.family == "retrain"]


def expand_all(names: Iterable[str], scale: str, results: Path, seeds: Iterable[int] | None = None,
               folder: Path = CONFIG_DIR) -> dict[str, list[TrialPlan]]:
    """Each named experiment's own trial list (shared trials included in every one that uses them)."""
    seeds = None if seeds is None else tuple(seeds)
    exps = [load_config(n, folder) for n in names]
    return {exp.name: expand(exp, scale, results, seeds) for exp in exps}


def merge(per_experiment: dict[str, list[TrialPlan]]) -> list[TrialPlan]:
    """One deduplicated, ordered plan out of several experiments' lists."""
    return order(dedupe(p for plans in per_experiment.values() for p in plans))


def plan_experiments(names: Iterable[str], scale: str, results: Path, seeds: Iterable[int] | None = None,
                     folder: Path = CONFIG_DIR) -> list[TrialPlan]:
    """Expand several experiments into one deduplicated, ordered plan."""
    return merge(expand_all(names, scale, results, seeds, folder))


def parse_seeds(text: str) -> tuple[int, ...]:
    """'0,1,2' -> (0, 1, 2); non-negative, distinct integers."""
    try:
        seeds = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise ExperimentError(f"--seeds {text!r}: expected comma-separated integers such as 0,1,2") from None
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ExperimentError(f"--seeds {text!r}: seeds must be distinct and non-negative")
    return seeds
