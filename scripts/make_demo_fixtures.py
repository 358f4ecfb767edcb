"""Writes the demo model's test fixtures and example images, with open_clip's captions as the expected output.

Creates:

    tests/fixtures/demo/<seed>.png   12 synthetic images (seeds from FIXTURE_SEED_START on)
    tests/fixtures/demo/expected.json
    examples/images/shapes-<n>.png   4 synthetic images (seeds from EXAMPLE_SEED_START on)
    examples/images/<name>.jpg       3 photos that scikit-image ships (public domain / CC0),
                                     see examples/images/README.md

For every image above, expected.json contains the token ids that open_clip's
`CoCa.generate` returns for that image alone (batch of one, start token included,
nothing removed) and the decoded caption. It has them for greedy decoding and for beam
search, together with the generation arguments used. The model was trained on
shapes only, so the photos get nonsense captions. They are there to check that another
implementation matches open_clip token for token on inputs unlike the training data. Their greedy steps are
closer calls, which each entry's `min_logit_margin` shows (about 0.4 to 2 logits for the
photos, against 6 or more for the shapes).

Each image is read back from the file written here, so the expected output belongs to the
file's pixels as decoded by Pillow. The photos are saved as JPEG with 4:4:4 chroma (no
chroma subsampling), which removes chroma upsampling, one source of differences between
JPEG decoders.

Rerun from the repository root once models/demo/ exists (scripts/train_demo.py);
scikit-image provides the photos:

    eval "$(bash ../shared/tools/reference-env.sh)"
    pip install scikit-image
    python scripts/make_demo_fixtures.py
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see train_demo.py

import open_clip
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from demo_data import EXAMPLE_SEED_START, FIXTURE_SEED_START, render  # noqa: E402
from eval_demo import BEAM_ARGS, GREEDY_ARGS, caption_of, load_demo_model  # noqa: E402

FIXTURE_COUNT = 12
EXAMPLE_COUNT = 4

# File name -> (skimage.data function, source, license). The texts follow the docstrings of those functions.
PHOTOS = {
    "chelsea.jpg": (
        "chelsea",
        "skimage.data.chelsea(): Chelsea the cat, photographed by Stefan van der Walt",
        "CC0 (no copyright restrictions)",
    ),
    "coffee.jpg": (
        "coffee",
        "skimage.data.coffee(): a coffee cup, photographed by Rachel Michetti, courtesy of Pikolo Espresso Bar",
        "CC0 (no copyright restrictions)",
    ),
    "astronaut.jpg": (
        "astronaut",
        "skimage.data.astronaut(): the astronaut Eileen Collins, from the NASA Great Images database",
        "public domain (no known copyright restrictions)",
    ),
}

# open_clip's defaults for the arguments that GREEDY_ARGS and BEAM_ARGS leave out.
GENERATE_DEFAULTS = {
    "max_seq_len": 77,
    "min_seq_len": 5,
    "temperature": 1.0,
    "repetition_penalty": 1.0,
    "sot_token_id": 49406,
    "eos_token_id": 49407,
    "pad_token_id": 0,
    "fixed_output_length": False,
}


def greedy_margin(model, batch: torch.Tensor, ids: list[int]) -> float:
    """Return the smallest gap between the best and second-best logit over the steps of a greedy sequence.

    The logits are those that `generate` compares, with end-of-text excluded
    where `min_seq_len` bans it. A small gap means that a reimplementation with slightly
    different preprocessing or arithmetic may pick another token at that step.
    """
    with torch.no_grad():
        logits = model(batch, torch.tensor([ids[:-1]]), output_labels=False)["logits"][0]
    banned = torch.arange(len(ids) - 1) + 1 < GENERATE_DEFAULTS["min_seq_len"]
    logits[banned, GENERATE_DEFAULTS["eos_token_id"]] = float("-inf")
    top2 = logits.topk(2, dim=-1).values
    return float((top2[:, 0] - top2[:, 1]).min())


def generate_both(model, transform, path: str) -> dict:
    image = Image.open(path).convert("RGB")
    batch = transform(image)[None]
    result = {}
    with torch.no_grad():
        for mode, args in (("greedy", GREEDY_ARGS), ("beam", BEAM_ARGS)):
            ids = [int(i) for i in model.generate(batch, **args)[0]]
            result[mode] = {"tokens": ids, "caption": caption_of(ids)}
    result["greedy"]["min_logit_margin"] = round(greedy_margin(model, batch, result["greedy"]["tokens"]), 3)
    return result


def write_photos(out_dir: str) -> None:
    from skimage import data

    for name, (loader, _, _) in PHOTOS.items():
        pixels = getattr(data, loader)()
        Image.fromarray(pixels).convert("RGB").save(
            os.path.join(out_dir, name), quality=95, subsampling=0
        )


def write_examples_readme(out_dir: str, examples: dict[str, str]) -> None:
    lines = [
        "# Example images",
        "",
        "Inputs for trying the demo model in models/demo/, which was trained only on synthetic",
        "pictures of colored shapes. `scripts/make_demo_fixtures.py` writes every file here; the",
        "captions that open_clip gives them are in tests/fixtures/demo/expected.json.",
        "",
        "| file | source | license |",
        "| --- | --- | --- |",
    ]
    for name, truth in examples.items():
        lines.append(
            f"| {name} | synthetic, rendered by `scripts/demo_data.py`; true caption \"{truth}\" "
            "| made for this repository, same license as the repository |"
        )
    for name, (_, source, license_) in PHOTOS.items():
        lines.append(f"| {name} | {source}; shipped with scikit-image | {license_} |")
    lines += [
        "",
        "The license notes for the photos are the ones in the docstrings of scikit-image's",
        "`skimage.data` functions (scikit-image 0.26). The photos are re-encoded as JPEG",
        "(quality 95, no chroma subsampling) at their original size. The model was trained on",
        "shapes only, so it captions them with shape words.",
        "",
    ]
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", default="models/demo")
    parser.add_argument("--fixtures", default="tests/fixtures/demo")
    parser.add_argument("--examples", default="examples/images")
    args = parser.parse_args()
    torch.set_num_threads(2)
    os.makedirs(args.fixtures, exist_ok=True)
    os.makedirs(args.examples, exist_ok=True)

    model, transform, _ = load_demo_model(args.model_dir)

    # (image path, facts recorded with it). Paths are relative to the repository root by default.
    entries = []
    for seed in range(FIXTURE_SEED_START, FIXTURE_SEED_START + FIXTURE_COUNT):
        image, truth = render(seed)
        path = os.path.join(args.fixtures, f"{seed}.png")
        image.save(path)
        entries.append((path, {"source": "synthetic", "seed": seed, "true_caption": truth}))
    examples = {}
    for n in range(EXAMPLE_COUNT):
        seed = EXAMPLE_SEED_START + n
        image, truth = render(seed)
        name = f"shapes-{n + 1}.png"
        image.save(os.path.join(args.examples, name))
        examples[name] = truth
        entries.append((os.path.join(args.examples, name), {"source": "synthetic", "seed": seed, "true_caption": truth}))
    write_photos(args.examples)
    for name in PHOTOS:
        entries.append((os.path.join(args.examples, name), {"source": "photo"}))
    write_examples_readme(args.examples, examples)

    images = {}
    for path, facts in entries:
        outputs = generate_both(model, transform, path)
        images[os.path.basename(path)] = {"path": path, **facts, **outputs}
        mark = ""
        if "true_caption" in facts:
            right = [m for m in ("greedy", "beam") if outputs[m]["caption"] == facts["true_caption"]]
            mark = f"  (true caption; matched by: {', '.join(right) or 'neither'})"
        print(f"{path}: greedy {outputs['greedy']['caption']!r}, beam {outputs['beam']['caption']!r}{mark}")

    expected = {
        "model_dir": args.model_dir,
        "made_by": "scripts/make_demo_fixtures.py",
        "reference": f"open_clip {open_clip.__version__}, float32 on the CPU, one image per generate call",
        "generation": {
            "greedy": {**GENERATE_DEFAULTS, **GREEDY_ARGS},
            "beam": {**GENERATE_DEFAULTS, **BEAM_ARGS},
        },
        "images": images,
    }
    text = json.dumps(expected, indent=2)
    # One line per token list instead of one line per token.
    text = re.sub(r"\[\s+([-0-9,\s]+?)\s+\]", lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text)
    with open(os.path.join(args.fixtures, "expected.json"), "w") as f:
        f.write(text + "\n")
    print(f"wrote {len(images)} entries to {os.path.join(args.fixtures, 'expected.json')}")


if __name__ == "__main__":
    main()
