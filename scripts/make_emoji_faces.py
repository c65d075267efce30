"""Rebuild ganlib/assets/emoji_faces_64.npz: the yellow faces of the Noto emoji set.

Chapter 4 trains its colour GANs on these faces. Shipping them inside ganlib means every
reader, locally or in Colab, trains on the same images the book shows.

    python scripts/make_emoji_faces.py --emoji DATA/emoji/emoji_google_64.npz

The input is the 3,786 Noto emoji as 64x64 RGB uint8 on white (key `images`; Noto Emoji,
Apache-2.0, Google). A face is an emoji in which at least 30% of the pixels are
emoji-face yellow at 32x32 (read by `ganlib.load_images`), the rule chapter 4 states. The output keeps the selected
images at 64x64, uint8, compressed, with key `images` (what `ganlib.load_images` reads)
and `index`, their positions in the input.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import ganlib
from ganlib.data import to_unit

OUT = Path(__file__).resolve().parents[1] / "ganlib" / "assets" / "emoji_faces_64.npz"


def yellow_fraction(x: torch.Tensor) -> torch.Tensor:
    """Fraction of each image's pixels that are emoji-face yellow: (N, 3, H, W) in [-1, 1]
    -> (N,). The same rule as chapter 4's cell."""
    red, green, blue = to_unit(x).unbind(1)                       # (N, H, W) each, in [0, 1]
    return ((red > 0.85) & (green > 0.6) & (green < 0.9) & (blue < 0.35)).float().mean((1, 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emoji", type=Path, required=True, help="emoji_google_64.npz")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    images = np.load(args.emoji)["images"]                              # (3786, 64, 64, 3)
    x32 = ganlib.load_images(args.emoji, image_size=32).x              # as chapter 4 reads it
    keep = torch.nonzero(yellow_fraction(x32) > 0.3).flatten().numpy()
    np.savez_compressed(args.out, images=images[keep], index=keep)
    print(f"{len(keep)} faces of {len(images)} emoji -> {args.out} "
          f"({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
