"""ENAS as released vs as intended: the branch mode, skip-bit wiring in deep layers, the release's details."""
from __future__ import annotations

import json
import math
import random

import pytest
import torch
from click.testing import CliRunner

from enas_ext.__main__ import cli
from enas_ext.child import (
    BN_EPS,
    BN_EPS_SEARCH_OP,
    FixedChild,
    SharedChild,
    arch_to_dict,
    fixed_op,
    init_weights,
    release_fan_in,
    search_op,
)
from enas_ext.controller import set_tf_adam_eps
from enas_ext.presets import configure
from enas_ext.search import clip_per_tensor_
from nascore.config import ConfigError
from nascore.data import AugmentConfig, DeviceLoader, Split
from nascore.spaces import get_space

ORIGINAL, EXTENDED = get_space("original").ops, get_space("extended").ops


def _arch(layers: int, n_ops: int, seed: int) -> tuple[list[int], list[list[int]]]:
    """A random architecture."""
    rng = random.Random(seed)
    return ([rng.randrange(n_ops) for _ in range(layers)],
            [[rng.randint(0, 1) for _ in range(k)] for k in range(layers)])


def _logits(child: SharedChild, ops: list[int], skips: list[list[int]]) -> torch.Tensor:
    """Eval-mode logits of one fixed input batch."""
    torch.manual_seed(1)
    x = torch.randn(4, 3, 16, 16)
    child.eval()
    with torch.no_grad():
        return child(x, ops, skips)


@pytest.mark.parametrize("ops_names", [ORIGINAL, EXTENDED], ids=["original", "extended"])
def test_as_released_output_ignores_sampled_ops_intended_does_not(ops_names):
    torch.manual_seed(0)
    intended = SharedChild(ops_names, layers=4, channels=4)
    released = SharedChild(ops_names, layers=4, channels=4, branch_mode="as-released")
    released.load_state_dict(intended.state_dict())
    (a, skips), (b, _) = _arch(4, len(ops_names), 1), _arch(4, len(ops_names), 2)
    b = [(i + 1) % len(ops_names) for i in a]  # every layer's op differs
    assert torch.equal(_logits(released, a, skips), _logits(released, b, skips))
    assert not torch.allclose(_logits(intended, a, skips), _logits(intended, b, skips))
    # What runs as released is the last op in every layer, i.e. intended with that op everywhere.
    last = [len(ops_names) - 1] * 4
    assert torch.equal(_logits(released, a, skips), _logits(intended, last, skips))


def test_released_op_names_the_op_every_layer_runs():
    torch.manual_seed(0)
    intended = SharedChild(EXTENDED, layers=4, channels=4)
    released = SharedChild(EXTENDED, layers=4, channels=4, branch_mode="as-released", released_op="conv1x3")
    released.load_state_dict(intended.state_dict())
    ops, skips = _arch(4, len(EXTENDED), 3)
    assert torch.equal(_logits(released, ops, skips),
                       _logits(intended, [EXTENDED.index("conv1x3")] * 4, skips))
    # Skips still change the output as released: only the op decisions are ignored.
    other = [[1 - b for b in row] for row in skips]
    assert not torch.allclose(_logits(released, ops, skips), _logits(released, ops, other))


def test_bad_branch_mode_or_released_op_is_one_line():
    with pytest.raises(ValueError, match="unknown branch mode 'released'; valid: intended, as-released"):
        SharedChild(ORIGINAL, layers=2, channels=4, branch_mode="released")
    with pytest.raises(ValueError, match="conv7x7"):
        SharedChild(ORIGINAL, layers=2, channels=4, branch_mode="as-released", released_op="conv7x7")
    with pytest.raises(ConfigError, match="released_op 'conv7x7' is not in the original space; valid: "):
        configure("smoke", "original", {"branch_mode": "as-released", "released_op": "conv7x7"})
    with pytest.raises(ConfigError, match="branch_mode"):
        configure("smoke", "original", {"branch_mode": "both"})


