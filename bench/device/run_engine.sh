#!/usr/bin/env bash
# On the GPU machine, after setup.sh: the studio engine (Unsloth 4-bit and 16-bit, eval, exports) on a random-init
# Qwen2.5-0.5B-shape model. Results: $OUT/engine.json and $OUT/engine.log.
set -o pipefail
source bench/device/setup.sh
[ -d /tmp/q05 ] || python3 -c "import sys; sys.path.insert(0, '.'); from studio.models.tiny import build_qwen_shape; build_qwen_shape('/tmp/q05', '0.5b')"
python3 bench/device/engine_check.py --model /tmp/q05 --bits ${BITS:-4 16} --out "$OUT/engine.json" 2>&1 | tee "$OUT/engine.log" | grep -v -E "it/s\]|examples/s\]"
