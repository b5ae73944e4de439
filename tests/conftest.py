"""Fixtures shared by several test files."""
import os

# `pytest -n 2` runs two processes: on a GPU each would otherwise reserve 75 % of its memory at start
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402  (after the environment variable above)
import pytest
from jax import monitoring

_COMPILES: list[str] = []
monitoring.register_event_duration_secs_listener(
    lambda name, duration, **kwargs: _COMPILES.append(name) if name == "/jax/core/compile/backend_compile_duration" else None)


@pytest.fixture
def compiles() -> list[str]:
    """A list that grows by one entry for every XLA backend compilation in this process."""
    return _COMPILES


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test file: one process compiles hundreds of them, and the
    default suite once crashed inside XLA's CPU compiler late in the run (not reproducible in a run of
    that file alone)."""
    yield
    jax.clear_caches()
