"""Fixtures shared by several test files."""
import pytest
from jax import monitoring

_COMPILES: list[str] = []
monitoring.register_event_duration_secs_listener(
    lambda name, duration, **kwargs: _COMPILES.append(name) if name == "/jax/core/compile/backend_compile_duration" else None)


@pytest.fixture
def compiles() -> list[str]:
    """A list that grows by one entry for every XLA backend compilation in this process."""
    return _COMPILES
