"""Exact-match accuracy of the coca-wgpu CLI on fresh synthetic images for each decoding mode.

Renders `--count` images from scripts/demo_data.py with seeds from EVAL_SEED_START on (never used
in training), writes them as PNG files to a temporary folder, captions them with
`target/release/coca caption --model demo --json` in each mode below, and prints the share of
captions equal to the true caption. It compares log-probability beam scores (the default) with
open_clip 3.3.0's raw-logit scores.

Build the CLI first, then run from the repository root with the reference environment on PATH
(only Pillow and NumPy are needed, for rendering):

    cargo build --release
    python scripts/eval_demo_modes.py [--count 200] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from demo_data import EVAL_SEED_START, render  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent

MODES = {
    "greedy (top_k 1)": ["--generation", "top_k", "--top-k", "1"],
    "beam 6x3, log_softmax (default)": [],
    "beam 6x3, raw_logits (open_clip 3.3.0)": ["--beam-scoring", "raw_logits"],
    "beam 6x1, log_softmax": ["--num-beam-groups", "1"],
    "beam 6x1, raw_logits": ["--num-beam-groups", "1", "--beam-scoring", "raw_logits"],
    "beam 6x3, log_softmax, diversity 0.5": ["--diversity-penalty", "0.5"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    binary = ROOT / "target/release/coca"
    with tempfile.TemporaryDirectory() as folder:
        truths = {}
        for seed in range(EVAL_SEED_START, EVAL_SEED_START + args.count):
            image, truth = render(seed)
            path = os.path.join(folder, f"{seed}.png")
            image.save(path)
            truths[path] = truth
        files = list(truths)
        print(f"{args.count} fresh images (seeds {EVAL_SEED_START}..{EVAL_SEED_START + args.count - 1}), "
              f"batch size {args.batch_size}")
        for name, extra in MODES.items():
            began = time.time()
            command = [str(binary), "caption", "--model", "demo", "--json", "--batch-size", str(args.batch_size),
                       *extra, *files]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            lines = [json.loads(line) for line in output.splitlines()]
            right = sum(line["caption"] == truths[line["image"]] for line in lines)
            print(f"{name:42s} {right / len(lines):6.1%} exact  ({time.time() - began:.0f} s)")


if __name__ == "__main__":
    main()
