"""Test session set-up: the same XLA CPU configuration as the command-line entry points."""
from experiments import configure_xla_cpu

configure_xla_cpu()  # before any test imports jax
