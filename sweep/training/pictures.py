"""PNG pictures of a trial's diagnostics, drawn with Pillow from plain arrays.

The first conv layer's filters as a grid of small images (colour when they see RGB, so colour
and orientation selectivity show), and a 2-D PCA scatter of hidden features coloured by class.
Stored as trial artifacts, they open from the Optuna dashboard and appear in the report.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FILTER_PIXELS = 48  # on-screen size of one filter, in picture pixels
PCA_SIZE = 480  # side of the PCA picture's scatter, in pixels
LEGEND_WIDTH = 240  # the class legend beside it, in pixels
LEGEND_ROW = 24  # one class per row, in pixels
LEGEND_FONT = 18  # pixels: about 15 on screen where the report shows the picture 400 high
# Twenty distinguishable colours (classes beyond twenty reuse them).
PALETTE = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
    (174, 199, 232), (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213),
    (196, 156, 148), (247, 182, 210), (199, 199, 199), (219, 219, 141), (158, 218, 229),
]


def filters_png(kernels: np.ndarray) -> bytes:
    """A grid of the filters in ``kernels`` (shape ``(k, k, channels_in, filters)``).

    Three input channels are shown as colour; otherwise each filter shows the mean over its
    input channels in grey. Each filter is scaled to its own range so weak ones stay visible.
    """
    kernels = np.asarray(kernels, dtype="float64")
    size, _, channels, count = kernels.shape
    columns = int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    cell = FILTER_PIXELS + 2
    picture = Image.new("RGB", (columns * cell, rows * cell), (255, 255, 255))
    for i in range(count):
        weights = kernels[:, :, :, i]
        weights = weights if channels == 3 else weights.mean(axis=2, keepdims=True).repeat(3, 2)
        low, high = weights.min(), weights.max()
        scaled = (weights - low) / (high - low) if high > low else np.full_like(weights, 0.5)
        tile = Image.fromarray((scaled * 255).astype("uint8"), "RGB")
        tile = tile.resize((FILTER_PIXELS, FILTER_PIXELS), Image.Resampling.NEAREST)
        picture.paste(tile, ((i % columns) * cell + 1, (i // columns) * cell + 1))
    return _png(picture)


def pca_png(x: list[float], y: list[float], labels: list[int],
            class_names: tuple[str, ...] = ()) -> bytes:
    """A scatter of points ``(x, y)`` coloured by their class label, with a legend of the
    classes' colours and names on the right (up to twenty classes: beyond, colours repeat
    and the legend says so)."""
    picture = Image.new("RGB", (PCA_SIZE + LEGEND_WIDTH * bool(class_names), PCA_SIZE),
                        (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    xs, ys = np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64")
    margin = 12

    def scale(values: np.ndarray) -> np.ndarray:
        low, high = values.min(), values.max()
        span = high - low if high > low else 1.0
        return margin + (values - low) / span * (PCA_SIZE - 2 * margin)

    for px, py, label in zip(scale(xs), PCA_SIZE - scale(ys), labels, strict=True):
        draw.ellipse((px - 2, py - 2, px + 2, py + 2), fill=PALETTE[int(label) % len(PALETTE)])
    if class_names:
        _legend(draw, class_names)
    return _png(picture)


def _legend(draw: ImageDraw.ImageDraw, class_names: tuple[str, ...]) -> None:
    """Each class's colour and name, one row each, right of the scatter."""
    font = ImageFont.load_default(size=LEGEND_FONT)
    left, top = PCA_SIZE + 8, 12
    draw.text((left, top), "class", fill=(0, 0, 0), font=font)
    shown = class_names[: len(PALETTE)]
    for i, name in enumerate(shown):
        y = top + (i + 1) * LEGEND_ROW
        draw.rectangle((left, y + 4, left + 14, y + 18), fill=PALETTE[i])
        draw.text((left + 20, y), name[:20], fill=(0, 0, 0), font=font)
    if len(class_names) > len(shown):
        y = top + (len(shown) + 1) * LEGEND_ROW
        draw.text((left, y), f"{len(class_names)} classes: colours", fill=(0, 0, 0), font=font)
        draw.text((left, y + LEGEND_ROW // 2 + 4), f"repeat every {len(PALETTE)}",
                  fill=(0, 0, 0), font=font)


def _png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
