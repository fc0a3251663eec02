#!/usr/bin/env bash
# The GPU checks of issue 16 (item 6) as one prepared script, for a session that is lent a CUDA machine:
#
#   bash benchmarks/gpu_check.sh OUT_DIR          # on the GPU machine, from the repository root
#   SMOKE=1 bash benchmarks/gpu_check.sh OUT_DIR  # the script itself, on a CPU, in about two minutes
#
# 1. `lipgan bench` of the SNGAN CNN (n_dis 1 and 5) and of the 32² ResNet at fp32, bf16 and fp16 side by
#    side in one run each (CUDA synchronizes before every clock read; peak memory is the allocator's);
# 2. the CIFAR-10 32² ResNet GraND config (configs/gran/cifar10_grand.yaml) for TRAIN_STEPS steps at fp32
#    and at bf16, on CIFAR-10 files of random images in the dataset's genuine format (the machine cannot
#    download the real one; speed does not depend on the pixels), without evaluation;
# 3. the same under `torchrun` on every GPU (DDP with NCCL; world size 1 on a one-GPU machine still
#    initializes NCCL and wraps D and G in DDP).
#
# Everything lands in OUT_DIR as at most 8 files (the device tool brings back 8): the bench JSONs and one
# log. The machine's python3 holds its own torch; lipgan runs from src/ (PYTHONPATH), so its other
# dependencies must be there. tqdm, PyYAML, scipy, scikit-learn, matplotlib, pillow and tensorboard are in
# the H200 image; torch-fidelity is not, and the trainer imports it (lmdb only the LSUN reader). Download it
# here into wheels/ (`pip download torch-fidelity==0.4.0 --no-deps -d wheels`, a pure-Python wheel) and let
# the folder travel (device run's carry: ["wheels"]); the script installs what is in wheels/ when the
# import fails.
set -euo pipefail

OUT=${1:?usage: [SMOKE=1] bash benchmarks/gpu_check.sh OUT_DIR}
PY=${PYTHON:-python3}
export PYTHONPATH="src:tests${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [[ ${SMOKE:-0} == 1 ]]; then
    DEVICE=cpu
    PRECISIONS=(fp32 bf16)
    BENCH_CNN=(--arch digits-cnn --batch 8 --repeats 1 --warmup 0 "model.options={width: 0.25}")
    BENCH_RESNET=("${BENCH_CNN[@]}")
    TRAIN=(train.steps=2 optim.n_dis=1 data.batch_size=8 data.num_workers=0)
    IMAGES_PER_FILE=16
    NPROC=2
else
    DEVICE=cuda
    PRECISIONS=(fp32 bf16 fp16)
    BENCH_CNN=(--repeats 10 --warmup 3)
    BENCH_RESNET=(--arch sngan-resnet --repeats 10 --warmup 3)
    TRAIN=(train.steps="${TRAIN_STEPS:-300}")
    IMAGES_PER_FILE=2000
    NPROC=$("$PY" -c "import torch; print(max(1, torch.cuda.device_count()))")
fi
# no evaluation (no Inception weights there), no sample grids or checkpoints in between, no plots
TRAIN+=(train.eval_at_end=false train.eval_every=0 train.sample_every=1000000 train.ckpt_every=1000000
        train.plots=false train.log_every=50 device="$DEVICE" data.root="$WORK/data")

step() { echo "== $* ($(date -u +%H:%M:%S))" | tee -a "$LOG"; }

step environment
{
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    "$PY" - <<'EOF'
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "devices", torch.cuda.device_count())
if torch.cuda.is_available():
    print(torch.cuda.get_device_name(0), "bf16 supported:", torch.cuda.is_bf16_supported())
EOF
} 2>&1 | tee -a "$LOG"

if ! "$PY" -c "import torch_fidelity" 2>/dev/null; then
    step "torch-fidelity from wheels/"
    if ! compgen -G "wheels/*.whl" >/dev/null; then
        echo "torch-fidelity is not installed and wheels/ holds no wheel: see this script's header" | tee -a "$LOG"
        exit 2
    fi
    "$PY" -m pip install --no-index --no-deps wheels/*.whl >>"$LOG" 2>&1
fi

step "lipgan bench, SNGAN CNN, n_dis 1, ${PRECISIONS[*]}"
"$PY" -m lipgan bench --device "$DEVICE" --n-dis 1 --precision "${PRECISIONS[@]}" "${BENCH_CNN[@]}" \
    --json "$OUT/bench_sngan-cnn_ndis1.json" >>"$LOG" 2>&1
step "lipgan bench, SNGAN CNN, n_dis 5, fp32 bf16"
"$PY" -m lipgan bench --device "$DEVICE" --n-dis 5 --precision fp32 bf16 "${BENCH_CNN[@]}" \
    --json "$OUT/bench_sngan-cnn_ndis5.json" >>"$LOG" 2>&1
step "lipgan bench, 32² ResNet, n_dis 1, ${PRECISIONS[*]}"
"$PY" -m lipgan bench --device "$DEVICE" --n-dis 1 --precision "${PRECISIONS[@]}" "${BENCH_RESNET[@]}" \
    --json "$OUT/bench_sngan-resnet_ndis1.json" >>"$LOG" 2>&1

step "CIFAR-10 files of random images, $IMAGES_PER_FILE per batch file"
"$PY" -c "import sys; from pathlib import Path; from fake_datasets import write_fake_cifar10; \
write_fake_cifar10(Path(sys.argv[1]), per_file=int(sys.argv[2]))" "$WORK/data" "$IMAGES_PER_FILE"

last_speed() {  # the last sec_per_step a run logged (its mean since the run's first step)
    "$PY" - "$1" <<'EOF'
import json, pathlib, sys
files = sorted(pathlib.Path(sys.argv[1]).rglob("metrics.jsonl"))
rows = [json.loads(line) for line in files[-1].read_text().splitlines() if "sec_per_step" in line]
env = json.loads((files[-1].parent / "env.json").read_text())
print(f"step {rows[-1]['step']}: {rows[-1]['sec_per_step']:.4f} s per step (mean since the first step), "
      f"world size {env['world_size']}")
EOF
}

for precision in fp32 bf16; do
    step "lipgan train gran/cifar10_grand at $precision"
    "$PY" -m lipgan train gran/cifar10_grand "${TRAIN[@]}" train.precision="$precision" \
        out_dir="$WORK/runs_$precision" >>"$LOG" 2>&1
    last_speed "$WORK/runs_$precision" | tee -a "$LOG"
done

step "torchrun --nproc_per_node=$NPROC: DDP (NCCL on CUDA, gloo on CPU) at bf16"
OMP_NUM_THREADS=1 "$PY" -m torch.distributed.run --standalone --nproc_per_node="$NPROC" -m lipgan train \
    gran/cifar10_grand "${TRAIN[@]}" train.precision=bf16 out_dir="$WORK/runs_ddp" >>"$LOG" 2>&1
last_speed "$WORK/runs_ddp" | tee -a "$LOG"
step done
