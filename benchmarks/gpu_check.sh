#!/usr/bin/env bash
# GPU acceptance check of hens (forward, noise, engine), for a machine with a GPU and this
# repository checked out; no internet needed. Takes ~3-6 minutes on one H100/H200.
#
#   bash benchmarks/gpu_check.sh                  # on the GPU machine
#   bash benchmarks/gpu_check.sh --device cpu --quick   # CPU smoke test of the script itself
#
# Environment: PYTHON (default: python3 of the active environment), HENS_CHECK_DIR (scratch,
# default a new temp dir). Prints PASS/FAIL/SKIP lines; exit status 0 only if nothing failed.
# What it prints and why:
#  1. SHT on the device, both longitude paths vs torch-harmonics (float32 rounding);
#  2. per-member noise drawn on the device: a member's bits alone == in a batch;
#  3. HENS-size SFNO (721x1440, E 620, 8 layers, sc2, 110->74) member-steps/s and peak GPU
#     memory at batch 1, 2, 4, float32 and bfloat16 autocast (OOM is reported, not fatal);
#  4. the same forward twice -> same bits; 5. a 1-rank NCCL process group;
#  6. a tiny `hens forecast` (32x64 world) twice on the GPU -> bit-identical stores, a bf16 run,
#     a 1-rank torchrun run, and with >= 2 GPUs a 2-rank NCCL run equal to the 1-rank store.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
ARGS=("$@")
FAIL=0
note() { printf '\n== %s\n' "$*"; }
fail() { echo "[FAIL] $*"; FAIL=1; }
QUICK=0; DEVICE=cuda
for a in "$@"; do case "$a" in --quick) QUICK=1;; cpu|--device=cpu) DEVICE=cpu;; esac; done

note "environment"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
    || echo "nvidia-smi not found"
if ! "$PY" -c "import hens, torch, torch_harmonics" 2>/dev/null; then
    echo "hens is not importable by $PY: trying an offline editable install (pip --no-index, constraints.txt)"
    "$PY" -m pip install --no-index --no-build-isolation -c constraints.txt -e . \
        || { echo "[FAIL] cannot install hens offline: activate an environment with torch, torch-harmonics==0.8.1"\
                  " and hens' dependencies (pip install -c constraints.txt -e .) and rerun"; exit 3; }
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'available', torch.cuda.is_available(), 'GPUs', torch.cuda.device_count())"

note "forward, noise, throughput, rerun, NCCL (benchmarks/gpu_check.py)"
timeout 420 "$PY" benchmarks/gpu_check.py "${ARGS[@]}"
rc=$?
[ $rc -eq 124 ] && fail "gpu_check.py ran past 7 minutes (killed)"
[ $rc -ne 0 ] && [ $rc -ne 124 ] && fail "gpu_check.py exit status $rc"

note "tiny hens forecast"
DIR=${HENS_CHECK_DIR:-$(mktemp -d -t hens_gpu_check.XXXXXX)}
export CUBLAS_WORKSPACE_CONFIG=${CUBLAS_WORKSPACE_CONFIG:-:4096:8}
if [ "$DEVICE" = cpu ]; then export CUDA_VISIBLE_DEVICES=""; fi
HENS=("$PY" -m hens.pipelines.cli)
if timeout 180 "$PY" benchmarks/gpu_check.py --setup-forecast "$DIR"; then
    run() { local yaml=$1 out=$2; shift 2; rm -rf "$DIR/$out"
            timeout 120 "$@" "$DIR/$yaml" --no-progress >"$DIR/$out.log" 2>&1 \
                && echo "[PASS] hens forecast $yaml ($*)" || { fail "hens forecast $yaml: see $DIR/$out.log"; tail -5 "$DIR/$out.log"; }; }
    run ens.yaml ens.zarr "${HENS[@]}" forecast && cp -r "$DIR/ens.zarr" "$DIR/first.zarr"
    run ens.yaml ens.zarr "${HENS[@]}" forecast --overwrite
    "$PY" benchmarks/gpu_check.py --compare "$DIR/first.zarr" "$DIR/ens.zarr" || FAIL=1
    run ens_bf16.yaml ens_bf16.zarr "${HENS[@]}" forecast
    if "$PY" -c "import torch.distributed.run" 2>/dev/null; then
        TR=("$PY" -m torch.distributed.run --standalone)
        run ens.yaml ens.zarr "${TR[@]}" --nproc_per_node=1 -m hens.pipelines.cli forecast --overwrite
        "$PY" benchmarks/gpu_check.py --compare "$DIR/first.zarr" "$DIR/ens.zarr" || FAIL=1
        NGPU=$("$PY" -c "import torch; print(torch.cuda.device_count())")
        if [ "$NGPU" -ge 2 ]; then
            run ens.yaml ens.zarr "${TR[@]}" --nproc_per_node=2 -m hens.pipelines.cli forecast --overwrite
            "$PY" benchmarks/gpu_check.py --compare "$DIR/first.zarr" "$DIR/ens.zarr" || FAIL=1
        else
            echo "[SKIP] 2-rank NCCL forecast: one GPU visible (hens starts NCCL only with >= 2 ranks)"
        fi
    fi
else
    fail "could not write the tiny forecast inputs"
fi
echo
[ $FAIL -eq 0 ] && echo "gpu_check: all passed (scratch: $DIR)" || echo "gpu_check: FAILURES above (scratch: $DIR)"
exit $FAIL
