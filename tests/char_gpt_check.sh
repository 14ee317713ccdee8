#!/usr/bin/env bash
# char_gpt_check.sh CHAR_GPT: a short run of examples/char_gpt with the four norms, in a temporary folder, and
# checks on its summary table: the loss of every model falls clearly below the uniform guess ln(vocab), and
# the measured causal leak is exactly 0 for LayerNorm, RMSNorm and no norm, and above 0 for BatchNorm over
# batch and time. Run by meson (examples/meson.build); skipped (77) when the default text is missing.
set -uo pipefail
exe=$(realpath "$1")
text=/usr/share/common-licenses/GPL-3
[ -f "$text" ] || { echo "skipped: $text is missing"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
(cd "$dir" && OMP_NUM_THREADS=1 "$exe" --norm all --steps 200 --samples 20 --out out) >"$dir/log" 2>&1 ||
  { cat "$dir/log"; echo "FAILED: char_gpt exited with an error"; exit 1; }
cat "$dir/log"
vocab=$(sed -n 's/.*characters (\([0-9]*\) distinct).*/\1/p' "$dir/log")
failures=0
for norm in layer rms batch none; do
  row=$(awk -v n="$norm" '$1 == n && NF >= 6 && $2 ~ /^[0-9.]+$/' "$dir/log")
  [ -n "$row" ] || { echo "FAILED: no summary row for $norm"; failures=$((failures + 1)); continue; }
  read -r _ train val _ _ leak _ <<<"$row"
  # ln(vocab) nats is what a model that knows nothing scores; after 200 steps every model is far below.
  awk -v t="$train" -v v="$val" -v k="$vocab" 'BEGIN { exit !(t < log(k) - 1.2 && v < log(k) - 1) }' ||
    { echo "FAILED: $norm: train $train / validation $val, not clearly below ln($vocab)"; failures=$((failures + 1)); }
  if [ "$norm" = batch ]; then
    awk -v l="$leak" 'BEGIN { exit !(l > 1e-4) }' || { echo "FAILED: batch: causal leak $leak, expected > 0"; failures=$((failures + 1)); }
  else
    [ "$leak" = 0 ] || { echo "FAILED: $norm: causal leak $leak, expected exactly 0"; failures=$((failures + 1)); }
  fi
done
[ -s "$dir/out/losses.svg" ] || { echo "FAILED: no losses.svg"; failures=$((failures + 1)); }
[ "$failures" -eq 0 ] && echo "char_gpt: every loss falls; the causal leak is 0 for layer, rms and none, > 0 for batch"
[ "$failures" -eq 0 ]
