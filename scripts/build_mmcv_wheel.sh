#!/usr/bin/env bash
# Build the full mmcv (compiled CPU ops) wheel once, against the pinned torch, into a wheel cache
# keyed by the torch version, so later installs reuse it. Recipe measured in ../shared/ENVIRONMENT.md:
# mmcv 2.1.0 has no wheel on PyPI, and torch 2.14's headers need C++20 where its setup.py says C++14/17.
# Usage: scripts/build_mmcv_wheel.sh PYTHON CONSTRAINTS WHEEL_CACHE_ROOT
set -euo pipefail
PY=${1:?python}; CONSTRAINTS=${2:?constraints}; CACHE_ROOT=${3:?wheel cache root}
MMCV_VERSION=$(sed -n 's/^mmcv==\([0-9.]*\).*/\1/p' "$CONSTRAINTS")
TORCH_VERSION=$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')
CACHE="$CACHE_ROOT/torch-$TORCH_VERSION"
mkdir -p "$CACHE"
if ls "$CACHE"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
  echo "mmcv $MMCV_VERSION wheel for torch $TORCH_VERSION already cached in $CACHE"; exit 0
fi
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
echo "building mmcv $MMCV_VERSION against torch $TORCH_VERSION (about 9 minutes on 2 cores)"
"$PY" -m pip download -c "$CONSTRAINTS" --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$WORK/sdist"
tar -xzf "$WORK"/sdist/mmcv-"$MMCV_VERSION".tar.gz -C "$WORK"
SRC="$WORK/mmcv-$MMCV_VERSION"
sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
grep -q -- '-std=c++20' "$SRC/setup.py" || { echo "could not raise mmcv's C++ standard flag in $SRC/setup.py" >&2; exit 1; }
MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} CFLAGS="-DNDEBUG -fwrapv -O2 -g0" \
  "$PY" -m pip wheel -c "$CONSTRAINTS" --no-build-isolation --no-deps --no-cache-dir "$SRC" -w "$WORK/out"
mv "$WORK"/out/mmcv-*.whl "$CACHE"/
echo "cached $(ls "$CACHE"/mmcv-*.whl)"
