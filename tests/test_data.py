"""Datasets: mixture means and samples, stacked MNIST, the bundled sample, image folders,
range checks, and the shuffled batches the training loop draws."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

import ganlib
import ganlib.image_folder
from ganlib.batches import LoaderBatches, TensorBatches, make_batches
from ganlib.data import (DATASETS, check_images, load_dataset, load_images, stacked_mnist,
                         to_signed, to_unit)
from ganlib.mixtures import grid_means, grid_of_gaussians, ring_means, ring_of_gaussians

CPU = torch.device("cpu")


# ----------------------------------------------------------------------------- 2-D mixtures

def test_ring_means_are_eight_distinct_unit_points_at_multiples_of_45_degrees():
    means = ring_means()
    assert means.shape == (8, 2)
    expected = torch.tensor([[math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8)]
                             for k in range(8)])
    torch.testing.assert_close(means, expected)
    torch.testing.assert_close(means.norm(dim=1), torch.ones(8))
    # Neighbours on a unit 8-gon are 2 sin(pi/8) ~ 0.765 apart: no mode is repeated.
    dist = torch.cdist(means, means) + 10 * torch.eye(8)
    assert dist.min() == pytest.approx(2 * math.sin(math.pi / 8), abs=1e-5)


def test_linspace_would_repeat_a_ring_mode_but_ring_means_does_not():
    angles = torch.linspace(0, 2 * math.pi, 8)  # the classic bug: 0 and 2*pi coincide
    bad = torch.stack([angles.cos(), angles.sin()], dim=1)
    assert (bad[0] - bad[-1]).norm() < 1e-5
    means = ring_means()
    assert (means[0] - means[-1]).norm() > 0.7
    assert len({(round(a, 4), round(b, 4)) for a, b in means.tolist()}) == 8


def test_ring_means_radius_and_k():
    means = ring_means(k=5, radius=2.0)
    assert means.shape == (5, 2)
    torch.testing.assert_close(means.norm(dim=1), torch.full((5,), 2.0))


def test_grid_means_are_the_5x5_grid_minus4_to_4_step_2():
    means = grid_means()
    assert means.shape == (25, 2)
    got = {(float(a), float(b)) for a, b in means.tolist()}
    ticks = (-4.0, -2.0, 0.0, 2.0, 4.0)
    assert got == {(a, b) for a in ticks for b in ticks}


@pytest.mark.parametrize("make, means, std", [
    (ring_of_gaussians, ring_means(), 0.01),
    (grid_of_gaussians, grid_means(), 0.05),
])
def test_mixture_samples_lie_near_their_labelled_modes_with_the_right_std(make, means, std):
    data = make(n=40_000, seed=3)
    x, y = data.x, data.y
    assert x.shape == (40_000, 2) and y.shape == (40_000,)
    assert y.min() == 0 and y.max() == len(means) - 1
    residual = x - means[y]  # (n, 2): each point minus its own mode
    assert residual.mean(0).abs().max() < 5 * std / math.sqrt(len(x))  # 5 sigma
    assert residual.std(0).tolist() == pytest.approx([std, std], rel=0.03)
    # The label is the nearest mode, and every mode gets about its share of points.
    assert torch.equal(torch.cdist(x, means).argmin(1), y)
    counts = torch.bincount(y, minlength=len(means)).float()
    assert counts.min() > 0.85 * len(x) / len(means)


def test_mixture_default_stds_and_seeds():
    ring = ring_of_gaussians(n=20_000)
    assert (ring.x - ring_means()[ring.y]).std().item() == pytest.approx(0.01, rel=0.05)
    grid = grid_of_gaussians(n=20_000)
    assert (grid.x - grid_means()[grid.y]).std().item() == pytest.approx(0.05, rel=0.05)
    assert torch.equal(ring_of_gaussians(n=100, seed=1).x, ring_of_gaussians(n=100, seed=1).x)
    assert not torch.equal(ring_of_gaussians(n=100, seed=1).x, ring_of_gaussians(n=100, seed=2).x)


# ----------------------------------------------------------------------------- stacked MNIST

def test_stacked_mnist_channels_are_real_digits_matching_the_label(mnist_sample):
    data = stacked_mnist(mnist_sample, n=600, seed=0)
    assert data.x.shape == (600, 3, 28, 28)
    assert data.y.shape == (600,)
    # Every channel must be one of the sample's images, of the digit the label says.
    labels_of = {}
    for img, label in zip(mnist_sample.x[:, 0], mnist_sample.y.tolist()):
        labels_of.setdefault(img.numpy().tobytes(), set()).add(label)
    for img, label in zip(data.x, data.y.tolist()):
        digits = (label // 100, label // 10 % 10, label % 10)  # label = 100 a + 10 b + c
        for channel, digit in zip(img, digits):
            assert digit in labels_of[channel.numpy().tobytes()]
    # 600 draws from 1,000 equally likely modes hit ~450 distinct ones.
    assert 350 < len(set(data.y.tolist())) <= 600
    assert data.x.min() >= -1 and data.x.max() <= 1


def test_stacked_mnist_needs_labelled_one_channel_digits(mnist_sample):
    unlabelled = ganlib.ImageData(mnist_sample.x, None, "x", "x")
    with pytest.raises(ValueError, match="labelled one-channel"):
        stacked_mnist(unlabelled, n=10)


# ----------------------------------------------------------------------------- bundled sample

@pytest.mark.parametrize("train, n", [(True, 5000), (False, 1000)])
def test_bundled_mnist_sample_is_balanced_and_in_range(train, n):
    data = ganlib.load_mnist_sample(train=train)
    assert data.x.shape == (n, 1, 28, 28)
    assert data.x.dtype == torch.float32
    assert data.x.min().item() == -1.0 and data.x.max().item() == 1.0
    assert torch.equal(torch.bincount(data.y), torch.full((10,), n // 10))
    assert len(data) == n
    assert data.name == "mnist-sample"
    check_images(data.x, channels=1, image_size=28)  # passes the training loop's own check


# ----------------------------------------------------------------------------- image files

def _write_png(path, size_wh, colour, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size_wh, colour).save(path)


@pytest.fixture
def image_folder(tmp_path):
    """Five images of odd sizes and modes, some in nested class folders, plus a non-image."""
    root = tmp_path / "imgs"
    _write_png(root / "a_red.png", (40, 50), (255, 0, 0))
    _write_png(root / "cats" / "b_green.png", (50, 40), (0, 255, 0))
    _write_png(root / "dogs" / "puppies" / "c_blue.png", (64, 64), (0, 0, 255))
    _write_png(root / "dogs" / "d_grey.PNG", (17, 23), 128, mode="L")
    _write_png(root / "e_white.png", (100, 70), (255, 255, 255, 255), mode="RGBA")
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.mark.parametrize("size", [32, 64])
def test_load_images_reads_nested_folders_of_odd_sizes(image_folder, size):
    data = load_images(image_folder, image_size=size)
    assert data.x.shape == (5, 3, size, size)
    assert data.x.dtype == torch.float32
    assert data.x.min() >= -1 and data.x.max() <= 1
    assert data.y is None
    # Solid colours come back as exact [-1, 1] values, one per file (RGBA, L -> RGB).
    grey = 128 / 127.5 - 1
    expected = [(1, -1, -1), (-1, 1, -1), (-1, -1, 1), (grey, grey, grey), (1, 1, 1)]
    got = data.x.mean(dim=(2, 3))  # (5, 3): the mean colour of each image
    torch.testing.assert_close(torch.tensor(sorted(got.tolist())),
                               torch.tensor(sorted(expected)), atol=1e-3, rtol=0)


def test_load_images_from_npz(tmp_path):
    images = np.zeros((6, 40, 50, 3), dtype=np.uint8)  # (N, H, W, 3) uint8, odd size
    images[:3, ..., 0] = 255  # three red, three black
    np.savez(tmp_path / "set.npz", images=images)
    data = load_images(tmp_path / "set.npz", image_size=32)
    assert data.x.shape == (6, 3, 32, 32)
    torch.testing.assert_close(data.x[0, :, 5, 5], torch.tensor([1.0, -1.0, -1.0]))
    torch.testing.assert_close(data.x[5], torch.full((3, 32, 32), -1.0))
    assert data.name == "set"


def test_load_images_errors(tmp_path):
    np.savez(tmp_path / "wrong.npz", pictures=np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="no 'images' array.*pictures"):
        load_images(tmp_path / "wrong.npz", image_size=32)
    np.savez(tmp_path / "empty.npz", images=np.zeros((0, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="holds no images"):
        load_images(tmp_path / "empty.npz", image_size=32)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_images(tmp_path / "missing", image_size=32)
    (tmp_path / "no_images").mkdir()
    (tmp_path / "no_images" / "readme.txt").write_text("hi")
    with pytest.raises(ValueError, match="no images"):
        load_images(tmp_path / "no_images", image_size=32)
    with pytest.raises(ValueError, match="32 or 64"):
        load_images(tmp_path / "no_images", image_size=28)


def _unreadable(root):
    """A file that is not an image and a truncated PNG, both with image extensions."""
    (root / "fake.jpg").write_text("not an image")
    whole = (root / "a_red.png").read_bytes()
    (root / "cats" / "cut.png").write_bytes(whole[:len(whole) // 2])
    return [root / "cats" / "cut.png", root / "fake.jpg"]


def test_unreadable_files_are_skipped_with_one_warning_naming_them(image_folder):
    bad = _unreadable(image_folder)
    with pytest.warns(UserWarning) as caught:
        data = load_images(image_folder, image_size=32)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "skipped 2 unreadable image file(s)" in message
    assert all(str(f) in message for f in bad)
    assert data.x.shape == (5, 3, 32, 32)  # the five good images, nothing from the bad two


def test_a_folder_with_no_readable_image_is_refused_naming_the_first(tmp_path):
    (tmp_path / "b.png").write_text("no")
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # a PNG header, then nothing
    with pytest.raises(ValueError, match=r"none of the 2 image files .* \(first: .*a\.png\)"):
        load_images(tmp_path, image_size=32)


def test_a_lazy_folder_names_an_unreadable_file_when_it_reaches_it(image_folder, monkeypatch):
    _unreadable(image_folder)
    monkeypatch.setattr(ganlib.image_folder, "PRELOAD_LIMIT_BYTES", 0)  # read lazily
    data = load_images(image_folder, image_size=32)
    assert len(data) == 7 and "(lazy)" in data.source
    files = [str(f) for f in data.x.files]
    assert data.x[files.index(str(image_folder / "a_red.png"))].shape == (3, 32, 32)
    with pytest.raises(ValueError, match=r"cannot read image .*fake\.jpg.*remove or replace"):
        data.x[files.index(str(image_folder / "fake.jpg"))]


@pytest.mark.parametrize("content, message", [
    (b"junk", "is not a readable .npz file"),
    (None, "'images' must be uint8 \\(N, H, W, 3\\)"),
])
def test_a_bad_npz_is_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / "set.npz"
    if content is None:
        np.savez(path, images=np.zeros((2, 8, 8), np.float32))  # grey floats, not RGB uint8
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as err:
        load_images(path, image_size=32)
    assert "\n" not in str(err.value)


def test_a_missing_path_or_a_file_is_refused_saying_which(tmp_path, image_folder):
    with pytest.raises(FileNotFoundError, match="no file or folder at"):
        load_dataset(str(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError, match="is a file, not an image folder"):
        load_images(image_folder / "a_red.png")


# ----------------------------------------------------------------------------- ranges

def test_to_signed_and_to_unit():
    x = torch.tensor([0.0, 0.25, 0.5, 1.0])
    torch.testing.assert_close(to_signed(x), torch.tensor([-1.0, -0.5, 0.0, 1.0]))
    u8 = torch.tensor([0, 255, 51], dtype=torch.uint8)
    torch.testing.assert_close(to_signed(u8), torch.tensor([-1.0, 1.0, 51 / 127.5 - 1]))
    assert to_signed(u8).dtype == torch.float32
    torch.testing.assert_close(to_unit(torch.tensor([-1.0, 0.0, 1.0])),
                               torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(to_unit(torch.tensor([-1.2, 1.3])), torch.tensor([0.0, 1.0]))
    y = torch.rand(100)
    torch.testing.assert_close(to_unit(to_signed(y)), y)


def test_check_images_accepts_a_valid_batch():
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    assert check_images(x, channels=3, image_size=32) is None


@pytest.mark.parametrize("x, kwargs, error, message", [
    (torch.zeros(2, 1, 8, 8, dtype=torch.uint8), {}, ValueError, "to_signed"),
    (torch.rand(2, 1, 8, 8), {}, ValueError, r"\[0, 1\].*to_signed"),
    (torch.rand(2, 1, 8, 8) * 255, {}, ValueError, r"must be in \[-1, 1\].*max=2"),
    (torch.zeros(2, 8, 8), {}, ValueError, r"shape \(B, C, H, W\)"),
    (torch.zeros(2, 3, 8, 8), {"channels": 1}, ValueError, "expects 1 channel.*have 3"),
    (torch.zeros(2, 1, 8, 8), {"image_size": 28}, ValueError, "28x28.*8x8.*image_size=28"),
    (torch.full((2, 1, 8, 8), float("nan")), {}, ValueError, "NaN"),
    (np.zeros((2, 1, 8, 8), np.float32), {}, TypeError, "torch.Tensor"),
])
def test_check_images_errors_say_what_to_do(x, kwargs, error, message):
    with pytest.raises(error, match=message):
        check_images(x, **kwargs)


# ----------------------------------------------------------------------------- batches

def _numbered(n):
    return torch.arange(n, dtype=torch.float32).unsqueeze(1)  # (n, 1): item i holds i


def _take(it, k):
    return [next(it) for _ in range(k)]


def test_batches_are_on_the_device_and_full():
    b = TensorBatches(_numbered(23), batch_size=5, device=CPU, seed=0)
    assert b.steps_per_epoch == 4  # only full batches: 23 // 5
    for x in _take(b.iterate(), 9):
        assert x.device == CPU and x.shape == (5, 1)


def test_each_epoch_is_a_permutation_with_no_repeats():
    n, bs = 24, 6
    b = TensorBatches(_numbered(n), batch_size=bs, device=CPU, seed=0)
    batches = _take(b.iterate(), 3 * b.steps_per_epoch)
    epochs = [torch.cat(batches[e * 4:(e + 1) * 4]).flatten() for e in range(3)]
    for items in epochs:
        assert sorted(items.tolist()) == list(range(n))
    assert not torch.equal(epochs[0], epochs[1])  # reshuffled every epoch
    assert not torch.equal(epochs[0], torch.arange(n, dtype=torch.float32))  # shuffled at all


def test_same_seed_same_order_different_seed_different_order():
    def order(seed):
        b = TensorBatches(_numbered(40), batch_size=8, device=CPU, seed=seed)
        return torch.cat(_take(b.iterate(), 10))
    assert torch.equal(order(1), order(1))
    assert not torch.equal(order(1), order(2))


@pytest.mark.parametrize("k", [0, 1, 3, 4, 5, 9])
def test_iterate_from_start_batch_continues_exactly_the_sequence(k):
    b = TensorBatches(_numbered(22), batch_size=5, device=CPU, seed=7)  # 4 batches per epoch
    full = _take(b.iterate(), 14)
    resumed = _take(b.iterate(start_batch=k), 14 - k)
    assert all(torch.equal(x, y) for x, y in zip(full[k:], resumed))


def test_loader_batches_draw_the_same_sequence_as_tensor_batches():
    x = _numbered(22)

    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return len(x)

        def __getitem__(self, i):
            return x[i]

    tensor = TensorBatches(x, batch_size=5, device=CPU, seed=3)
    lazy = LoaderBatches(Items(), batch_size=5, device=CPU, seed=3, num_workers=0)
    assert all(torch.equal(a, b) for a, b in zip(_take(tensor.iterate(2), 7),
                                                 _take(lazy.iterate(2), 7)))
    assert isinstance(make_batches(Items(), 5, CPU), LoaderBatches)
    assert isinstance(make_batches(ganlib.ImageData(x, None, "n", "n"), 5, CPU), TensorBatches)


def test_batches_refuse_empty_data_and_oversized_batches():
    with pytest.raises(ValueError, match="empty"):
        TensorBatches(torch.zeros(0, 1), batch_size=1, device=CPU)
    with pytest.raises(ValueError, match="batch_size 11 is larger than the dataset.*at most 10"):
        TensorBatches(_numbered(10), batch_size=11, device=CPU)


# ----------------------------------------------------------------------------- by name

def test_load_dataset_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown dataset 'mnistt'") as err:
        load_dataset("mnistt")
    for name in DATASETS:
        assert name in str(err.value)


def test_load_dataset_by_name_and_path(image_folder):
    data = load_dataset("mnist-sample", image_size=32)
    assert data.x.shape == (5000, 1, 32, 32)
    assert data.x.min() >= -1 and data.x.max() <= 1
    assert load_dataset("mnist-sample", train=False).x.shape == (1000, 1, 28, 28)
    assert load_dataset("ring").x.shape[1] == 2
    assert load_dataset("grid").y.max() == 24
    assert load_dataset(str(image_folder), image_size=32).x.shape == (5, 3, 32, 32)
