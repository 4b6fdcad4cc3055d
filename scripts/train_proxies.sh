#!/usr/bin/env bash
# The exact recipe of the three shipped proxies in models/proxies/ (see their model cards).
#
#   comp_builtin    pedalboard built-in compressor (builtin backend)
#   zamcomp         the real ZamComp VST2 through plugins/maps/zamcomp.json (vst backend)
#   eqcomp_builtin  builtin channel-strip EQ -> compressor
#
# Data: 2400 mono 1.48 s patches each of the demo songs e1m9_the_raging_sun and
# e2m3_alone_with_colors (the demo's third song, e3m4, is held out for the cards' metrics),
# parameters uniform over the schema ranges in each parameter's scale. The builtin compressor
# renders knee_db as a hard knee, so the builtin datasets fix knee_db at 0 dB.
# Training, three runs side by side on a shared 2-core machine, one CPU thread each at nice 19:
#   phase 1: models/configs/proxy_micro_tcn.yaml (L1 + MR-STFT) for MINUTES1 (52) minutes;
#   phase 2: models/configs/proxy_micro_tcn_finetune.yaml (L1 weighted 20x) from phase 1's best
#            weights (--init) for MINUTES2 (28) minutes. The shipped weights are phase 2's best.
# A run stopped early continues with `mixbridge train proxy --data D --output RUN --resume`.
#
# Usage: scripts/train_proxies.sh [STAGE...]   stages: data train finetune ship compare (default: all)
# Environment: OUT (default out/proxies), MINUTES1 (52), MINUTES2 (28), DEVICE (cpu; cuda on a GPU),
#              MB (default .venv/bin/mixbridge).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/proxies}
MINUTES1=${MINUTES1:-52}
MINUTES2=${MINUTES2:-28}
DEVICE=${DEVICE:-cpu}
MB=${MB:-.venv/bin/mixbridge}
CONFIG=models/configs/proxy_micro_tcn.yaml
NAMES=(comp_builtin zamcomp eqcomp_builtin)
if [[ $# -eq 0 ]]; then STAGES=(data train finetune ship compare); else STAGES=("$@"); fi
has() { local s; for s in "${STAGES[@]}"; do [[ $s == "$1" ]] && return 0; done; return 1; }

if has data; then
  [[ -d demo ]] || $MB demo build --output demo
  mkdir -p "$OUT/src_train" "$OUT/data"
  for song in e1m9_the_raging_sun e2m3_alone_with_colors; do
    [[ -e "$OUT/src_train/$song" ]] || cp -al "demo/$song" "$OUT/src_train/$song"
  done
  cp demo/manifest.json "$OUT/src_train/"
  common=(--source "$OUT/src_train" --channels 1 --n 2400 --patch-s 1.48 --executor local --workers 1 --quiet)
  nice -n 5 $MB datagen effect --chain compressor --backend builtin --param compressor.knee_db=fixed:0 --seed 1 \
      "${common[@]}" --output "$OUT/data/comp_builtin"
  nice -n 5 $MB datagen effect --plugin zamcomp --backend vst --seed 2 "${common[@]}" --output "$OUT/data/zamcomp"
  nice -n 5 $MB datagen effect --chain eq,compressor --backend builtin --param compressor.knee_db=fixed:0 --seed 3 \
      "${common[@]}" --output "$OUT/data/eqcomp_builtin"
fi

if has train; then
  mkdir -p "$OUT/runs"
  for n in "${NAMES[@]}"; do
    nice -n 19 $MB train proxy --data "$OUT/data/$n" --config $CONFIG --output "$OUT/runs/$n" \
        --device "$DEVICE" --max-minutes "$MINUTES1" --quiet > "$OUT/runs/$n.log" 2>&1 &
  done
  wait
fi

if has finetune; then
  for n in "${NAMES[@]}"; do
    nice -n 19 $MB train proxy --data "$OUT/data/$n" --config models/configs/proxy_micro_tcn_finetune.yaml \
        --init "$OUT/runs/$n/best.json" --output "$OUT/runs/${n}_ft" --device "$DEVICE" --max-minutes "$MINUTES2" \
        --quiet > "$OUT/runs/${n}_ft.log" 2>&1 &
  done
  wait
fi

if has ship; then
  for n in "${NAMES[@]}"; do
    .venv/bin/python -c "import sys; from mixbridge.models.train import ship_proxy; \
print(ship_proxy(sys.argv[1], sys.argv[2], sys.argv[3], earlier_runs=(sys.argv[4],)))" \
        "$OUT/runs/${n}_ft" "$OUT/data/$n" "models/proxies/$n" "$OUT/runs/$n"
  done
fi

if has compare; then
  # held-out audio (demo song e3m4) and fresh random parameters (seed 0) within the trained ranges
  nice $MB compare --plugin compressor --proxy models/proxies/comp_builtin.json --input demo/e3m4 \
      --random 64 --seed 0 --output "$OUT/compare/comp_builtin"
  nice $MB compare --plugin zamcomp --proxy models/proxies/zamcomp.json --input demo/e3m4 \
      --random 64 --seed 0 --output "$OUT/compare/zamcomp"
  nice $MB compare --plugin eq,compressor --proxy models/proxies/eqcomp_builtin.json --input demo/e3m4 \
      --random 64 --seed 0 --output "$OUT/compare/eqcomp_builtin"
fi
