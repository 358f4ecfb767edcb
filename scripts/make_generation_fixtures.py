"""Write tests/fixtures/generation/small.json: open_clip 3.3.0's generated tokens for the `small`
parity checkpoint (tests/fixtures/parity/small) with generation options beyond the defaults, on
the pixel input stored in that case's expected.safetensors.

Rerun from the repository root with the reference environment (open-clip-torch==3.3.0,
transformers==4.55.4):

    python scripts/make_generation_fixtures.py
"""

import json
import pathlib

import open_clip
import torch
import transformers
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


if __name__ == "__main__":
    main()
