#!/usr/bin/env bash
# On the GPU machine, after setup.sh (call 1 installs bitsandbytes, call 2 the unsloth set): the GPU-throughput
# issue's measurements at the Qwen2.5-1.5B shape, one process per variant, results as JSON in $OUT.
#   PART=speed    notebook / plain loop / studio default, 16-bit and 4-bit (+ the studio at micro-batch 8 and 32)
#   PART=profile  torch.profiler tables of the studio step (default recipe) and the notebook step
#   PART=epoch    one epoch over 3,000 rows, Start to adapter saved: studio defaults vs the notebook's settings
#   PART=scoring  label scoring rows/s at 1.5B (rubric KV reused vs plain, batch 128)
#   PART=7b       the 7B shape in 4-bit: notebook vs studio default (builds a random-init 7B first: ~3 min)
source bench/device/setup.sh
SHAPE=${SHAPE:-1.5b}
MODEL=/tmp/qwen-$SHAPE
[ -d $MODEL ] || python3 -c "import sys; sys.path.insert(0, '.'); from studio.models.tiny import build_qwen_shape; build_qwen_shape('$MODEL', '$SHAPE')"
run() {  # run NAME ARGS...: one process, its JSON in $OUT/NAME.json, the end of its log on failure
  local name=$1; shift
  python3 bench/train_speed.py --model $MODEL "$@" --json "$OUT/$name.json" 2>"$OUT/$name.err" | tail -1 \
    || tail -8 "$OUT/$name.err"
}
case ${PART:-speed} in
  speed)
    for bits in ${BITS:-16 4}; do
      run speed-$SHAPE-notebook-$bits --variant notebook --bits $bits --steps 25
      run speed-$SHAPE-studio-$bits --variant studio --bits $bits --steps 25
    done
    run speed-$SHAPE-loop-16-mb32 --variant loop --bits 16 --micro-batch 32 --steps 20
    run speed-$SHAPE-loop-16-mb64 --variant loop --bits 16 --micro-batch 64 --steps 20
    ;;
  profile)
    run profile-$SHAPE-studio-16 --variant studio --bits 16 --steps 12 --profile $OUT/profile-studio-16.txt
    run profile-$SHAPE-notebook-16 --variant notebook --bits 16 --steps 12 --profile $OUT/profile-notebook-16.txt
    ;;
  epoch)
    for bits in ${BITS:-16}; do
      run epoch-$SHAPE-studio-$bits --variant studio --bits $bits --epoch-rows 3000
      run epoch-$SHAPE-notebook-$bits --variant notebook --bits $bits --epoch-rows 3000
    done
    ;;
  scoring)
    python3 bench/scoring_speed.py --random-qwen $SHAPE --rows 1024 --batch-size 128 --single-rows 32 \
      2>$OUT/scoring-$SHAPE.err | tee $OUT/scoring-$SHAPE.txt || tail -8 $OUT/scoring-$SHAPE.err
    ;;
  7b)
    SHAPE=7b MODEL=/tmp/qwen-7b
    [ -d $MODEL ] || python3 -c "import sys; sys.path.insert(0, '.'); from studio.models.tiny import build_qwen_shape; build_qwen_shape('$MODEL', '7b')"
    run speed-7b-notebook-4 --variant notebook --bits 4 --steps 20
    run speed-7b-studio-4 --variant studio --bits 4 --steps 20
    ;;
esac
