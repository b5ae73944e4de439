#!/usr/bin/env bash
# On the device machine after the three Warp pieces are in /tmp/gw, carry [".whl"]: the bridge on CUDA.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
[ -d /tmp/site/warp ] || { cat /tmp/gw/wp_* | xz -d | tar xf - -C /tmp/site || exit 1; }
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.5
# JAX on the GPU as the reference (JAX_PLATFORMS=cpu gives the CPU reference)
timeout 110 python3 -m pytest -q -p no:cacheprovider -k cuda tests/test_warp_bridge.py 2>&1 | tail -8 | tee $OUT/warp_tests.txt
timeout 100 python3 -m experiments.bench_bridge --device cuda --num-envs 4096 --steps 32 2>&1 | grep -v Module | tee $OUT/bench_bridge.txt
