#!/usr/bin/env bash
# The GPU check behind `make ci-gpu`: gpu tests, paper-scale speed goals, a ci-scale fig2 + fig5
# and their analysis, in about 10 minutes on one H100-class GPU. Every step runs even when an
# earlier one failed; the failures are listed at the end and the exit status is 1.
#
#   scripts/ci_gpu.sh need-cuda   exit 2 with one line unless an NVIDIA GPU is visible (or CI_GPU_FAKE=1)
#   scripts/ci_gpu.sh             run every step, writing under $CI_GPU_OUT
#
# Settings (environment; the Makefile passes its variables):
#   PYTHON         interpreter with the kit importable (default python3)
#   CI_GPU_OUT     where everything goes (default results/ci-gpu): logs/, bench/, runs/, summary.txt
#   NASIB_DATA     CIFAR-10 root (holding cifar-10-batches-py/) for the fig2/fig5 runs
#   JPEG_PACK      when NASIB_DATA holds none: a CIFAR-10 JPEG pack (.npz) decoded into $CI_GPU_OUT/data
#   CI_GPU_FAKE=1  CPU dry run of this script's logic: no CUDA check, device cpu, smoke sizes,
#                  synthetic data when NASIB_DATA has none
#   ENAS_EPOCH_S, NASIB_EPOCH_S, CHECKPOINT_SHARE (0.03): the speed goals benchmarks.gate holds
#                  (unset: the gate's own, 8 s ENAS original, 10 s extended, 8 s NASIB superkernel)
#   FIDELITY (30): budget(s) in seconds of the budget-use benchmark; GPUS_PER_TRIAL (0.25): Ray packing;
#   CI_GPU_JOBS (4 on CUDA, else 1): trials at once through the local pool (--jobs) when Ray is absent
set -u
cd "$(dirname "$0")/.." || exit 2  # the kit's root: python -m experiments, tests/ and relative paths

PYTHON=${PYTHON:-python3}
OUT=${CI_GPU_OUT:-results/ci-gpu}
FAKE=${CI_GPU_FAKE:-}
export PYTHONUNBUFFERED=1

say() { printf '%s ci-gpu: %s\n' "$(date -u +%H:%M:%S)" "$*"; }

need_cuda() {
    [ -n "$FAKE" ] && return 0
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU; then return 0; fi
    echo "make ci-gpu needs CUDA: no NVIDIA GPU is visible here (nvidia-smi); run it on a GPU machine (CI_GPU_FAKE=1: a CPU dry run)" >&2
    exit 2
}

if [ "${1:-}" = need-cuda ]; then need_cuda; exit 0; fi
need_cuda

if [ -n "$FAKE" ]; then  # CPU dry run: the same steps at smoke sizes
    DEVICE=cpu BENCH_SCALE=smoke SCALE=smoke SEEDS="--seeds 0" FIDELITY=${FIDELITY:-15} KIND=cpu
    EPOCH_LIMIT=120  # a loaded 2-core CPU says nothing about the GPU goals; only the logic is checked
else
    DEVICE=cuda BENCH_SCALE=paper SCALE=ci SEEDS="" FIDELITY=${FIDELITY:-30} KIND=cuda
    EPOCH_LIMIT=""  # the gate's own goals
fi
mkdir -p "$OUT/logs"
FAILED=()
T_START=$(date +%s)

# step NAME CMD...: run CMD with time-stamped output into logs/NAME.log; a failure is noted, not fatal.
step() {
    local name=$1 t0 rc
    shift
    t0=$(date +%s)
    say "start $name: $*"
    "$@" 2>&1 | while IFS= read -r line; do printf '%s   %s\n' "$(date -u +%H:%M:%S)" "$line"; done \
        | tee "$OUT/logs/$name.log"
    rc=${PIPESTATUS[0]}
    if [ "$rc" -eq 0 ]; then say "done  $name in $(($(date +%s) - t0)) s"
    else say "FAILED $name (exit $rc) after $(($(date +%s) - t0)) s; log: $OUT/logs/$name.log"; FAILED+=("$name"); fi
    return 0
}

has() { "$PYTHON" -c "import $1" >/dev/null 2>&1; }

env_report() {
    "$PYTHON" - "$DEVICE" <<'EOF'
import platform, sys
import torch
dev = sys.argv[1]
print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}")
if dev == "cuda":
    if not torch.cuda.is_available():
        sys.exit("this torch cannot use the GPU (CPU build?); reinstall with TORCH_PIN for the runner's CUDA")
    print(f"GPU: {torch.cuda.get_device_name(0)}, {torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
EOF
    command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi || true
}

