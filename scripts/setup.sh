#!/usr/bin/env bash
# Set up everything mixbridge needs on a fresh Debian/Ubuntu machine:
#   1. apt packages (as root, with a dpkg lock timeout): real plugins, soundfonts,
#      freedoom MIDI, fluidsynth, JACK, liblo-tools, headless Ardour, music for masters,
#      Chromium and its driver (the listening page's browser test, driven by selenium);
#   2. a venv (.venv) with pinned pip packages (requirements.lock, which also pins the
#      static checkers ruff and mypy that `make test` runs); torch is installed first as
#      the CPU wheel torch==2.13.0 so pip never resolves a CUDA build.
# Idempotent: it skips what is already there. Set MIXBRIDGE_SKIP_APT=1 to skip apt.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3-venv libsndfile1
  zam-plugins dragonfly-reverb-vst lsp-plugins-vst
  fluidsynth fluid-soundfont-gm avldrums.lv2-soundfont freedoom
  jackd2 liblo-tools ardour lilv-utils lua5.4
  wesnoth-1.16-music warzone2100-music
  chromium chromium-driver
)
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

if [[ "${MIXBRIDGE_SKIP_APT:-0}" != 1 ]]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    SUDO=""
    if [[ $(id -u) != 0 ]]; then
      if command -v sudo >/dev/null; then SUDO=sudo; else
        echo "setup: need root to install: ${missing[*]}" >&2; exit 1; fi
    fi
    echo "setup: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # jackd2 asks about realtime priority; answer no non-interactively
    echo "jackd2 jackd/tweak_rt_limits boolean false" | $SUDO debconf-set-selections || true
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

stamp="$VENV/.mixbridge-setup"
want="$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "torch==2.13.0"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.lock
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e .
# refuse a CUDA torch sneaking in
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md, sys
bad = [d.metadata["Name"] for d in md.distributions() if d.metadata["Name"] and d.metadata["Name"].lower().startswith("nvidia-")]
import torch
if bad or torch.version.cuda:
    sys.exit(f"setup: a CUDA torch was installed ({torch.__version__}, {bad}); reinstall torch==2.13.0 CPU")
PY
# the static checkers `make test` runs (pinned in requirements.lock) must be installed
"$VENV/bin/ruff" --version >/dev/null
"$VENV/bin/python" -m mypy --version >/dev/null
echo "$want" > "$stamp"
echo "setup: venv ready at $VENV"