def test_config_resolves_released_op_to_the_space_last_op():
    assert configure("smoke", "original").released_op == "maxpool3x3"
    assert configure("smoke", "extended").released_op == EXTENDED[-1]
    assert configure("smoke", "extended", {"released_op": "conv3x3"}).released_op == "conv3x3"
    assert configure("smoke", "original").branch_mode == "intended"


def _no_reductions(child):
    """The same child with no reduction points, so every stored output keeps its size."""
    child.reduce_at = ()
    return child


@pytest.mark.parametrize("k,j", [(2, 1), (3, 2), (4, 1), (4, 3), (4, 0), (3, 0)])
def test_search_skip_bit_j_adds_layer_j_minus_1_output(k, j):
    """Bit j of layer k is layer j-1's output (j = 0: the stem), in deep layers too."""
    torch.manual_seed(0)
    layers = 5
    child = _no_reductions(SharedChild(ORIGINAL, layers=layers, channels=4)).eval()
    ops = [0, 2, 1, 3, 0]
    skips = [[0] * i for i in range(layers)]
    skips[k][j] = 1
    outs, pre_bn = {}, {}
    child.stem.register_forward_hook(lambda m, i, o: outs.__setitem__(-1, o))
    child.cells[0][ops[0]].register_forward_hook(lambda m, i, o: outs.__setitem__(0, o))
    child.cells[k][ops[k]].register_forward_hook(lambda m, i, o: outs.__setitem__("op", o))
    for layer in range(1, layers):
        child.skip_bn[layer - 1].register_forward_hook(lambda m, i, o, n=layer: outs.__setitem__(n, o))
        child.skip_bn[layer - 1].register_forward_pre_hook(lambda m, i, n=layer: pre_bn.__setitem__(n, i[0]))
    with torch.no_grad():
        child(torch.randn(2, 3, 8, 8), ops, skips)
    assert torch.allclose(pre_bn[k] - outs["op"], outs[j - 1], atol=1e-6)


@pytest.mark.parametrize("k,j", [(3, 2), (4, 1), (4, 3), (5, 0), (5, 4)])
def test_fixed_skip_bit_j_concatenates_layer_j_minus_1_output(k, j):
    """Same in the final net, whose stored outputs also pass the reductions between j-1 and k."""
    torch.manual_seed(0)
    layers = 6  # reductions after layers 1 and 3
    skips = [[0] * i for i in range(layers)]
    skips[k][j] = 1
    arch = arch_to_dict("original", [0, 2, 1, 3, 0, 2], skips, 4, layers)
    child = FixedChild(arch).eval()
    outs, cat_in = {}, {}
    child.stem.register_forward_hook(lambda m, i, o: outs.__setitem__(-1, o))
    child.cells[0].register_forward_hook(lambda m, i, o: outs.__setitem__(0, o))
    for layer in range(1, layers):
        child.skip_convs[layer - 1].register_forward_hook(lambda m, i, o, n=layer: outs.__setitem__(n, o))
        child.skip_convs[layer - 1].register_forward_pre_hook(lambda m, i, n=layer: cat_in.__setitem__(n, i[0]))
    for p, r in enumerate(child.reduce_at):  # a stored output read after reduction r is its reduced form
        if j - 1 <= r < k:
            child.reductions[p][str(j)].register_forward_hook(lambda m, i, o: outs.__setitem__(j - 1, o))
    with torch.no_grad():
        child(torch.randn(2, 3, 8, 8))
    expected = outs[j - 1]
    assert torch.equal(cat_in[k][:, :expected.shape[1]], expected)