find_data() {
    local root=${NASIB_DATA:-}
    if [ -n "$root" ] && [ -f "$root/cifar-10-batches-py/data_batch_1" ]; then DATA=$root; return 0; fi
    if [ -n "${JPEG_PACK:-}" ] && [ -f "$JPEG_PACK" ]; then  # no internet needed: decode the JPEG pack
        DATA=$OUT/data
        [ -f "$DATA/cifar-10-batches-py/data_batch_1" ] && return 0
        say "decoding $JPEG_PACK into $DATA"
        "$PYTHON" -m nascore.jpeg_pack "$JPEG_PACK" "$DATA" || { DATA=""; return 1; }
        return 0
    fi
    if [ -n "$FAKE" ]; then
        DATA=$OUT/data
        say "no CIFAR-10 in NASIB_DATA='${root}': the dry run uses synthetic data in $DATA"
        "$PYTHON" -m nascore.synthetic "$DATA" --train 2000 --test 300
        DATA=$DATA/synthetic-cifar10  # the stand-in's own root, apart from where real CIFAR-10 goes
        return
    fi
    echo "NASIB_DATA='${root}' holds no cifar-10-batches-py/data_batch_1 and no JPEG_PACK was given: the fig2/fig5 runs need CIFAR-10" >&2
    return 1
}

gpu_tests() {
    if ! has pytest; then echo "pytest is not installed for $PYTHON (pip install pytest)" >&2; return 1; fi
    # Only the files holding gpu tests: the rest of the suite may need packages a bare GPU image lacks.
    "$PYTHON" -m pytest -q -ra -m gpu -p no:cacheprovider --junitxml "$OUT/gpu-tests.xml" \
        $(grep -l "pytest.mark.gpu" tests/test_*.py)
}

ci_runs() {
    local launch=(--launcher local)
    if has ray; then launch=(--launcher ray)
        [ "$DEVICE" = cuda ] && launch+=(--gpus-per-trial "${GPUS_PER_TRIAL:-0.25}")
    else local jobs=1
        [ "$DEVICE" = cuda ] && jobs=4  # one small ci trial uses a fraction of an H100-class GPU
        jobs=${CI_GPU_JOBS:-$jobs}
        launch+=(--jobs "$jobs")
        echo "note: ray is not importable, so the $SCALE-scale trials run $jobs at a time through the local pool (--jobs)"; fi
    # shellcheck disable=SC2086
    "$PYTHON" -m experiments run fig2 fig5 --scale "$SCALE" $SEEDS --device "$DEVICE" --results "$OUT/runs" \
        --data-dir "$DATA" "${launch[@]}"
}

analysis() {
    local rc=0
    "$PYTHON" -m analysis curves "$OUT/runs" --figure fig2 || rc=1
    "$PYTHON" -m analysis curves "$OUT/runs" --figure fig5 || rc=1
    if "$PYTHON" -m analysis --help 2>/dev/null | grep -q claims; then
        "$PYTHON" -m analysis claims "$OUT/runs" || rc=1
    fi
    return $rc
}

# The whole run is one function, so bash has read all of it before the first step starts.
main() {
    say "writing under $OUT (device $DEVICE, bench scale $BENCH_SCALE, scale $SCALE${FAKE:+, CPU dry run})"
    step env env_report
    if [ ${#FAILED[@]} -gt 0 ] && [ -z "$FAKE" ]; then
        say "stopping: without a CUDA-capable torch nothing else can run"; return 1
    fi
    step gpu-tests gpu_tests
    step bench "$PYTHON" -m benchmarks --device "$DEVICE" --scale "$BENCH_SCALE" --out "$OUT/bench" --fidelity "$FIDELITY"
    LIMITS=()
    [ -n "${ENAS_EPOCH_S:-$EPOCH_LIMIT}" ] && LIMITS+=(--enas-epoch-s "${ENAS_EPOCH_S:-$EPOCH_LIMIT}")
    [ -n "${NASIB_EPOCH_S:-$EPOCH_LIMIT}" ] && LIMITS+=(--nasib-epoch-s "${NASIB_EPOCH_S:-$EPOCH_LIMIT}")
    step gate "$PYTHON" -m benchmarks.gate "$OUT/bench" --device "$KIND" --scale "$BENCH_SCALE" \
        ${LIMITS[@]+"${LIMITS[@]}"} --checkpoint-share "${CHECKPOINT_SHARE:-0.03}"
    DATA=""
    say "start data"
    find_data || FAILED+=("data")  # not a step: it sets DATA for the next ones
    if [ -n "$DATA" ]; then
        say "data: $DATA"
        step runs ci_runs
        step analysis analysis
    else
        say "skipping the fig2/fig5 runs and their analysis: no data"
    fi

    {
        echo "make ci-gpu on $(hostname) at $(date -u '+%Y-%m-%d %H:%M UTC'), $(($(date +%s) - T_START)) s"
        [ -f "$OUT/bench/gate.json" ] && "$PYTHON" -c "import json, sys; from benchmarks.gate import format_rows; \
print(format_rows(json.load(open(sys.argv[1]))['rows']))" "$OUT/bench/gate.json"
        if [ ${#FAILED[@]} -gt 0 ]; then echo "failed steps: ${FAILED[*]}"; else echo "all steps passed"; fi
    } | tee "$OUT/summary.txt"
    [ ${#FAILED[@]} -eq 0 ]
}

main "$@"
exit $?
