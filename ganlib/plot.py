"""Figures: sample grids, 2-D scatter plots, loss curves. Each takes an optional `ax`,
returns the figure and never calls `plt.show()`. Introduced in chapter 3."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torchvision
from matplotlib import animation

from .data import to_unit


def _ax(ax, figsize):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def make_grid(x: torch.Tensor, nrow: int | None = None, padding: int = 2) -> torch.Tensor:
    """Tile images `(B, C, H, W)` in [-1, 1] into one `(C, H', W')` image in [0, 1]."""
    nrow = nrow or math.ceil(math.sqrt(len(x)))
    return torchvision.utils.make_grid(to_unit(x.detach().float().cpu()), nrow=nrow,
                                       padding=padding, pad_value=1.0)


def show_grid(x: torch.Tensor, nrow: int | None = None, ax=None, title: str | None = None):
    """Show a batch of images in [-1, 1] as a grid; returns the figure."""
    fig, ax = _ax(ax, (5, 5))
    grid = make_grid(x, nrow).permute(1, 2, 0)  # (C, H, W) -> (H, W, C)
    ax.imshow(grid.squeeze(-1) if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def show_points(x: torch.Tensor, means: torch.Tensor | None = None, ax=None,
                title: str | None = None, lim: float | None = None):
    """Scatter 2-D samples `(N, 2)`, with the true mixture means as crosses; returns the figure."""
    fig, ax = _ax(ax, (4, 4))
    x = x.detach().float().cpu()
    ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.4, label="samples")
    if means is not None:
        ax.scatter(means[:, 0], means[:, 1], marker="x", c="red", s=40, label="modes")
    if lim:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return fig


def plot_history(history: dict, ax=None, smooth: int = 50):
    """Plot the losses (and D's mean outputs, on a second axis) against the step.

    Curves are smoothed with a running mean over `smooth` steps; returns the figure.
    """
    fig, ax = _ax(ax, (7, 3.5))
    steps = history["step"]

    def run_mean(v):
        t = torch.tensor(v, dtype=torch.float64)
        k = max(1, min(smooth, len(t)))
        c = torch.cat([torch.zeros(1, dtype=t.dtype), t.cumsum(0)])
        return (c[k:] - c[:-k]) / k, steps[k - 1:]

    for key, colour in (("d_loss", "tab:blue"), ("g_loss", "tab:orange")):
        y, s = run_mean(history[key])
        ax.plot(s, y, label=key, color=colour)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    for key, style in (("d_real", "--"), ("d_fake", ":")):
        y, s = run_mean(history[key])
        ax2.plot(s, y, style, color="gray", label=key)
    ax2.set_ylabel("mean D output")
    lines = ax.get_lines() + ax2.get_lines()
    ax.legend(lines, [l.get_label() for l in lines], loc="upper right", fontsize="small")
    return fig


def animate_grids(frames, steps=None, interval: int = 150, title: str = "step {step:,}"):
    """An animation of sample grids, e.g. a generator learning from fixed noise.

    `frames` are images `(F, H, W)` (grey) or `(F, H, W, 3)`, uint8 or floats in [0, 1], such
    as the grids `ganlib.converged.frames(name)` returns; `steps (F,)` label each frame.
    Returns a `matplotlib.animation.FuncAnimation`; in a notebook show it with
    `IPython.display.HTML(anim.to_jshtml())`, which needs no video encoder and plays offline
    in the built book and in Colab. Introduced in chapter 4 (DCGAN).
    """
    frames = torch.as_tensor(frames)
    if frames.dim() not in (3, 4) or (frames.dim() == 4 and frames.shape[-1] != 3):
        raise ValueError(f"frames must be (F, H, W) or (F, H, W, 3), got {tuple(frames.shape)}")
    if steps is not None and len(steps) != len(frames):
        raise ValueError(f"got {len(frames)} frames but {len(steps)} steps; give one step per frame")
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.set_axis_off()
    image = ax.imshow(frames[0].numpy(), cmap="gray", vmin=0, vmax=255 if frames.dtype == torch.uint8 else 1)
    label = ax.set_title("")

    def show(i):
        image.set_data(frames[i].numpy())
        if steps is not None:
            label.set_text(title.format(step=int(steps[i])))
        return image, label

    anim = animation.FuncAnimation(fig, show, frames=len(frames), interval=interval, blit=False)
    plt.close(fig)  # the animation draws it; no static copy below it in a notebook
    return anim


def save_figure(fig, path: str | Path) -> None:
    """Save a figure (creating the folder) and close it."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def save_samples(x: torch.Tensor, path: str | Path, means: torch.Tensor | None = None) -> None:
    """Write a sample grid PNG for images, or a scatter plot PNG for 2-D points."""
    if x.dim() == 4:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        torchvision.utils.save_image(make_grid(x), path)
    else:
        save_figure(show_points(x, means), path)
