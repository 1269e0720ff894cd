#!/usr/bin/env bash
# The main job on the shipped default: set up (idempotent), then `un0hw demo` on the
# shipped trained Un-0 (digits-n512, models/checkpoints/un0-digits.safetensors): SPICE
# cells and their calibration, two compiled arrays, FID ideal vs hardware, a bits sweep,
# the RTL tile under cocotb, energy per inference → report/index.html (+ index.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT="${OUT:-report}"
VENV="${UN0HW_VENV:-.venv}"
"$VENV/bin/un0hw" demo -o "$OUT" "$@"
