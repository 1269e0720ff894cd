#!/usr/bin/env bash
# The main job on the shipped default: set up (idempotent), then a sample-and-simulate run.
# Until a trained checkpoint ships, the default model is a random-init digits-n512 Un-0;
# outputs go to out/ (override with OUT=...).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT="${OUT:-out}"
mkdir -p "$OUT"
UN0HW=.venv/bin/un0hw
CKPT="$OUT/digits-n512-random"
[ -f "$CKPT.safetensors" ] || $UN0HW init --size digits-n512 --seed 0 -o "$CKPT"
$UN0HW info "$CKPT.safetensors"
$UN0HW simulate "$CKPT.safetensors" -n 64 --save "$OUT/phases.safetensors"
$UN0HW sample "$CKPT.safetensors" -n 8 -o "$OUT/samples.png"
