#!/usr/bin/env bash
# On the GPU machine, after setup.sh: training speed (studio / notebook / plain, 4-bit and 16-bit), one process per
# variant, then scoring rows/s three ways. Results: $OUT/speed-*.json, $OUT/scoring.txt.
source bench/device/setup.sh
SHAPE=${SHAPE:-0.5b}
MODEL=/tmp/qwen-$SHAPE
[ -d $MODEL ] || python3 -c "import sys; sys.path.insert(0, '.'); from studio.models.tiny import build_qwen_shape; build_qwen_shape('$MODEL', '$SHAPE')"
for bits in ${BITS:-4 16}; do
  for variant in ${VARIANTS:-studio notebook plain}; do
    python3 bench/train_speed.py --variant $variant --bits $bits --model $MODEL --steps ${STEPS:-30} \
      --json "$OUT/speed-$SHAPE-$variant-$bits.json" 2>"$OUT/speed-$SHAPE-$variant-$bits.err" | tail -1 \
      || tail -5 "$OUT/speed-$SHAPE-$variant-$bits.err"
  done
done
if [ -n "${SCORING:-1}" ]; then
  python3 bench/scoring_speed.py --random-qwen $SHAPE --rows 256 --batch-size 32 --single-rows 64 2>/dev/null | tail -9 | tee "$OUT/scoring-$SHAPE.txt"
fi
