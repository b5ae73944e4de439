#!/usr/bin/env bash
# On the device machine, carry [".whl"]: JAX throughput and parity checks on CUDA, results under $OUT.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.9
python3 -c "import jax; print(jax.__version__, jax.devices())" | tee $OUT/gpu.txt
bench() { timeout "$1" python3 -m experiments.bench --device gpu --steps 128 "${@:3}" 2>&1 | tee "$OUT/$2"; }
bench 230 bench_4096.txt --num-envs 4096 --methods "apg mc,ppo"
bench 150 bench_1024x8.txt --num-envs 1024 --seeds 8 --methods "apg mc"
bench 100 bench_1024x1.txt --num-envs 1024 --methods "apg mc"
# the full-float32 product check and pointmass2d's own tests with JAX on the GPU (parity against Warp and
# the CPU, which TF32 failed before stop 47, is in warp_checks.sh)
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_fullprecision.py tests/test_pointmass2d.py 2>&1 | tail -5 | tee $OUT/tests_jax_gpu.txt
