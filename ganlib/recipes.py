"""Named training recipes: settings chosen by measurement for a goal, e.g. good digits fast.

A recipe is a model and the `TrainConfig` fields that differ from the defaults. Use one
from Python with `recipe_config(name, **overrides)` and `build_models(recipe.model, ...)`,
or on the command line with `python -m ganlib train --recipe NAME` (any flag given beside
it still wins). Each recipe says what it was measured to reach and where the measurement
lives: a script in `benchmarks/` that anyone can rerun. Introduced in chapter 10 (GANs in
practice: what makes a GAN train fast on a CPU).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .training import TrainConfig


@dataclass(frozen=True)
class Recipe:
    """A model name (`ganlib.models.MODELS`), the `TrainConfig` fields it sets, and what
    it is for."""
    name: str
    model: str
    settings: dict = field(default_factory=dict)
    about: str = ""


#: The recipes by name; each one's comment says which benchmark candidate it is.
RECIPES = {
    "fast-mnist": Recipe(
        name="fast-mnist", model="mlp-bn",
        # benchmarks/time_to_quality.py, candidate mlp-bn-ema995-b128 (benchmarks/README.md):
        # 002's small MLP + BatchNorm, a batch of 128 at twice the usual learning rate, and
        # samples from a warmed-up moving average of G's weights (decay 0.995)
        settings=dict(data="mnist", batch_size=128, lr_g=4e-4, lr_d=4e-4, betas=(0.5, 0.999),
                      loss="bce", ema=0.995, num_steps=4000),
        about="the most FID-MNIST per CPU-second among the candidates of "
              "benchmarks/time_to_quality.py: about two minutes on a 2-core CPU"),
}


def get_recipe(name: str) -> Recipe:
    """The recipe called `name`; a clear error lists the known ones."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[name]


def recipe_config(name: str, **overrides) -> TrainConfig:
    """The `TrainConfig` of recipe `name`, with `overrides` (any TrainConfig field) on top,
    e.g. `recipe_config("fast-mnist", num_steps=20_000, out_dir="runs/fast")`."""
    recipe = get_recipe(name)
    return TrainConfig(**{"model": recipe.model, **recipe.settings, **overrides})


__all__ = ["RECIPES", "Recipe", "get_recipe", "recipe_config"]
