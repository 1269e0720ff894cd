#!/usr/bin/env bash
# The main job on the shipped default: set up (idempotent), then the shipped trained Un-0
# (digits-n512, models/checkpoints/un0-digits.safetensors): what it is, its image quality
# (FID-digits, precision/recall), a simulation with timing, and a sample grid in out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT="${OUT:-out}"
mkdir -p "$OUT"
UN0HW=.venv/bin/un0hw
$UN0HW info
$UN0HW fid
$UN0HW simulate -n 64 --save "$OUT/phases.safetensors"
$UN0HW sample -n 12 -o "$OUT/samples.png"
