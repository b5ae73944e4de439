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


def draw_square_arena(ax, half_width: float) -> None:
    """Frame ``ax`` on the square ``[-half_width, half_width]^2`` [m] with equal axes and draw its walls."""
    import matplotlib.patches as patches

    ax.set_xlim(-half_width, half_width)
    ax.set_ylim(-half_width, half_width)
    ax.set_aspect("equal")
    ax.add_patch(patches.Rectangle((-half_width, -half_width), 2 * half_width, 2 * half_width, fill=False, lw=2,
                                   color="k"))


def write_animation(env: DiffEnv, states, path: str, fps: int = 20, every: int = 1,
                    title: str | None = None, titles: list[str] | None = None, columns: int = 2) -> str:
    """Write a GIF of a trajectory ``states [T, state_dim]``, or of several side by side (``[E, T,
    state_dim]``, one panel per episode titled by ``titles``, ``columns`` per row), every ``every``-th frame."""
    import imageio.v2 as imageio

    states = np.asarray(states)
    if states.ndim == 2:
        frames = render(env, states[::every], title=title)
    else:
        titles = titles or [f"episode {i}" for i in range(len(states))]
        panels = [render(env, episode[::every], title=name) for episode, name in zip(states, titles)]
        blank = np.full_like(panels[0], 255)
        panels += [blank] * (-len(panels) % columns)
        rows = [np.concatenate(panels[i:i + columns], axis=2) for i in range(0, len(panels), columns)]
        frames = np.concatenate(rows, axis=1)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    imageio.mimsave(path, list(frames), duration=1.0 / fps, loop=0)
    return path


def pick_episodes(success, count: int = 4) -> list[int]:
    """Indices of up to ``count`` episodes from per-episode ``success [E]``: half successes and half
    failures where both exist (the rest from whichever has more), in index order within each."""
    success = np.asarray(success) > 0
    wins, losses = list(np.flatnonzero(success)), list(np.flatnonzero(~success))
    take_wins = min(len(wins), max(count // 2, count - len(losses)))
    return wins[:take_wins] + losses[:count - take_wins]
