#!/usr/bin/env bash
# Makes the mid-size LISA checkpoint the fast-generation benchmarks run on: the published
# LISA-7B layout (.bin shards, bfloat16, ids <im_patch> <im_start> <im_end> [SEG]) with seeded
# random weights, a LLaMA of 7B's proportions but smaller (hidden 1024, intermediate 2752,
# 8 heads of 128 like 7B, 8 layers, vocab 32004), and the tiny fixture's CLIP, SAM and tokenizer,
# so the decoder's weights dominate a turn as they do in 7B (about 0.35 GB of bfloat16).
#
#   models/reference/make_midsize_checkpoint.sh OUT [--layers N] [--hidden H] [--intermediate I]
#
# Writes OUT/tiny (make_fixtures.py's output: its clip/ is the vision tower) and OUT/lisa-mid
# (the checkpoint). Deterministic for the same torch. The weights are random, so answers are
# token soup that never says </s>: every turn generates exactly the pack's max-new-tokens, which
# is what a benchmark wants. Convert with, for example:
#
#   node src/bin.js models convert --checkpoint OUT/lisa-mid --vision-tower OUT/tiny/clip \
#     --out OUT/pack-f32 --dtype float32 --max-new-tokens 64
set -euo pipefail
if [[ $# -lt 1 || "$1" == -* ]]; then
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
out=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
# The reference needs torch: Debian's python3, not a pyenv one without it (see test/helpers/python.ts).
python=${LISA_PYTHON:-/usr/bin/python3}
layers=8 hidden=1024 intermediate=2752
while [[ $# -gt 0 ]]; do
  case $1 in
    --layers) layers=$2; shift 2 ;;
    --hidden) hidden=$2; shift 2 ;;
    --intermediate) intermediate=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
heads=$((hidden / 128))
mkdir -p "$out"
if [[ ! -f "$out/tiny/fixtures.json" ]]; then
  "$python" "$here/make_fixtures.py" --out "$out/tiny"
fi
"$python" "$here/make_scale_checkpoint.py" --fixtures "$out/tiny" --out "$out/lisa-mid" \
  --hidden "$hidden" --intermediate "$intermediate" --layers "$layers" --heads "$heads" --vocab 32004 --shards 2
echo "convert: node src/bin.js models convert --checkpoint $out/lisa-mid --vision-tower $out/tiny/clip --out $out/pack-f32 --dtype float32 --max-new-tokens 64"
