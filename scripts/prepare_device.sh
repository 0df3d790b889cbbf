#!/usr/bin/env bash
# Fill .whl/ with the wheels the lent GPU machine's image lacks, for scripts/device_check.py to carry:
# hydra-core, omegaconf, antlr4-python3-runtime, Hydra's joblib and submitit launcher plugins and
# submitit, at the versions installed here (the image has Python 3.12 with torch, Lightning, numpy,
# scipy, scikit-learn, numba, h5py, matplotlib, pillow, joblib and cloudpickle; W&B is not carried: the
# device check logs to CSV). Run here, where pip reaches an index; then on the device:
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
#   PYTHONPATH=/tmp/site:src python3 scripts/device_check.py --out $OUT/device_check.json
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DEST=.whl
version() { "$PY" -c "from importlib.metadata import version; print(version('$1'))"; }

rm -rf "$DEST"
mkdir -p "$DEST"
for pkg in hydra-core omegaconf hydra-joblib-launcher hydra-submitit-launcher submitit; do
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d "$DEST" "$pkg==$(version "$pkg")"
done
# omegaconf pins antlr4-python3-runtime 4.9.*, published as a source archive only: build its (pure Python) wheel
"$PY" -m pip wheel -q --no-deps -w "$DEST" "antlr4-python3-runtime==$(version antlr4-python3-runtime)"
ls -l "$DEST"
du -sh "$DEST"
