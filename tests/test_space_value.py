"""The search space is a value: it carries what made it, is resolved once, and arch.json rebuilds it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import nascore.spaces as spaces
import nasib.presets as nasib_presets
from benchmarks.planted import ENAS_TASK, coloured_splits
from contract.names import METHOD_SPACES, SPACES
from enas_ext.child import FixedChild, arch_to_dict
from enas_ext.presets import configure
from enas_ext.search import EnasSearch
from nascore.config import ConfigError
from nascore.data import DataConfig
from nascore.loop import RunSpec
from nascore.spaces import Space, get_space, planted_space, resolve_space
from nasib.__main__ import cli as nasib_cli
from nasib.presets import NasibSearchConfig, apply_overrides, preset
from nasib.presets import configure as nasib_configure
from nasib.search import NasibSearch, search_trial
from nasib.supernet import FixedNet
from retraining.train import load_arch

ROOT = Path(__file__).resolve().parents[1]
TINY = {"layers": 3, "channels": 4, "batch_size": 8, "eval_batch": 8,
        "controller": {"train_steps": 1, "num_aggregate": 2, "lstm_size": 8}}
NASIB_TINY = {"layers": 4, "channels": 4, "batch_size": 16, "eval_batch_size": 32, "epochs": 1,
              "data": {"train_size": 64, "valid_size": 32}}


@pytest.mark.parametrize("space", [get_space("original"), get_space("narrow"), get_space("superkernel", 4, 3),
                                   get_space("extended", extra=("conv1x1", "conv9x9")),
                                   planted_space(get_space("extended"), "conv1x5", "lossy"),
                                   planted_space(get_space("superkernel", 3, 2), "sep3x3")])
def test_a_space_survives_its_record(space):
    record = json.loads(json.dumps(space.to_record()))  # as it lies in a file
    assert Space.from_record(record) == resolve_space(record) == space
    assert resolve_space(space) is space and resolve_space(space.name).name == space.name


def test_a_named_space_records_its_name_and_only_the_parameters_it_has():
    assert get_space("original").to_record() == {"space": "original"}  # ENAS arch.json stays as it was
    assert get_space("extended").to_record() == {"space": "extended"}
    assert get_space("superkernel", 5, 4).to_record() == {"space": "superkernel", "m": 5, "K": 4}
    planted = planted_space(get_space("narrow"), "sep5x5")
    assert planted.to_record() == {"space": "narrow", "planted": "sep5x5", "planted_form": "noise"}
    with pytest.raises(ValueError, match="already has planted op"):
        planted_space(planted, "sep3x3")


def test_which_spaces_each_family_accepts_is_said_once():
    assert set(METHOD_SPACES) == {"enas", "nasib", "retrain"} and METHOD_SPACES["retrain"] == SPACES
    assert not set(METHOD_SPACES["enas"]) & set(METHOD_SPACES["nasib"])
    with pytest.raises(ValueError, match="unknown enas space 'narrow'; valid: original, extended"):
        configure("smoke", get_space("narrow"))


def test_enas_searches_the_space_value_it_is_handed_without_looking_it_up_again(monkeypatch):
    space = planted_space(get_space("extended"), "conv3x3", "lossy")
    monkeypatch.setattr(spaces, "get_space", lambda *a, **k: pytest.fail("the space was looked up again"))
    cfg = configure("smoke", space, TINY)
    search = EnasSearch(cfg, coloured_splits(16, 8, 0, ENAS_TASK), torch.device("cpu"), 0, space=space)
    assert search.child.op_names == space.ops and cfg.released_op == space.ops[-1]
    record = search.run_epoch(0)
    assert 0.0 <= record["valid_acc"] <= 1.0
    arch = arch_to_dict(space, [0, 1, 2], [[], [1], [0, 1]], 4, 3)
    assert arch["planted"] == "conv3x3" and arch["ops"][0] == space.ops[0] == "conv3x3"
    monkeypatch.undo()  # a record read back is looked up, once: that is what a record is for
    # the planted arch.json rebuilds its space
    assert FixedChild(json.loads(json.dumps(arch))).op_names == list(space.ops[:3])
    with pytest.raises(ConfigError, match="is not in the extended space"):  # a config for another space
        EnasSearch(cfg, coloured_splits(16, 8, 0, ENAS_TASK), torch.device("cpu"), 0,
                   space=get_space("extended", extra=("conv1x1",)))


def _arch_file(tmp_path: Path, arch: dict) -> Path:
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(arch))
    return path


def test_retraining_rebuilds_the_space_from_arch_json(tmp_path):
    small = {"space": "superkernel", "m": 3, "K": 2, "ops": ["conv1x2", "sep3x3"], "layers": 2, "method": "nasib"}
    assert load_arch(_arch_file(tmp_path, small))["m"] == 3
    with pytest.raises(ConfigError, match=r"'ops'\[1\]: 'conv9x9' is not an op of space 'superkernel'"):
        load_arch(_arch_file(tmp_path, {**small, "ops": ["conv1x2", "conv9x9"]}))  # beyond its m
    with pytest.raises(ConfigError, match=r"'ops'\[0\]: 'conv3x3'"):
        load_arch(_arch_file(tmp_path, {**small, "ops": ["conv3x3", "sep3x3"]}))  # K=2 makes it separable


def test_old_arch_json_files_with_a_name_only_still_load(tmp_path):
    # sep7x1 is no op of the default superkernel (7 <= K = 9): the file's own K was not recorded
    old = {"space": "superkernel", "ops": ["conv3x3", "sep7x1"], "layers": 2, "method": "nasib"}
    assert load_arch(_arch_file(tmp_path, old))["ops"] == old["ops"]
    with pytest.raises(ConfigError, match=r"'ops'\[1\]: 'cnv7x1'"):
        load_arch(_arch_file(tmp_path, {**old, "ops": ["conv3x3", "cnv7x1"]}))  # still held to the op grammar
    shipped = sorted((ROOT / "results" / "reference").glob("*/*/*/arch.json"))
    assert shipped, "the committed reference records hold arch.json files"
    for path in shipped:
        arch = load_arch(path)
        assert resolve_space(arch).name == arch["space"]


def test_nasib_searches_the_planted_space_it_is_handed_and_its_other_ops_carry_no_input(monkeypatch):
    space = planted_space(get_space("superkernel", 3, 2), "sep3x3")
    cfg, value = nasib_configure("smoke", space, NASIB_TINY)
    assert value is space and (cfg.space, cfg.m, cfg.K) == ("superkernel", 3, 2)
    for module in (spaces, nasib_presets):
        monkeypatch.setattr(module, "get_space", lambda *a, **k: pytest.fail("the space was looked up again"))
    search = NasibSearch(cfg, coloured_splits(64, 32, 0), torch.device("cpu"), 0, space=space)
    assert search.op_names == space.ops and 0.0 <= search.run_epoch(0)["valid_acc"] <= 1.0
    x, y = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)

    def out(block, inp):
        torch.manual_seed(0)  # the same noise for both inputs, where an op makes noise
        return block.op(inp)

    for name, block in zip(space.ops, search.model.layers[0].ops, strict=True):
        assert torch.equal(out(block, x), out(block, y)) == (name != "sep3x3"), name  # only sep3x3 reads x


def test_nasib_arch_json_leads_with_its_space_and_rebuilds_it(tmp_path, tiny_data):
    space = planted_space(get_space("superkernel", 3, 2), "conv1x2", "zero")
    data = DataConfig(data_dir=str(tiny_data))
    search_trial(RunSpec(out=tmp_path / "planted", seed=0, device="cpu", data=data), space, "smoke", NASIB_TINY)
    path = tmp_path / "planted" / "arch.json"
    arch, config = load_arch(path), json.loads((tmp_path / "planted" / "config.json").read_text())
    assert Space.from_record(arch) == resolve_space(arch) == space and set(arch["ops"]) <= set(space.ops)
    assert config["space_record"] == space.to_record() and "planted" not in config["config"]
    assert FixedNet(arch).op_names == tuple(arch["ops"])  # retraining builds it as any other arch.json
    search_trial(RunSpec(out=tmp_path / "named", seed=0, device="cpu", data=data), "narrow", "smoke", NASIB_TINY)
    named = json.loads((tmp_path / "named" / "arch.json").read_text())
    assert list(named) == ["space", "ops", "channels", "layers", "family", "strategy"] and named["space"] == "narrow"
    assert "space_record" not in json.loads((tmp_path / "named" / "config.json").read_text())


@pytest.mark.parametrize("name", [s for s in SPACES if s not in METHOD_SPACES["nasib"]])
def test_nasib_refuses_every_space_method_spaces_does_not_give_it(name):
    message = f"unknown nasib space {name!r}; valid: {', '.join(METHOD_SPACES['nasib'])}"
    for make in (lambda: preset("smoke", name), lambda: NasibSearchConfig(space=name),
                 lambda: apply_overrides(preset("smoke", "narrow"), {"space": name}),
                 lambda: nasib_configure("quick", get_space(name))):
        with pytest.raises(ValueError, match=f"{message}$"):
            make()
    result = CliRunner().invoke(nasib_cli, ["search", "--space", name, "--epochs", "1"])
    assert result.exit_code == 2 and all(s in result.output for s in (name, *METHOD_SPACES["nasib"]))


def test_a_nasib_name_takes_the_config_s_m_and_k_and_a_value_refuses_a_contrary_config():
    assert nasib_configure("smoke", "superkernel", {"m": 3, "K": 2})[1] == get_space("superkernel", 3, 2)
    with pytest.raises(ValueError, match=r"config space superkernel \(m=4, K=2\) but the search was handed "
                                         r"space superkernel \(m=3, K=2\)"):
        nasib_configure("smoke", get_space("superkernel", 3, 2), {"m": 4})
    with pytest.raises(ValueError, match="config space 'narrow' but the search was handed space 'superkernel'"):
        NasibSearch(preset("smoke", "narrow"), coloured_splits(64, 32, 0), torch.device("cpu"), 0,
                    space=get_space("superkernel", 2, 2))
