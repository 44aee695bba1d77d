source bench/device/setup.sh
[ -d /tmp/qwen-0.5b ] || python3 -c "import sys; sys.path.insert(0, '.'); from studio.models.tiny import build_qwen_shape; build_qwen_shape('/tmp/qwen-0.5b', '0.5b')"
for args in "--variant notebook --format prompt-completion" "--variant studio" "--variant notebook --format text"; do
  python3 bench/train_speed.py $args --bits 4 --model /tmp/qwen-0.5b --steps 60 2>/dev/null | tail -1 | cut -c1-330
done
