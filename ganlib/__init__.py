"""ganlib: the small GAN library behind the book. Data, models, losses, training, plots.

The names a chapter uses are re-exported here: `from ganlib import train, TrainConfig`.
"""
from .checkpoint import CheckpointError, load_checkpoint
from .data import (ImageData, check_images, load_dataset, load_images, load_mnist_sample,
                   make_batches, stacked_mnist, to_signed, to_unit)
from .losses import LOSSES, GANLoss, get_loss, gradient_penalty
from .losses import r1_penalty  # [practice] chapter 10
from .ema import ema_model  # [practice] chapter 10
from .mixtures import grid_of_gaussians, ring_of_gaussians
from .models import MODELS, Packed, build_models, pack
from .plot import plot_history, show_grid, show_points
from .train import (TrainConfig, TrainingDiverged, d_step, g_step, generate, new_history,
                    train)
from .utils import budget, get_device, seed_everything

__version__ = "0.1.0"

# Chapter 7 (evaluating GANs) and chapter 6 (mode collapse): offline metrics.
from .classifier import ClassifierError, load_classifier
from .inception import InceptionUnavailable, inception_fid
from .metrics import (Embedding, class_histogram, classes_covered, classifier_score, embed,
                      fid, fid_evaluator, frechet_distance, image_metrics, kl_to_uniform,
                      precision_recall)
from .mode_metrics import (mixture_metrics, mode_evaluator, stacked_mnist_metrics,
                           stacked_mnist_modes)
