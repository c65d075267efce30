"""Optional: the usual Inception-v3 FID, for users who can download its weights (Colab).

Never the default: ganlib's own `ganlib.metrics.fid` (FID-MNIST) works offline and suits
28x28 digits better. This needs `pip install 'ganlib[inception]'` (torchmetrics with
torch-fidelity) and network access once for the ~100 MB of weights; without them it raises
`InceptionUnavailable` saying so. Introduced in chapter 7 (evaluating GANs).
"""
from __future__ import annotations

import torch

from .data import to_unit
from .device import get_device


class InceptionUnavailable(RuntimeError):
    """Inception FID cannot run here: the optional library or its weights are missing."""


INCEPTION_HELP = ("Inception FID is an optional extra: `pip install 'ganlib[inception]'` "
                  "(torchmetrics with torch-fidelity), and network access the first time, to "
                  "download the Inception-v3 weights (~100 MB; Colab works). Offline, use "
                  "ganlib.metrics.fid (FID-MNIST), which needs neither.")


def inception_fid(x_real: torch.Tensor, x_fake: torch.Tensor, batch_size: int = 100,
                  device="auto") -> float:
    """Optional: the usual Inception-v3 FID (Heusel et al. 2017) through torchmetrics.

    Never the default and not comparable with `ganlib.metrics.fid` (other features). Images
    `(N, C, H, W)` in [-1, 1] with 1 or 3 channels; torchmetrics resizes them to 299x299.
    Raises `InceptionUnavailable`, saying what to install, when torchmetrics or the
    weights are missing (as offline). Introduced in chapter 7 (evaluating GANs).
    """
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
    except ImportError as err:
        raise InceptionUnavailable(f"torchmetrics is not installed. {INCEPTION_HELP}") from err
    device = get_device(device)
    try:
        metric = FrechetInceptionDistance(feature=2048, normalize=True).to(device)
    except Exception as err:  # no torch-fidelity, or the weight download failed (offline)
        raise InceptionUnavailable(f"could not set up Inception-v3 ({type(err).__name__}: "
                                   f"{str(err)[:200]}). {INCEPTION_HELP}") from err
    for x, real in ((x_real, True), (x_fake, False)):
        for i in range(0, len(x), batch_size):
            xb = to_unit(x[i:i + batch_size].to(device).float())  # [-1, 1] -> [0, 1]
            metric.update(xb.expand(-1, 3, -1, -1) if xb.shape[1] == 1 else xb, real=real)
    return float(metric.compute())
