#!/usr/bin/env bash
# On the GPU machine, after setup.sh: the VRAM calibration grid (bench/vram_calibration.py) for the shapes in SHAPES,
# then (OOM=1) the real out-of-memory check (bench/device/oom_check.py). Results: $OUT/vram-*.json, $OUT/oom.json.
set -o pipefail
source bench/device/setup.sh
for shape in ${SHAPES:-0.5b}; do
  dir=/tmp/qwen-$shape
  [ -d $dir ] || python3 -c "import sys; sys.path.insert(0, '.'); from studio.models.tiny import build_qwen_shape; build_qwen_shape('$dir', '$shape')"
done
if [ -n "$GRID" ]; then
  models=$(for s in ${SHAPES:-0.5b}; do printf '%s=/tmp/qwen-%s ' $s $s; done)
  python3 bench/vram_calibration.py --models $models --grid $GRID --parallel ${PARALLEL:-5} \
    --out "$OUT/vram-${SHAPES// /-}-$GRID.json" 2>&1 | tee "$OUT/vram-${SHAPES// /-}-$GRID.log" | grep -E '^\{|CUDA context'
fi
if [ -n "$OOM" ]; then
  python3 bench/device/oom_check.py --model /tmp/qwen-0.5b --cap-gb ${CAP_GB:-6} --out "$OUT/oom.json" 2>&1 \
    | tee "$OUT/oom.log" | grep -v -E "it/s\]|examples/s\]" | tail -60
fi
