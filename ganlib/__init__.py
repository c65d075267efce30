"""ganlib: the small GAN library behind the book. Data, models, losses, training, plots.

The names a chapter uses are re-exported here: `from ganlib import train, TrainConfig`.
Each lives in the module named after its concept (`ganlib.sampling.generate`,
`ganlib.dcgan.DCGANGenerator`, ...); `__all__` lists them.
"""
from .batches import make_batches
from .checkpoint import CheckpointError, load_checkpoint
from .data import (check_images, load_dataset, load_images, load_mnist_sample, stacked_mnist,
                   to_signed, to_unit)
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .generator import Generator
from .image_data import ImageData
from .ema import ema_model
from .losses import LOSSES, GANLoss, get_loss, gradient_penalty, r1_penalty
from .mixtures import grid_of_gaussians, ring_of_gaussians
from .models import MODELS, Packed, build_models, describe_models, pack
from .plot import plot_history, show_grid, show_points
from .sampling import generate, generate_many
from .history import TrainingDiverged, new_history
from .training import TrainConfig, d_step, g_step, train
from .book import budget
from .device import get_device
from .seeding import seed_everything
from .validation import ConfigError

__version__ = "0.1.0"

# Chapter 7 (evaluating GANs) and chapter 6 (mode collapse): offline metrics.
from .classifier import ClassifierError, load_classifier  # noqa: E402
from .inception import InceptionUnavailable, inception_fid  # noqa: E402
from .metrics import (Embedding, class_histogram, classes_covered, classifier_score,  # noqa: E402
                      embed, fid, fid_evaluator, frechet_distance, image_metrics,
                      kl_to_uniform, precision_recall)
from .mode_metrics import (mixture_metrics, mode_evaluator, stacked_mnist_metrics,  # noqa: E402
                           stacked_mnist_modes)

# Chapter 9 (conditional GANs and the latent space).
from .conditional import (ConditionalGenerator, ProjectionDiscriminator,  # noqa: E402
                          conditional_accuracy, conditional_samples, per_class_fid)
from .latent import chi_mean, lerp, slerp  # noqa: E402

# Trained generators shipped with the package (chapters 3, 4, 8 and 9).
from .converged import PretrainedError, pretrained  # noqa: E402

# Named recipes chosen by measurement (chapter 10).
from .recipes import RECIPES, recipe_config  # noqa: E402

__all__ = [
    # data (chapter 3) and batches
    "ImageData", "check_images", "grid_of_gaussians", "load_dataset", "load_images",
    "load_mnist_sample", "make_batches", "ring_of_gaussians", "stacked_mnist", "to_signed",
    "to_unit",
    # models (chapters 3, 4, 6)
    "MODELS", "DCGANDiscriminator", "DCGANGenerator", "Generator", "Packed", "build_models",
    "describe_models", "pack",
    # losses (chapters 2, 5)
    "LOSSES", "GANLoss", "get_loss", "gradient_penalty", "r1_penalty", "ema_model",
    # training, sampling, checkpoints (chapter 3)
    "ConfigError", "TrainConfig", "TrainingDiverged", "d_step", "g_step", "generate",
    "generate_many", "new_history", "train", "CheckpointError", "load_checkpoint",
    # plots and utilities
    "plot_history", "show_grid", "show_points", "budget", "get_device", "seed_everything",
    # metrics (chapters 6, 7)
    "ClassifierError", "load_classifier", "InceptionUnavailable", "inception_fid", "Embedding",
    "class_histogram", "classes_covered", "classifier_score", "embed", "fid", "fid_evaluator",
    "frechet_distance", "image_metrics", "kl_to_uniform", "precision_recall",
    "mixture_metrics", "mode_evaluator", "stacked_mnist_metrics", "stacked_mnist_modes",
    # conditional GANs and the latent space (chapter 9)
    "ConditionalGenerator", "ProjectionDiscriminator", "conditional_accuracy",
    "conditional_samples", "per_class_fid", "chi_mean", "lerp", "slerp",
    # trained generators shipped with ganlib
    "PretrainedError", "pretrained",
    # recipes (chapter 10)
    "RECIPES", "recipe_config",
]
