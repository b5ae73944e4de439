"""Command-line helpers shared by ``run``, ``sweep``, ``report`` and the other entry points."""
from __future__ import annotations

import argparse
import ast
import os


def parse_overrides(pairs: list[str]) -> dict:
    """``["name=value", ...]`` -> ``{name: value}``; values are Python literals where they parse as one
    (``3e-4``, ``True``, ``(64, 64)``; ``true``/``false`` in any case are booleans too), else strings; ``-``
    in names becomes ``_``."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"--set expects NAME=VALUE, got '{pair}'")
        name, value = pair.split("=", 1)
        name = name.strip().replace("-", "_")
        if value.strip().lower() in ("true", "false"):
            out[name] = value.strip().lower() == "true"
            continue
        try:
            out[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[name] = value
    return out


def parse_ranges(pairs: list[str]) -> dict:
    """``["name=low:high", ...]`` -> ``{name: (low, high)}`` (``--env-randomize``)."""
    out = {}
    for pair in pairs:
        try:
            name, bounds = pair.split("=", 1)
            low, high = (float(b) for b in bounds.split(":"))
        except ValueError:
            raise SystemExit(f"--env-randomize expects NAME=LOW:HIGH (e.g. friction=0.15:0.45), got '{pair}'")
        out[name.strip().replace("-", "_")] = (low, high)
    return out


def segment_length(text: str):
    """``--segment-length`` values: an integer, ``auto`` or ``full`` (kept as text; ``full`` means the
    config value ``None``)."""
    if text in ("auto", "full"):
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"segment length must be an integer, 'auto' or 'full', got '{text}'")


def config_name(config) -> str:
    """Label of a configuration, e.g. ``tblock-apg-K10-mc`` or ``franka-ppo``."""
    name = f"{config.task}-{config.algo}"
    if config.algo in ("apg", "hybrid"):
        name += f"-K{config.segment_length or 'full'}-{config.bootstrap}"
    if config.segment_length == "auto" and config.adapt_snr_over == "chunk":
        name += "-chunksnr"
    if config.segment_length == "auto" and config.adapt_hold_on_noise:
        name += "-hold"
    if config.segment_length == "auto" and config.adapt_confirmations > 1:
        name += f"-confirm{config.adapt_confirmations}"
    if config.segment_length == "auto" and config.adapt_reset_optimizer:
        name += "-restart"
    if config.segment_length == "auto" and config.adapt_rescale_optimizer:
        name += "-rescale"
    if config.algo == "hybrid" and config.hybrid_reuse_epochs:
        name += f"-reuse{config.hybrid_reuse_epochs}"
        if config.hybrid_advantages == "gae":
            name += "-gae"
    if config.algo == "hybrid" and config.hybrid_explore_fraction < 1.0:
        name += f"-explore{config.hybrid_explore_fraction:g}"
    if config.train_episode_length is not None:
        name += f"-train{config.train_episode_length}"
    for key, value in sorted(config.env_params.items()):
        name += f"-{key}{value}"
    for key, (low, high) in sorted(config.randomize.items()):
        name += f"-{key}{low:g}to{high:g}"
    return name


def default_out_dir(config, num_seeds: int, backend: str = "jax") -> str:
    """``runs/<label>-seed<first>x<count>`` (the Warp backend's label carries ``-warp`` after the task)."""
    name = config_name(config)
    if backend != "jax":
        name = name.replace(f"{config.task}-", f"{config.task}-{backend}-", 1)
    return os.path.join("runs", f"{name}-seed{config.seed}x{num_seeds}")


def select_platform(device: str | None) -> None:
    """Choose JAX's platform (``cpu`` or ``gpu``/``cuda``); must run before JAX initialises."""
    if device:
        os.environ["JAX_PLATFORMS"] = "cuda" if device in ("gpu", "cuda") else "cpu"
