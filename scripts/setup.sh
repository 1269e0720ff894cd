#!/usr/bin/env bash
# Set up everything un0hw needs on a fresh Debian machine. Idempotent: a second run
# checks and returns in seconds.
#
#   bash scripts/setup.sh            # CPU torch (torch==2.13.0)
#   UN0HW_TORCH_INDEX_URL=https://…/whl/cu128 bash scripts/setup.sh   # a CUDA torch build
#   UN0HW_SKIP_APT=1 bash scripts/setup.sh   # leave system packages alone
#
# System packages: ngspice + libngspice0-dev (SPICE cells through PySpice, which needs
# libngspice.so from the -dev package), iverilog + verilator (the digital tile under
# cocotb, lint) and chromium (the demo report is opened and screenshotted headless).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="${UN0HW_VENV:-$ROOT/.venv}"
TORCH_VERSION="${UN0HW_TORCH_VERSION:-2.13.0}"
say() { printf 'setup: %s\n' "$*" >&2; }

# --- system packages ------------------------------------------------------------------
APT_PACKAGES=(ngspice libngspice0-dev iverilog verilator chromium)
if [ -z "${UN0HW_SKIP_APT:-}" ] && command -v dpkg >/dev/null 2>&1; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
    if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
      say "installing system packages: ${missing[*]}"
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      say "warning: cannot install ${missing[*]} (not root, no sudo); SPICE/RTL tests will skip"
    fi
  fi
fi

# --- python ---------------------------------------------------------------------------
PY="${UN0HW_PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  say "error: $PY is $("$PY" --version 2>&1); un0hw needs Python >= 3.11 (set UN0HW_PYTHON)"
  exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)

if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  if [ -n "${UN0HW_TORCH_INDEX_URL:-}" ]; then
    say "installing torch $TORCH_VERSION from $UN0HW_TORCH_INDEX_URL"
    "${PIP[@]}" "torch==$TORCH_VERSION" --index-url "$UN0HW_TORCH_INDEX_URL"
  else
    say "installing torch $TORCH_VERSION (CPU build)"
    "${PIP[@]}" "torch==$TORCH_VERSION"
  fi
fi

# The project itself (editable) with its test dependencies; skipped when pyproject.toml
# and this script have not changed since the last successful install.
stamp="$VENV/.un0hw-installed"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing un0hw and its dependencies"
  "${PIP[@]}" -e ".[test]"
  # pytorch-fid: the test suite's independent reference for the Fréchet distance. Without
  # its dependencies: they include torchvision, whose wheels pull another torch build.
  "${PIP[@]}" --no-deps "pytorch-fid==0.3.0"
  # torch-fidelity: the FID Inception network (analysis/inception.py); same reason.
  "${PIP[@]}" --no-deps "torch-fidelity==0.4.0"
  # clean-fid: the release's FID protocol (its resize, analysis/cleanfid.py, and the tests'
  # independent reference); same reason (its package imports torchvision at the top).
  "${PIP[@]}" --no-deps "clean-fid==0.1.35"
  echo "$want" > "$stamp"
fi
say "ready: $VENV"
