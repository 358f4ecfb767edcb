"""Write tests/fixtures/cli/small_image_features.json: open_clip 3.3.0's normalized image features
of a few PNG files under tests/fixtures/preprocess/src, with the `small` parity checkpoint
(tests/fixtures/parity/small) and open_clip's own preprocessing from its open_clip_config.json.
The CLI test runs `coca embed-image` on the same files and compares.

Also write tests/fixtures/cli/small_forward.safetensors: open_clip's `forward(image, text,
output_labels=True)` on coffee.png and "a photo of a cat" (features, logit scale, labels, the
logits of the first three positions over the whole vocabulary and of every position over the
first 64 ids), which `coca forward --save` must reproduce.

Rerun from the repository root with the reference environment (open-clip-torch==3.3.0):

    python scripts/make_cli_fixtures.py
"""

import json
import pathlib

import open_clip
import torch
from PIL import Image
from safetensors.torch import save_file

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

    tokenizer = open_clip.get_tokenizer(f"local-dir:{MODEL_DIR}")
    with torch.no_grad():
        pixels = preprocess(Image.open(ROOT / "tests/fixtures/preprocess/src/coffee.png")).unsqueeze(0)
        text = tokenizer(["a photo of a cat"])
        result = model(pixels, text, output_labels=True)
    logits = result["logits"]
    tensors = {
        "text": text,
        "image_features": result["image_features"],
        "text_features": result["text_features"],
        "labels": result["labels"],
        "logit_scale": result["logit_scale"].reshape([]),
        "logits_first_positions": logits[:, :3, :].contiguous(),
        "logits_first_64_ids": logits[:, :, :64].contiguous(),
    }
    out = ROOT / "tests/fixtures/cli/small_forward.safetensors"
    save_file({k: v.clone().contiguous() for k, v in tensors.items()}, str(out))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
