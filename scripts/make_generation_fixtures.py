"""Write open_clip 3.3.0's generated tokens for generation options beyond the defaults:
tests/fixtures/generation/small.json for the `small` parity checkpoint (tests/fixtures/parity/small)
on the pixel input stored in its expected.safetensors, and tests/fixtures/generation/demo.json for
the bundled demo model on demo fixture images with nucleus (top_p) sampling, whose nucleus is a
single token there, so the output does not depend on the random generator.

Rerun from the repository root with the reference environment (open-clip-torch==3.3.0,
transformers==4.55.4):

    python scripts/make_generation_fixtures.py
"""

import json
import pathlib

import open_clip
import torch
import transformers
from PIL import Image
from safetensors.torch import load_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "tests/fixtures/parity/small"

CASES = {
    "greedy_repetition_penalty": dict(generation_type="top_k", top_k=1, seq_len=20, repetition_penalty=1.5),
    "beam_repetition_penalty": dict(generation_type="beam_search", num_beams=6, num_beam_groups=1, seq_len=20,
                                    repetition_penalty=1.5),
    "greedy_strong_penalty": dict(generation_type="top_k", top_k=1, seq_len=20, repetition_penalty=3.0),
}


def main():
    model, _, _ = open_clip.create_model_and_transforms(f"local-dir:{MODEL_DIR}")
    model.eval()
    image = load_file(str(MODEL_DIR / "expected.safetensors"))["image"]
    cases = {}
    with torch.no_grad():
        for name, args in CASES.items():
            tokens = model.generate(image, **args)
            cases[name] = {"args": args, "tokens": tokens.tolist()}
    out = ROOT / "tests/fixtures/generation/small.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": "tests/fixtures/parity/small", "image": "expected.safetensors: image",
                               "open_clip": open_clip.__version__, "transformers": transformers.__version__,
                               "cases": cases}, indent=1) + "\n")
    print(f"wrote {out}")

    demo_dir = ROOT / "models/demo"
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{demo_dir}")
    model.eval()
    images = [f"tests/fixtures/demo/11000000{i:02d}.png" for i in range(4)]
    args = dict(generation_type="top_p", top_p=0.1, seq_len=30)
    results = {}
    with torch.no_grad():
        for path in images:
            pixels = preprocess(Image.open(ROOT / path)).unsqueeze(0)
            torch.manual_seed(0)
            results[path] = model.generate(pixels, **args)[0].tolist()
    out = ROOT / "tests/fixtures/generation/demo.json"
    out.write_text(json.dumps({"model": "models/demo", "open_clip": open_clip.__version__, "args": args,
                               "tokens": results}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
