#!/usr/bin/env bash
# Run ON THE DEVICE MACHINE (one H100/H200), after tools/gpu-check/prepare.sh here:
#   run(command="bash tools/gpu-check/run.sh", carry=[".whl", ".gpudata"], timeout_s=480)
# 300 tracks (the five carried songs, 60 copies each), default and fast model, audio only.
# Writes each model's JSON line and the whole log under $OUT. About 4-6 minutes.
set -euo pipefail
out="${OUT:-/tmp/gpu-check}"
mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
nproc
songs=/tmp/songs
mkdir -p "$songs"
for copy in $(seq 1 60); do
    for song in .gpudata/*.mp3; do
        ln -sf "$PWD/$song" "$songs/$(basename "$song" .mp3)-$copy.mp3"
    done
done
ls "$songs" | wc -l
workers=$(( $(nproc) - 2 ))
for model in default musicnn; do
    echo "== $model, cuda, $workers decoding workers"
    python3 -m lgfn_model.cli bench "$songs"/*.mp3 --device cuda --no-lyrics \
        --workers "$workers" --checkpoint "$model" --json-out "$out/bench-$model.json"
done
