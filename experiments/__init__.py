"""Command-line entry points: ``run`` (one configuration, several seeds) and ``bench`` (throughput)."""
import os

CPU_POOL_FLAG = "--xla_cpu_multi_thread_eigen=false"


def configure_xla_cpu() -> None:
    """Turn off XLA's multi-threaded Eigen pool on CPU, before JAX starts (entry points only).

    With it on, vmapped training programs sometimes never return on small (2-core) CPU machines: every
    XLA thread waits on a futex (seen here with jax 0.10.2, as reported upstream by other projects). XLA's
    own thread pool still parallelises the program. A user who sets ``--xla_cpu_multi_thread_eigen``
    themselves keeps their value."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {CPU_POOL_FLAG}".strip()
