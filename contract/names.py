"""The kit's vocabulary and record file names, torch-free: what the searches write and analysis reads.

The record format (its version, and reading older ones) is `contract.format`.

Every name listed here is checked against its registry by a test (spaces against
`nascore.spaces`, strategies against `nasib.strategies`), so the lists cannot drift.
It sits on the contract floor, which is all `analysis/` imports of the kit.
"""
from __future__ import annotations

VERSION = "0.2.0"  # the kit's version (pyproject reads it; every command prints it with --version)
SCALES = ("smoke", "quick", "paper")  # search scales (records: `scale`), shared by searches, retraining and experiments
SCALE_HELP = "smoke: 2-core CPU, seconds; quick: one GPU, minutes; paper: the reference's settings."
OPTIONAL_SCALES = ("ci", "medium")  # scales only some configs define (ci: one GPU, minutes; medium: 2-core CPU, hours)
EXPERIMENT_SCALES = (*SCALES, *OPTIONAL_SCALES)  # scales an experiment config may define (the runner's --scale choices)
SPACES = ("original", "extended", "narrow", "superkernel")  # every named search space
ENAS_SPACES = ("original", "extended")  # the macro spaces the ENAS search is set up for
NASIB_SPACES = tuple(s for s in SPACES if s not in ENAS_SPACES)  # the spaces NASIB and its baselines search
# The programs that run a trial (an experiment config's `family`): ENAS, NASIB with its strategies, retraining.
FAMILIES = ("enas", "nasib", "retrain")
# Which spaces each method family accepts: the one statement that CLIs, configs and the runner check.
METHOD_SPACES = dict(zip(FAMILIES, (ENAS_SPACES, NASIB_SPACES, SPACES), strict=True))
# Which BN statistics an evaluation of a shared-weight network uses (nascore/bn.py applies them);
# here so the command line can offer them before torch loads.
BN_RULES = ("running", "batch", "recalibrate")
DEFAULT_BN_RULE = "batch"
# ENAS search-time branch behaviour: the sampled op runs, or the release's one op in every layer.
ENAS_BRANCH_MODES = ("intended", "as-released")
ENAS_OPTION_SETS = ("kit", "release")  # enas_ext.presets.OPTION_SETS: the kit's deviations, or the release whole
STRATEGIES = ("nasib", "random", "darts", "snas")  # how a one-shot search picks ops per layer

STATUSES = ("ok", "diverged", "interrupted")  # a finished trial's result.json status
OK, DIVERGED, INTERRUPTED = STATUSES

CONFIG, EPOCHS, RESULT, CHECKPOINT, LOCK = "config.json", "epochs.jsonl", "result.json", "checkpoint.pt", ".lock"
ARCH, ALPHAS, SAMPLES = "arch.json", "alphas.json", "samples.json"
MANIFEST = "trials.json"  # the runner's per-experiment list of the folders it uses, shared ones included


# md5 of the official CIFAR-10 python test_batch (torchvision checks the same digest); any other
# file in the standard layout is a copy, such as the JPEG-decoded one this kit ships for offline use.
OFFICIAL_TEST_MD5 = "40351d587109b95175f43aff81a1287e"
SYNTHETIC_DATA = "synthetic"  # the data name of the class-coloured stand-in (nascore/synthetic.py): never CIFAR-10
# Exact data names (nascore/datafiles.py data_source) start with one of these; older records hold a
# folder path in data_source and one of DATA_COPIES in data_copy instead.
DATA_NAME_PREFIXES = ("cifar10-official", "cifar10-jpeg", "cifar10-copy md5:")
DATA_COPIES = ("official CIFAR-10", "CIFAR-10 copy (not the official files: the JPEG copy or synthetic)")


def data_copy(source: str | None) -> str | None:
    """Which data a record's data_source names: an exact data name as it is; an old record's folder
    checked on disk (one of DATA_COPIES); None when it cannot be told."""
    import hashlib
    from pathlib import Path

    if not source:
        return None
    if source == SYNTHETIC_DATA or source.startswith(DATA_NAME_PREFIXES):
        return source
    folder = Path(source)
    test = folder / "test_batch"
    if not test.exists():
        test = folder / "cifar-10-batches-py" / "test_batch"
    try:
        digest = hashlib.md5(test.read_bytes()).hexdigest()  # noqa: S324 (a checksum, not security)
    except OSError:
        return None
    return DATA_COPIES[0] if digest == OFFICIAL_TEST_MD5 else DATA_COPIES[1]
