#!/usr/bin/env bash
# Download, here (with PyPI reachable), the py3.12 manylinux wheels the GPU machine lacks for the Unsloth path, split
# into two folders that each fit one device call (64 MiB): .whl-bnb (bitsandbytes alone, ~43 MB) and .whl
# (unsloth, unsloth_zoo, trl, datasets and what they need that the device image lacks, ~40 MB).
# The set and the pins are the ones measured in shared/gpu-device-recipe.md.
# Usage: bash bench/device/fetch_wheels.sh   (then carry .whl-bnb in one call, .whl in the next, same machine)
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .git/info
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
grep -qx '/.whl-bnb/' .git/info/exclude 2>/dev/null || echo '/.whl-bnb/' >> .git/info/exclude
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
fetch() {  # fetch DIR SPEC...
  local dir=$1; shift
  mkdir -p "$dir"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d "$dir" "$@"
}
fetch .whl-bnb bitsandbytes==0.50.2
fetch .whl unsloth==2026.10.9 unsloth_zoo==2026.10.9 trl==1.15.0 datasets==4.8.5 dill==0.4.1 multiprocess==0.70.19 \
  torchao==0.18.0 cut_cross_entropy==25.1.1 msgspec==0.22.0 tyro==1.0.17 docstring_parser==0.18.0 shtab==1.13.0 \
  typeguard==4.6.1 hf_transfer==0.1.9 structlog==26.1.0 json5==0.17.3 nest_asyncio==1.6.0
du -sh .whl-bnb .whl
# .whl-gpu: the same set in one folder that fits one call (59 MiB with the tree): unsloth's wheel carries its own
# web app, a top-level package named `studio` (82 MB unpacked) that this project never imports; it is left out.
mkdir -p .whl-gpu && rm -f .whl-gpu/*.whl
grep -qx '/.whl-gpu/' .git/info/exclude 2>/dev/null || echo '/.whl-gpu/' >> .git/info/exclude
cp .whl-bnb/*.whl .whl/*.whl .whl-gpu/
slim=$(mktemp -d) && (cd "$slim" && unzip -q "$OLDPWD"/.whl/unsloth-*.whl && rm -rf studio \
  && sed -i '/^studio\//d' unsloth-*.dist-info/RECORD && sed -i '/^studio$/d' unsloth-*.dist-info/top_level.txt \
  && rm "$OLDPWD"/.whl-gpu/unsloth-*.whl && zip -q -r "$OLDPWD/.whl-gpu/$(basename "$OLDPWD"/.whl/unsloth-*.whl)" .)
rm -rf "$slim"
du -sh .whl-gpu
