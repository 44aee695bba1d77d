#!/usr/bin/env bash
# On the GPU machine: install the carried wheels (bench/device/fetch_wheels.sh made them) into /tmp/bnb and
# /tmp/site. Either one call carries .whl-gpu (the whole set, unsloth's wheel without its bundled web app), or call 1
# carries .whl-bnb and call 2 (same warm machine) .whl; each call sources this file.
if [ -d .whl-bnb ] && [ ! -d /tmp/bnb/bitsandbytes ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/bnb .whl-bnb/*.whl || exit 1
fi
if [ -d .whl-gpu ] && [ ! -d /tmp/site/unsloth ]; then  # everything in one call (fetch_wheels.sh --one-call)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl-gpu/*.whl || exit 1
fi
if [ -d .whl ] && [ ! -d /tmp/site/unsloth ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:/tmp/bnb HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
  TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 UNSLOTH_DISABLE_STATISTICS=1