def test_bn_epsilon_follows_the_release():
    conv = search_op("conv3x3", 4)
    eps = [m.eps for m in conv.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert eps == [BN_EPS, BN_EPS_SEARCH_OP] and BN_EPS_SEARCH_OP == 1e-3 and BN_EPS == 1e-5
    pool = search_op("maxpool3x3", 4)
    assert [m.eps for m in pool.modules() if isinstance(m, torch.nn.BatchNorm2d)] == [BN_EPS]
    fixed = fixed_op("conv3x3", 4)
    assert {m.eps for m in fixed.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {BN_EPS}


def test_init_is_truncated_he_normal_with_tensorflow_fan_in():
    c, k = 64, 5
    depthwise = torch.nn.Conv2d(c, c, k, groups=c, bias=False)
    dense = torch.nn.Conv2d(c, 32, (3, 1), bias=False)
    assert release_fan_in(depthwise) == k * k * c  # TF counts the C input channels of a depthwise kernel
    assert release_fan_in(dense) == 3 * 1 * c
    assert release_fan_in(torch.nn.Linear(36, 10)) == 36
    torch.manual_seed(0)
    big = torch.nn.Sequential(torch.nn.Conv2d(256, 256, 3, groups=256, bias=False), torch.nn.Linear(400, 300))
    init_weights(big)
    for m, fan_in in ((big[0], 9 * 256), (big[1], 400)):
        std = math.sqrt(2.0 / fan_in)
        w = m.weight.detach()
        assert w.abs().max() <= 2 * std
        # A normal truncated at 2 sigma keeps 0.8796 of sigma (TF1's he_normal does not rescale).
        assert w.std().item() == pytest.approx(0.8796 * std, rel=0.05 if w.numel() > 50_000 else 0.15)


def test_crop_pads_with_the_mean_colour():
    x = torch.full((64, 3, 8, 8), 10, dtype=torch.uint8)
    mean, std = (100.0, 50.0, 20.0), (2.0, 5.0, 10.0)
    loader = DeviceLoader(Split(x, torch.zeros(64, dtype=torch.long)), 64, "cpu", mean, std,
                          AugmentConfig(pad=4, flip=False))
    torch.manual_seed(0)
    out = loader.prepare(x)
    image = torch.tensor([(10 - m) / s for m, s in zip(mean, std, strict=True)]).view(1, 3, 1, 1)
    is_pad, is_image = out == 0, torch.isclose(out, image.expand_as(out))
    assert bool((is_pad | is_image).all()) and is_pad.any() and is_image.any()


def test_child_epoch_has_ceil_batches_all_full():
    n, b = 45, 8
    split = Split(torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 1, 1).clone(),
                  torch.arange(n))
    loader = DeviceLoader(split, b, "cpu", (0, 0, 0), (1, 1, 1), fill_last=True)
    batches = [y for _, y in loader]
    assert len(loader) == len(batches) == math.ceil(n / b) == 6
    assert all(len(y) == b for y in batches)
    assert set(torch.cat(batches).tolist()) == set(range(n))  # every image once per pass, plus a top-up
    assert len(DeviceLoader(split, b, "cpu", (0, 0, 0), (1, 1, 1))) == n // b


def test_controller_adam_takes_tensorflows_step():
    lr, beta2, eps = 1e-3, 0.999, 1e-3
    p = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.Adam([p], lr=lr, betas=(0.0, beta2), eps=eps)
    grads = [torch.tensor([0.5, -2e-3, 1e-5]), torch.tensor([-0.1, 4e-3, 0.0])]
    v, expected = torch.zeros(3), torch.zeros(3)
    for t, g in enumerate(grads, start=1):
        p.grad = g.clone()
        set_tf_adam_eps(opt, eps)
        opt.step()
        # TensorFlow: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); step = lr_t m / (sqrt(v) + eps); b1 = 0 so m = g.
        v = beta2 * v + (1 - beta2) * g * g
        expected -= lr * math.sqrt(1 - beta2**t) * g / (v.sqrt() + eps)
        assert torch.allclose(p.detach(), expected, rtol=1e-5, atol=1e-9)


def test_clip_is_per_tensor():
    grads = [torch.tensor([3.0, 4.0]) * 2, torch.tensor([0.3, 0.4]), torch.tensor([6.0, 8.0])]
    clip_per_tensor_(grads, 5.0)
    assert [round(g.norm().item(), 5) for g in grads] == [5.0, 0.5, 5.0]
    assert torch.allclose(grads[0], torch.tensor([3.0, 4.0]))  # direction kept, only that tensor scaled


def test_cli_as_released_records_its_mode(tmp_path, tiny_data):
    out = tmp_path / "enas-original-released-s0"
    result = CliRunner().invoke(cli, [
        "search", "--space", "original", "--scale", "smoke", "--epochs", "1", "--layers", "3",
        "--channels", "4", "--branch-mode", "as-released", "--bn-eval", "running", "--out", str(out),
        "--device", "cpu", "--data-dir", str(tiny_data), "--train-size", "64", "--valid-size", "100"])
    assert result.exit_code == 0, result.output
    conf = json.loads((out / "config.json").read_text())
    assert conf["branch_mode"] == conf["config"]["branch_mode"] == "as-released"
    assert conf["config"]["released_op"] == "maxpool3x3" and conf["config"]["bn_eval"] == "running"
    arch = json.loads((out / "arch.json").read_text())
    assert len(arch["ops"]) == 3  # the controller's own choices: the final architecture is unaffected
    help_text = CliRunner().invoke(cli, ["search", "--help"]).output
    assert "--branch-mode [intended|as-released]" in help_text and "--released-op OP" in help_text


def _searcher(tiny_data, **over):
    """A tiny ENAS searcher on the fake data."""
    from enas_ext.search import EnasSearch
    from nascore.data import load_splits

    cfg = configure("smoke", "original", {
        "layers": 4, "channels": 4, "batch_size": 32, "eval_batch": 50,
        "controller": {"train_steps": 2, "num_aggregate": 3},
        "data": {"valid_size": 100, "train_size": 192, "data_dir": str(tiny_data)}, **over})
    torch.manual_seed(0)
    splits = load_splits(cfg.data)
    return EnasSearch(cfg, splits, torch.device("cpu"), 0), splits


def _spy(searcher):
    """Record every child forward: input, module mode, BN modes."""
    calls, forward = [], searcher.child.forward

    def spy(x, *args, **kwargs):
        bn = [m.training for m in searcher.child.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        calls.append((x.clone(), searcher.child.training, set(bn)))
        return forward(x, *args, **kwargs)

    searcher.child.forward = spy
    return calls


@pytest.mark.parametrize("rule,bn_training", [("running", False), ("batch", True)])
def test_rewards_use_eval_mode_on_unaugmented_valid_batches_one_per_sample(tiny_data, rule, bn_training):
    s, splits = _searcher(tiny_data, bn_eval=rule)
    buffers = {k: v.clone() for k, v in s.child.state_dict().items()}
    calls = _spy(s)
    s.controller_epoch()
    cfg = s.cfg.controller
    assert len(calls) == cfg.train_steps * cfg.num_aggregate  # one minibatch per sampled architecture
    mean, std = torch.tensor(splits.mean).view(1, 3, 1, 1), torch.tensor(splits.std).view(1, 3, 1, 1)
    valid = ((splits.valid.x.float() - mean) / std).flatten(1)
    for i, (x, training, bn) in enumerate(calls):
        assert not training and bn == {bn_training}  # dropout off; BN statistics per the rule
        assert len(x) == s.cfg.batch_size
        # Every image is a held-out image exactly as stored: no crop, no flip.
        assert torch.cdist(x.flatten(1), valid, compute_mode="donot_use_mm_for_euclid_dist").min(1).values.max() < 1e-4
        if i:
            assert not torch.equal(x, calls[i - 1][0])  # each sample gets the next minibatch
    assert all(torch.equal(v, buffers[k]) for k, v in s.child.state_dict().items())  # BN buffers untouched


def test_evaluate_applies_each_rule_and_restores_statistics(tiny_data):
    s, _ = _searcher(tiny_data)
    archs = [_arch(4, 6, i) for i in range(len(s.eval_loader))]
    buffers = {k: v.clone() for k, v in s.child.state_dict().items()}

    def by_hand(bn_train: bool) -> float:
        s.child.eval()
        for m in s.child.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.train(bn_train)
                m.momentum = 0.0 if bn_train else m.momentum
        with torch.no_grad():
            total = sum(int((s.child(x, *a).argmax(1) == y).sum())
                        for (x, y), a in zip(s.eval_loader, archs, strict=True))
        s.child.load_state_dict(buffers)
        for m in s.child.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = 0.1
        return total

    running, batch = int(s.evaluate("running", archs)), int(s.evaluate("batch", archs))
    assert running == by_hand(False) and batch == by_hand(True)
    s.child.train()
    s.evaluate("recalibrate", archs)
    assert all(torch.equal(v, buffers[k]) for k, v in s.child.state_dict().items())
    assert s.child.training  # back to training mode for the next child epoch


def test_bn_rules_probe_scores_the_same_architectures_under_every_rule(tmp_path, tiny_data):
    out = tmp_path / "t"
    args = ["search", "--scale", "smoke", "--epochs", "1", "--layers", "3", "--channels", "4", "--out", str(out),
            "--device", "cpu", "--data-dir", str(tiny_data), "--train-size", "64", "--valid-size", "100"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    before = (out / "checkpoint.pt").read_bytes()
    result = CliRunner().invoke(cli, ["bn-rules", str(out), "-n", "3", "--reference-batches", "2"])
    assert result.exit_code == 0, result.output
    rec = json.loads((out / "bn_rules.json").read_text())
    assert set(rec["rules"]) == {"running", "batch", "recalibrate", "recalibrate-2"}
    assert rec["reference"] == "recalibrate-2" and rec["rules"]["recalibrate-2"]["mean_abs_gap_to_reference"] == 0
    assert all(len(r["per_arch"]) == 3 and 0 <= r["mean_acc"] <= 1 for r in rec["rules"].values())
    assert (out / "checkpoint.pt").read_bytes() == before  # probing never changes the trial's state
    bad = CliRunner().invoke(cli, ["bn-rules", str(tmp_path)])
    assert bad.exit_code != 0 and "Traceback" not in bad.output


def test_release_option_set_is_the_release_as_a_whole():
    cfg = configure("smoke", "extended", {"options": "release"})
    assert (cfg.options, cfg.branch_mode, cfg.bn_eval, cfg.grad_clip) == ("release", "as-released", "running", 0.0)
    assert cfg.released_op == EXTENDED[-1]  # the release's last-built branch
    kit = configure("smoke", "extended")  # the kit's deviations stay the default
    assert (kit.options, kit.branch_mode, kit.bn_eval, kit.grad_clip) == ("kit", "intended", "batch", 5.0)


def test_release_option_set_refuses_a_conflicting_override_or_an_unknown_name():
    with pytest.raises(ConfigError, match=r"option set 'release' conflicts with grad_clip=5\.0") as err:
        configure("smoke", "original", {"options": "release", "grad_clip": 5.0})
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"unknown ENAS option set 'releas'; valid: kit, release"):
        configure("smoke", "original", {"options": "releas"})


def test_release_searcher_skips_the_clip_and_rewards_from_running_statistics(tiny_data, monkeypatch):
    s, splits = _searcher(tiny_data, options="release")
    calls = _spy(s)
    s.controller_epoch()
    assert calls and all(bn == {False} for _, _, bn in calls)  # moving averages, as the release
    import enas_ext.search as search

    monkeypatch.setattr(search, "clip_per_tensor_", lambda *a: pytest.fail("the release does not clip"))
    x, y = splits.train.x[:32].float(), splits.train.y[:32]
    s.train_step(x, y, [0] * s.cfg.layers, [[0] * k for k in range(s.cfg.layers)])


def test_cli_release_options_record_the_set_and_refuse_a_contradiction(tmp_path, tiny_data):
    args = ["search", "--space", "original", "--scale", "smoke", "--epochs", "1", "--layers", "3",
            "--channels", "4", "--device", "cpu", "--data-dir", str(tiny_data), "--train-size", "64",
            "--valid-size", "100", "--options", "release"]
    out = tmp_path / "enas-original-release-s0"
    result = CliRunner().invoke(cli, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    conf = json.loads((out / "config.json").read_text())["config"]
    assert (conf["options"], conf["branch_mode"], conf["bn_eval"], conf["grad_clip"]) == (
        "release", "as-released", "running", 0.0)
    bad = tmp_path / "contradiction"
    result = CliRunner().invoke(cli, [*args, "--bn-eval", "batch", "--out", str(bad)])
    assert result.exit_code != 0 and "option set 'release' conflicts with bn_eval='batch'" in result.output
    assert not bad.exists()  # refused before anything was written
