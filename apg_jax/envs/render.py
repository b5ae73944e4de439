"""Rendering of physics-state trajectories to RGB frames and animated GIFs (matplotlib, Agg)."""
from __future__ import annotations

import os

import numpy as np

from apg_jax.envs.base import DiffEnv


def render(env: DiffEnv, states, size_px: int = 320, title: str | None = None) -> np.ndarray:
    """Draw physics states ``states [T, state_dim]`` (or one ``[state_dim]``) as ``uint8 [T, H, W, 3]``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    states = np.asarray(states, dtype=np.float64)
    if states.ndim == 1:
        states = states[None]
    if states.ndim != 2 or states.shape[1] != env.state_dim:
        raise ValueError(f"states must have shape [T, {env.state_dim}], got {states.shape}")
    dpi = 80
    fig, ax = plt.subplots(figsize=(size_px / dpi, size_px / dpi), dpi=dpi,
                           subplot_kw={"projection": env.render_projection})
    fig.subplots_adjust(left=0.17, right=0.95, bottom=0.15, top=0.9)  # fixed: frames stay aligned
    frames = []
    try:
        for t, q in enumerate(states):
            ax.clear()
            env.draw(ax, q)
            if title:
                ax.set_title(title, fontsize=8)
            fig.canvas.draw()
            frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    finally:
        plt.close(fig)
    return np.stack(frames)


def write_animation(env: DiffEnv, states, path: str, fps: int = 20, every: int = 1,
                    title: str | None = None) -> str:
    """Write a GIF of a trajectory ``states [T, state_dim]`` (every ``every``-th frame) to ``path``."""
    import imageio.v2 as imageio

    frames = render(env, np.asarray(states)[::every], title=title)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    imageio.mimsave(path, list(frames), duration=1.0 / fps, loop=0)
    return path
