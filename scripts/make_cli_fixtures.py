"""Write tests/fixtures/cli/small_image_features.json: open_clip 3.3.0's normalized image features
of a few PNG files under tests/fixtures/preprocess/src, with the `small` parity checkpoint
(tests/fixtures/parity/small) and open_clip's own preprocessing from its open_clip_config.json.
The CLI test runs `coca embed-image` on the same files and compares.

Rerun from the repository root with the reference environment (open-clip-torch==3.3.0):

    python scripts/make_cli_fixtures.py
"""

import json
import pathlib

import open_clip
import torch
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "tests/fixtures/parity/small"
IMAGES = ["coffee.png", "rgba.png", "gray.png", "wide.png"]


def main():
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{MODEL_DIR}")
    model.eval()
    features = {}
    with torch.no_grad():
        for name in IMAGES:
            image = Image.open(ROOT / "tests/fixtures/preprocess/src" / name)
            pixels = preprocess(image).unsqueeze(0)
            features[name] = model.encode_image(pixels, normalize=True)[0].tolist()
    out = ROOT / "tests/fixtures/cli/small_image_features.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": "tests/fixtures/parity/small", "open_clip": open_clip.__version__,
                               "image_features": features}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
