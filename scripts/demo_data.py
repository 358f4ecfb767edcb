"""Synthetic "colored shapes" images with captions, for the bundled demo CoCa model.

Every sample comes from one integer seed, so the same seed always gives the same
64x64 RGB image and caption. The image shows one or two shapes on a light, slightly
tinted background with a faint gradient.

Caption grammar (lower case, no punctuation):

    one object:   "a single <color> <shape>"
    two objects:  "a <color> <shape> <relation> a <color> <shape>"

    color     red | green | blue | yellow
    shape     circle | square | triangle
    relation  left of | right of | above | below

A one-object caption reads "a single red circle" rather than "a red circle" on purpose:
open_clip's `CoCa.generate` defaults to `min_seq_len=5`, which bans the end-of-text
token until five tokens (start token included) have been produced. "a red circle" is
only four, so the model could never end it there.

Two-object captions have exactly one correct form. The two objects always differ in
color or shape. They lie side by side along one axis, with a gap between them and at
most a small offset on the other axis. The caption's subject is the object that comes
first in (COLORS index, SHAPES index) order, and the relation gives the subject's position
relative to the other object. For example a blue square to the right of a red
triangle is "a red triangle left of a blue square", never "a blue square right of a
red triangle".

Seed ranges keep the data sets apart: training uses seeds below TRAIN_SEED_LIMIT,
and evaluation, test fixtures and the example images each start at their own offset
above it.

Usage as a library:

    from demo_data import render
    image, caption = render(seed)      # PIL.Image (64x64 RGB), str

Usage as a command (writes N PNG files and captions.json, which maps file name to caption):

    python scripts/demo_data.py --out /tmp/shapes --count 16 --first-seed 0
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 64
SUPERSAMPLE = 4  # draw at 4x and downscale with a box filter, for anti-aliased edges

COLORS = {
    "red": (215, 40, 40),
    "green": (40, 165, 60),
    "blue": (40, 75, 215),
    "yellow": (240, 205, 30),
}
COLOR_NAMES = list(COLORS)
SHAPES = ["circle", "square", "triangle"]
RELATIONS = ["left of", "right of", "above", "below"]

SINGLE_OBJECT_PROBABILITY = 0.25

# Disjoint seed ranges, so that evaluation and fixtures never reuse a training image.
TRAIN_SEED_LIMIT = 1_000_000_000
EVAL_SEED_START = 1_000_000_000
FIXTURE_SEED_START = 1_100_000_000
EXAMPLE_SEED_START = 1_200_000_000


@dataclass(frozen=True)
class Shape:
    color: str
    shape: str
    x: float  # center, in pixels of the 64x64 image
    y: float
    radius: float  # half of the shape's extent

    def key(self) -> tuple[int, int]:
        return COLOR_NAMES.index(self.color), SHAPES.index(self.shape)

    def phrase(self) -> str:
        return f"{self.color} {self.shape}"


@dataclass(frozen=True)
class Scene:
    background: tuple[int, int, int]
    gradient: tuple[float, float]  # brightness change across x and across y, in levels
    objects: tuple[Shape, ...]
    jitter: tuple[tuple[int, int, int], ...]  # per-object color offset


def _random_kind(rng: np.random.Generator) -> tuple[str, str]:
    """Pick a random (color, shape) pair."""
    return COLOR_NAMES[rng.integers(len(COLOR_NAMES))], SHAPES[rng.integers(len(SHAPES))]


def sample_scene(rng: np.random.Generator) -> Scene:
    """Draw a random scene (background and one or two shapes) from `rng`."""
    base = int(rng.integers(200, 246))
    tint = rng.integers(-10, 11, size=3)
    background = tuple(int(np.clip(base + t, 0, 255)) for t in tint)
    gradient = (float(rng.uniform(-10, 10)), float(rng.uniform(-10, 10)))

    size = IMAGE_SIZE
    if rng.random() < SINGLE_OBJECT_PROBABILITY:
        radius = float(rng.uniform(8, 16))
        x = float(rng.uniform(radius + 2, size - radius - 2))
        y = float(rng.uniform(radius + 2, size - radius - 2))
        color, shape = _random_kind(rng)
        objects = (Shape(color, shape, x, y, radius),)
    else:
        while True:
            (c1, s1), (c2, s2) = _random_kind(rng), _random_kind(rng)
            if (c1, s1) != (c2, s2):
                break
        r1, r2 = float(rng.uniform(7, 11.5)), float(rng.uniform(7, 11.5))
        margin, gap = 2.0, 5.0
        # Along the main axis: object 1 first, then at least `gap` pixels of background.
        a1 = float(rng.uniform(r1 + margin, size - margin - 2 * r2 - gap - r1))
        a2 = float(rng.uniform(a1 + r1 + gap + r2, size - margin - r2))
        # Across it: a shared center line, each object moved by at most 3 pixels.
        rmax = max(r1, r2)
        line = float(rng.uniform(rmax + margin + 3, size - rmax - margin - 3))
        b1, b2 = line + float(rng.uniform(-3, 3)), line + float(rng.uniform(-3, 3))
        horizontal = rng.random() < 0.5
        if horizontal:
            first, second = Shape(c1, s1, a1, b1, r1), Shape(c2, s2, a2, b2, r2)
        else:
            first, second = Shape(c1, s1, b1, a1, r1), Shape(c2, s2, b2, a2, r2)
        objects = (first, second) if rng.random() < 0.5 else (second, first)
    jitter = tuple(tuple(int(v) for v in rng.integers(-15, 16, size=3)) for _ in objects)
    return Scene(background, gradient, objects, jitter)


def caption(scene: Scene) -> str:
    """Return the one correct caption of `scene` (the module docstring gives the grammar)."""
    if len(scene.objects) == 1:
        return f"a single {scene.objects[0].phrase()}"
    subject, other = sorted(scene.objects, key=Shape.key)
    dx, dy = subject.x - other.x, subject.y - other.y
    if abs(dx) > abs(dy):
        relation = "left of" if dx < 0 else "right of"
    else:
        relation = "above" if dy < 0 else "below"
    return f"a {subject.phrase()} {relation} a {other.phrase()}"


def draw(scene: Scene) -> Image.Image:
    """Render `scene` as a 64x64 RGB image."""
    big = IMAGE_SIZE * SUPERSAMPLE
    ramp = np.linspace(-0.5, 0.5, big, dtype=np.float32)
    shade = scene.gradient[0] * ramp[None, :] + scene.gradient[1] * ramp[:, None]
    pixels = np.asarray(scene.background, dtype=np.float32)[None, None, :] + shade[:, :, None]
    canvas = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")
    pen = ImageDraw.Draw(canvas)
    for obj, jitter in zip(scene.objects, scene.jitter):
        fill = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(COLORS[obj.color], jitter))
        x, y, r = obj.x * SUPERSAMPLE, obj.y * SUPERSAMPLE, obj.radius * SUPERSAMPLE
        if obj.shape == "circle":
            pen.ellipse([x - r, y - r, x + r, y + r], fill=fill)
        elif obj.shape == "square":
            s = r * 0.9  # a square of the same half-extent looks larger than the circle
            pen.rectangle([x - s, y - s, x + s, y + s], fill=fill)
        else:  # triangle pointing up, centered on its bounding box
            pen.polygon([(x, y - r), (x + r, y + r * 0.85), (x - r, y + r * 0.85)], fill=fill)
    return canvas.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX)


def render(seed: int) -> tuple[Image.Image, str]:
    """Render the (image, caption) pair of `seed`. The same seed always gives the same pair."""
    scene = sample_scene(np.random.default_rng(seed))
    return draw(scene), caption(scene)


def write_samples(out_dir: str, count: int, first_seed: int) -> dict[str, str]:
    """Write `count` samples as <seed>.png into `out_dir` and return {file name: caption}."""
    os.makedirs(out_dir, exist_ok=True)
    captions = {}
    for seed in range(first_seed, first_seed + count):
        image, text = render(seed)
        name = f"{seed}.png"
        image.save(os.path.join(out_dir, name))
        captions[name] = text
    return captions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--count", type=int, default=16, help="number of samples")
    parser.add_argument("--first-seed", type=int, default=0, help="seed of the first sample")
    args = parser.parse_args()
    captions = write_samples(args.out, args.count, args.first_seed)
    with open(os.path.join(args.out, "captions.json"), "w") as f:
        json.dump(captions, f, indent=2)
        f.write("\n")
    print(f"wrote {len(captions)} images and captions.json to {args.out}")


if __name__ == "__main__":
    main()
