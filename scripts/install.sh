#!/usr/bin/env bash
# `make install`: a Python 3.11 venv with every package of the repo, editable, with the exact pins of
# constraints.txt passed to EVERY pip call (without it pip would pick another torch and the nvidia-* stack).
# Order matters: torch first (mmcv's build imports it), then the mmcv wheel (built once into a cache keyed
# by the torch version), then everything else.
set -euo pipefail
VENV=${VENV:-.venv}
CONSTRAINTS=${CONSTRAINTS:-constraints.txt}
WHEEL_CACHE=${WHEEL_CACHE:-$HOME/.cache/vlzoo/wheels}
PACKAGES=("$@")
start=$(date +%s)

find_python() {
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      command -v "$cand"; return 0
    fi
  done
  echo "make install needs Python 3.11 (python3.11 or python3 on PATH)" >&2; return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  "$(find_python)" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check -c "$CONSTRAINTS")

echo "[install] torch, torchvision, build tools"
"${PIP[@]}" torch torchvision setuptools wheel ninja

echo "[install] mmcv (full, compiled CPU ops) from the wheel cache, building it once if needed"
scripts/build_mmcv_wheel.sh "$PY" "$CONSTRAINTS" "$WHEEL_CACHE"
TORCH_VERSION=$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')
"${PIP[@]}" --find-links "$WHEEL_CACHE/torch-$TORCH_VERSION" mmcv

echo "[install] the repo's packages (editable) and their dependencies"
editable=()
for p in "${PACKAGES[@]}"; do editable+=(-e "$p"); done
"${PIP[@]}" --find-links "$WHEEL_CACHE/torch-$TORCH_VERSION" "${editable[@]}" pytest ruff

"$PY" - <<'EOF'
import importlib
mods = ["torch", "torchvision", "transformers", "open_clip", "peft", "deepspeed", "mmcv.ops", "mmdet", "mmseg",
        "pycocotools", "sklearn", "scipy", "vlzoo", "tokenpacker", "osprey", "ovml_query", "textonly_adapter",
        "apro_affinity"]
for m in mods:
    importlib.import_module(m)
import torch
print(f"[install] ok: torch {torch.__version__}, {len(mods)} modules import")
EOF
echo "[install] the C++ CPU kernels of vlzoo.ops (cached under .cache/vlzoo/torch_extensions)"
"$PY" -m vlzoo.ops.build --skip-cuda

echo "[install] done in $(( $(date +%s) - start )) s"
