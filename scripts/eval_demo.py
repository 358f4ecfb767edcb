"""Measures how often the bundled demo CoCa model (models/demo/) captions fresh synthetic images exactly.

Loads the model the way any open_clip user would: it builds `open_clip.CoCa` from
the `model_cfg` in models/demo/open_clip_config.json, loads
open_clip_model.safetensors (stored in float16) as float32, and builds the image
transform from `preprocess_cfg` with `open_clip.image_transform`. It then renders
200 images from scripts/demo_data.py, using seeds from EVAL_SEED_START on, which
training never uses, and reports the share of generated captions that equal the true
caption exactly, for greedy decoding (`generation_type="top_k", top_k=1`) and for
beam search (`num_beams=6, num_beam_groups=1`). All other `generate` arguments keep
open_clip's defaults (seq_len 30, min_seq_len 5).

Rerun from the repository root with the reference environment on PATH:

    eval "$(bash ../shared/tools/reference-env.sh)"
    python scripts/eval_demo.py [--model-dir models/demo] [--count 200]

The other demo scripts import the helpers below: `load_demo_model`, `caption_of`,
`GREEDY_ARGS` and `BEAM_ARGS`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

# With other jobs on the same two cores, spinning OpenMP threads made training steps about five
# times slower than passive waiting did. This must precede `import torch`.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import open_clip
import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from demo_data import EVAL_SEED_START, render  # noqa: E402

START_OF_TEXT = 49406
END_OF_TEXT = 49407

# The generation arguments that the demo model is checked with (and the fixtures recorded with).
GREEDY_ARGS = {"generation_type": "top_k", "top_k": 1, "seq_len": 30}
BEAM_ARGS = {"generation_type": "beam_search", "num_beams": 6, "num_beam_groups": 1, "seq_len": 30}


def load_demo_model(model_dir: str):
    """Load an open_clip model folder and return (model in eval mode, image transform, config dict)."""
    with open(os.path.join(model_dir, "open_clip_config.json")) as f:
        config = json.load(f)
    model_cfg = dict(config["model_cfg"])
    # `custom_text` makes open_clip's factory pick the CoCa class, which does not accept it as an argument.
    model_cfg.pop("custom_text", None)
    model = open_clip.CoCa(**model_cfg)
    weights = load_file(os.path.join(model_dir, "open_clip_model.safetensors"))
    model.load_state_dict({k: v.float() for k, v in weights.items()}, strict=True)
    model.eval()
    pre = config["preprocess_cfg"]
    transform = open_clip.image_transform(
        pre["size"],
        is_train=False,
        mean=pre["mean"],
        std=pre["std"],
        resize_mode=pre["resize_mode"],
        interpolation=pre["interpolation"],
    )
    return model, transform, config


def caption_of(ids) -> str:
    """Decode one sequence returned by `generate` up to its first end token, without the special tokens."""
    ids = [int(i) for i in ids]
    if END_OF_TEXT in ids:
        ids = ids[: ids.index(END_OF_TEXT) + 1]
    text = open_clip.decode(torch.tensor(ids))
    return text.replace("<start_of_text>", "").replace("<end_of_text>", "").strip()


def exact_match(model, transform, seeds, batch_size: int = 50) -> dict[str, float]:
    """Compute the share of `seeds` whose greedy and beam-search captions equal the true caption."""
    hits = {"greedy": 0, "beam": 0}
    for start in range(0, len(seeds), batch_size):
        pairs = [render(s) for s in seeds[start : start + batch_size]]
        images = torch.stack([transform(image) for image, _ in pairs])
        with torch.no_grad():
            greedy = model.generate(images, **GREEDY_ARGS)
            beam = model.generate(images, **BEAM_ARGS)
        for (_, truth), g, b in zip(pairs, greedy, beam):
            hits["greedy"] += caption_of(g) == truth
            hits["beam"] += caption_of(b) == truth
    return {mode: n / len(seeds) for mode, n in hits.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", default="models/demo")
    parser.add_argument("--count", type=int, default=200, help="number of fresh images")
    parser.add_argument("--show-errors", action="store_true", help="print each wrong caption")
    args = parser.parse_args()
    torch.set_num_threads(2)

    model, transform, _ = load_demo_model(args.model_dir)
    seeds = list(range(EVAL_SEED_START, EVAL_SEED_START + args.count))
    began = time.time()
    rates = exact_match(model, transform, seeds)
    print(f"{args.count} fresh images (seeds {seeds[0]}..{seeds[-1]}), {time.time() - began:.0f} s")
    print(f"greedy (top_k=1) exact match:          {rates['greedy']:.1%}")
    print(f"beam search (6 beams, 1 group) exact:  {rates['beam']:.1%}")

    if args.show_errors:
        for seed in seeds:
            image, truth = render(seed)
            batch = transform(image)[None]
            with torch.no_grad():
                g = caption_of(model.generate(batch, **GREEDY_ARGS)[0])
                b = caption_of(model.generate(batch, **BEAM_ARGS)[0])
            if g != truth or b != truth:
                print(f"seed {seed}: true {truth!r}, greedy {g!r}, beam {b!r}")


if __name__ == "__main__":
    main()
