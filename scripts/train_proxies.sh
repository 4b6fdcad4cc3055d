#!/usr/bin/env bash
# The exact recipe of the three shipped proxies in models/proxies/ (see their model cards).
#
#   comp_builtin    the builtin backend's compressor (the schema's reference compressor)
#   zamcomp         the real ZamComp VST2 through plugins/maps/zamcomp.json (vst backend)
#   eqcomp_builtin  builtin channel-strip EQ -> compressor
#
# Architecture: the grey-box proxy (mixbridge.models.proxy_greybox, models/configs/proxy_greybox.yaml).
# Data ("a training recipe that teaches dynamics"): `mixbridge datagen signals` (level-stepped sines,
# level-ramped sweeps, pink-noise bursts, synthetic drums at -50..0 dBFS; 40 x 4 s per kind, seed 0)
# plus the stems of the composer dataset's TRAIN songs (the first 16 Freedoom songs, one excerpt each;
# the demo songs are in its test split), 1200 mono 2 s patches per proxy, every compressor parameter
# uniform over its schema range. Held out: the demo songs (demo/, composer test split) and a second
# signal set (seed 1). Stage `tcn` trains the black-box comparison of the cards (30 min).
# A run stopped early continues with `mixbridge train proxy --data D --output RUN --resume`.
#
# Usage: scripts/train_proxies.sh [STAGE...]   stages: data train ship compare tcn (default: data train ship compare)
# Environment: OUT (default out/proxies), MINUTES (25), DEVICE (cpu; cuda on a GPU), MB (.venv/bin/mixbridge).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/proxies}
MINUTES=${MINUTES:-25}
DEVICE=${DEVICE:-cpu}
MB=${MB:-.venv/bin/mixbridge}
CONFIG=models/configs/proxy_greybox.yaml
NAMES=(comp_builtin zamcomp eqcomp_builtin)
if [[ $# -eq 0 ]]; then STAGES=(data train ship compare); else STAGES=("$@"); fi
has() { local s; for s in "${STAGES[@]}"; do [[ $s == "$1" ]] && return 0; done; return 1; }
plugin_of() { case $1 in comp_builtin) echo compressor;; zamcomp) echo zamcomp;; eqcomp_builtin) echo eq,compressor;; esac; }

if has data; then
  [[ -d demo ]] || $MB demo build --output demo
  $MB datagen composer -o "$OUT/composer" --songs 16 --excerpts-per-song 1 --workers 1 --quiet
  $MB datagen signals -o "$OUT/src" --stems-from "$OUT/composer" --split train
  $MB datagen signals -o "$OUT/heldout_signals" --seed 1 --per-kind 8
  common=(--source "$OUT/src" --channels 1 --n 1200 --patch-s 2.0 --executor local --workers 1 --quiet)
  $MB datagen effect --chain compressor --backend builtin --seed 11 "${common[@]}" --output "$OUT/data/comp_builtin"
  $MB datagen effect --plugin zamcomp --backend vst --seed 12 "${common[@]}" --output "$OUT/data/zamcomp"
  $MB datagen effect --chain eq,compressor --backend builtin --seed 13 "${common[@]}" --output "$OUT/data/eqcomp_builtin"
fi

if has train; then
  mkdir -p "$OUT/runs"
  for n in "${NAMES[@]}"; do
    $MB train proxy --data "$OUT/data/$n" --config $CONFIG --output "$OUT/runs/$n" --device "$DEVICE" \
        --max-minutes "$MINUTES" --quiet
  done
fi

if has ship; then
  for n in "${NAMES[@]}"; do
    .venv/bin/python -c "import sys; from mixbridge.models.train import ship_proxy; \
print(ship_proxy(sys.argv[1], sys.argv[2], sys.argv[3], description=sys.argv[4]))" \
        "$OUT/runs/$n" "$OUT/data/$n" "models/proxies/$n" "grey-box proxy (models/proxy_greybox.py) of $n"
  done
fi

if has compare; then
  # held-out songs (the demo's, composer test split) with 48 random parameter sets, and each signal kind of seed 1
  for n in "${NAMES[@]}"; do
    $MB compare --plugin "$(plugin_of $n)" --proxy "models/proxies/$n.json" --input demo --random 48 --patch-s 2.0 \
        --seed 0 --output "$OUT/compare/$n/music"
    for k in steps sweep bursts drums; do
      $MB compare --plugin "$(plugin_of $n)" --proxy "models/proxies/$n.json" --input "$OUT/heldout_signals/$k" \
          --random 16 --patch-s 2.0 --seed 0 --no-contract --no-curves --output "$OUT/compare/$n/$k"
    done
  done
fi

if has tcn; then
  # the black-box comparison: the first round's micro-TCN shape on the same data and loss
  $MB train proxy --data "$OUT/data/zamcomp" --config models/configs/proxy_tcn_dynamics.yaml \
      --output "$OUT/runs/tcn_zamcomp" --device "$DEVICE" --max-minutes 30 --quiet
fi
