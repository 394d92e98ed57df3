"""The torch-free contract floor: typed trial errors that keep their type and message across processes,
one thread rule and one device rule with the same refusal on every command line, one op-name grammar."""
from __future__ import annotations

import functools
import pickle
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest
from click.testing import CliRunner

from analysis.claim_measures import kernel_shape
from contract.errors import NotAvailable, OutOfMemory
from contract.threads import parse_threads
from experiments.__main__ import cli as runner_cli
from experiments.launchers import FAILED, NOT_AVAILABLE, RunContext, run_one
from experiments.pool import PoolLauncher
from experiments.runner import expand, load_config
from nasib.__main__ import cli as nasib_cli

ROOT = Path(__file__).resolve().parents[1]
HINT = "CUDA out of memory at batch size 64 with 8 layers; lower --batch-size or --layers/--channels, or free the GPU"


def _raise(err: BaseException) -> None:
    raise err


def _gap_or_oom(plan, ctx):
    """A method (module level: pool workers import it) that reports a gap, or runs out of memory."""
    if plan.trial_id.startswith("nasib-narrow"):
        raise NotAvailable("this kit has no narrow NASIB search on this machine")  # no 'not implemented'
    raise OutOfMemory(HINT)


@pytest.mark.parametrize("err", [NotAvailable("strategy 'snas' is not implemented yet"), OutOfMemory(HINT)])
def test_typed_errors_keep_type_and_message_through_pickling(err):
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err) and str(back) == str(err)
    if isinstance(err, OutOfMemory):
        assert back.hint == HINT


def test_a_typed_error_raised_in_another_process_arrives_as_itself():
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as ex:
        with pytest.raises(OutOfMemory) as got:
            ex.submit(_raise, OutOfMemory(HINT)).result()
    assert got.value.hint == HINT


def test_pool_workers_sort_typed_errors_as_the_runner_does(tmp_path):
    plans = [p for p in expand(load_config("fig3"), "smoke", tmp_path, seeds=[0]) if p.strategy == "nasib"]
    assert [p.trial_id for p in plans] == ["nasib-narrow-s0", "nasib-superkernel-s0"]
    fn = functools.partial(run_one, ctx=RunContext(device="cpu"), methods={"nasib": _gap_or_oom})
    gap, oom = PoolLauncher(1, "1", "cpu").run(plans, fn)
    assert gap.status == NOT_AVAILABLE and not gap.failed and gap.detail.startswith("this kit has no narrow")
    assert oom.status == FAILED and oom.detail.startswith(f"OutOfMemory: {HINT} (traceback: ")


def test_only_the_typed_gap_is_not_available(tmp_path):
    plan = next(p for p in expand(load_config("fig3"), "smoke", tmp_path, seeds=[0]) if p.strategy == "snas")

    def says_not_implemented(plan, ctx):  # the words of a gap, the type of a missing kernel
        raise NotImplementedError("strategy 'snas' is not implemented yet")

    assert run_one(plan, RunContext(), {"nasib": says_not_implemented}).status == FAILED


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error")]


@pytest.mark.parametrize("bad", ["zero", "0", "-2", "1.5", "100000"])
def test_both_command_lines_refuse_a_bad_thread_count_in_the_same_words(tmp_path, bad):
    with pytest.raises(ValueError) as why:
        parse_threads(bad)
    runs = [CliRunner().invoke(runner_cli, ["run", "fig2", "--scale", "smoke", "--results", str(tmp_path / "r"),
                                            "--threads", bad, "--dry-run"]),
            CliRunner().invoke(nasib_cli, ["search", "--space", "narrow", "--out", str(tmp_path / "o"),
                                           "--threads", bad])]
    for res in runs:
        assert res.exit_code == 2, res.output
        assert len(_error_lines(res.output)) == 1 and str(why.value) in res.output
        assert "Traceback" not in res.output
    assert not (tmp_path / "r").exists() and not (tmp_path / "o").exists()


def test_both_command_lines_refuse_an_unknown_device_before_anything_runs(tmp_path):
    said = "unknown device 'gpu'; use auto, cpu, cuda or cuda:N"
    runs = [CliRunner().invoke(runner_cli, ["run", "fig2", "--scale", "smoke", "--results", str(tmp_path / "r"),
                                            "--device", "gpu", "--dry-run"]),
            CliRunner().invoke(nasib_cli, ["search", "--space", "narrow", "--out", str(tmp_path / "o"),
                                           "--device", "gpu"])]
    for res in runs:
        assert res.exit_code == 2 and said in res.output and len(_error_lines(res.output)) == 1, res.output


def test_kernel_shapes_follow_the_builders_grammar():
    assert kernel_shape("conv1x3") == (1, 3) and kernel_shape("sep5x6") == (5, 6)
    # Names the op builder refuses, or that hold no kernel of their own, have no shape.
    for name in ("conv0x3", "conv100x3", "conv3x", "sepx3", "noise@conv1x3", "maxpool3x3", "identity"):
        assert kernel_shape(name) is None, name


def test_the_contract_floor_and_analysis_load_without_torch():
    modules = sorted(f"contract.{p.stem}" for p in (ROOT / "contract").glob("*.py") if p.stem != "__init__")
    assert {"contract.errors", "contract.options", "contract.ops", "contract.threads"} <= set(modules)
    code = (f"import sys; import {', '.join(modules)}; heavy = {{'torch', 'numpy'}} & set(sys.modules); "
            "import analysis.claim_measures; heavy |= {'torch'} & set(sys.modules); print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_nasib_plan_out_of_memory_is_typed_with_its_hint(monkeypatch):
    """`nasib plan` runs outside the trial recipe: its out-of-memory must still reach the CLI typed."""
    import torch

    from nasib import plan as planmod
    from nasib.search import NasibSearch

    def boom(self, *args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(NasibSearch, "measure_epoch", boom)
    with pytest.raises(OutOfMemory) as got:
        planmod.plan("superkernel", "smoke", "1h", device="cpu")
    assert "batch size" in got.value.hint and "layers" in got.value.hint
