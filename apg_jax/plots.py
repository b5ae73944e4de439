"""Figures of one run: evaluation return against env steps and against gradient steps."""
from __future__ import annotations

import numpy as np


def plot_learning_curves(rows: list[dict], path: str, title: str) -> str:
    """Mean and per-seed eval return against ``env_steps`` and ``actor_grad_steps``; writes a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    seeds = sorted({r["seed"] for r in rows})
    for ax, x_key, label in zip(axes, ("env_steps", "actor_grad_steps"), ("environment steps", "actor gradient steps")):
        curves = []
        for seed in seeds:
            mine = [r for r in rows if r["seed"] == seed]
            x = np.array([r[x_key] for r in mine], float)
            y = np.array([r["eval_return"] for r in mine], float)
            ax.plot(x, y, color="tab:blue", alpha=0.25, lw=1)
            curves.append(y)
        ax.plot(x, np.mean(curves, axis=0), color="tab:blue", lw=2, label=f"mean of {len(seeds)} seeds")
        ax.set_xlabel(label)
        ax.set_ylabel("evaluation return")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
