#!/usr/bin/env bash
# The GPU check (#14): on a machine with a CUDA GPU, in at most 9 minutes and without the internet,
#   1. the engine and API tests with PROFILEKIT_DEVICE=cuda,
#   2. in float32 and in bfloat16 (PROFILEKIT_DTYPE, the settings' dtype of the frozen backbone):
#      python -m bench.engine, python -m bench.methods, and the mixed-batch part of `profilekit bench`
#      (--parts peers: mixed-profile batches against HF PEFT and adapters),
#   3. in float32: python -m bench.fairness (a quiet tenant's p99 beside a flooding one, against its idle
#      p99: the #14 target of 2x, which a CPU cannot meet since a forward's time grows with its rows),
#      and python -m bench.length_split (rows/s at several PROFILEKIT_LENGTH_SPLIT_OVERHEAD values, #15),
# and writes every figure (`name: value` lines) to $OUT/figures.txt, each step's full output to $OUT/<step>.log.
# On a machine without a GPU it says so and exits 0. Exit status: 0 when every step passed, 1 otherwise.
#   bench/gpu_check.sh                  # from the repository root; OUT=dir to write elsewhere
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
OUT="${OUT:-./gpu-check-out}"
export PYTHONPATH="$PWD/platform:$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "no GPU: torch sees no CUDA device on this machine, so there is nothing to check (exit 0)"
    exit 0
fi

mkdir -p "$OUT"
FIGURES="$OUT/figures.txt"
: > "$FIGURES"
failed=()

# step NAME SECONDS COMMAND…: run with a time limit, keep the log, copy its `name: value` lines to the figures
step() {
    local name=$1 limit=$2
    shift 2
    echo "== $name ($*)" | tee -a "$FIGURES"
    local began=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    grep -E '^[A-Za-z0-9_]+: ' "$OUT/$name.log" >> "$FIGURES"
    echo "$name: exit $rc after $((SECONDS - began)) s" | tee -a "$FIGURES"
    [ "$rc" -eq 0 ] || failed+=("$name")
}

{
    echo "machine: $(uname -m) $(nproc) cores"
    "$PY" -c "import torch; print('torch:', torch.__version__, 'cuda', torch.version.cuda); \
print('gpu:', torch.cuda.get_device_name(0), f'{torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB'); \
print('bf16_supported:', torch.cuda.is_bf16_supported())"
} | tee -a "$FIGURES"

# the dashboard's browser test is left out: it drives chromium, not the GPU
step tests_cuda 170 env PROFILEKIT_DEVICE=cuda "$PY" -m pytest -q -x -p no:cacheprovider tests/engine tests/api \
    -k "not browser"
echo "tests_cuda_summary: $(tail -n 1 "$OUT/tests_cuda.log")" >> "$FIGURES"

for dtype in float32 bfloat16; do
    export PROFILEKIT_DEVICE=cuda PROFILEKIT_DTYPE=$dtype
    step "engine_$dtype" 40 "$PY" -m bench.engine --repeats 5
    step "methods_$dtype" 45 "$PY" -m bench.methods --repeats 3
    step "mixed_batch_$dtype" 45 "$PY" -m bench.run --parts peers --peers-repeats 3 --peers-loads 20 \
        --peers-register-seconds 5 --peers-register-max 500
done
export PROFILEKIT_DTYPE=float32
step fairness 40 "$PY" -m bench.fairness --requests 30
# serving's cut of a batch into rows of similar length: is the CPU's default overhead right on a GPU?
step length_split 40 "$PY" -m bench.length_split --rounds 5 --overheads never,128,1024,8192

echo "figures: $FIGURES"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "failed: ${failed[*]} (their logs are in $OUT)"
    exit 1
fi
echo "every step passed"
