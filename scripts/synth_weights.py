"""Counter-based synthetic weights for open_clip CoCa models, specified so Rust can reproduce them bit for bit.

Every value depends only on the tensor name, the element index and the tensor shape, so Rust and
Python can generate the same weights independently without shipping a weights file. The spec:

* ``fnv1a64(name)``: FNV-1a over the UTF-8 bytes of the name (offset 0xcbf29ce484222325,
  prime 0x100000001b3, wrapping 64-bit).
* ``splitmix64(x)``: z = x + 0x9E3779B97F4A7C15; z = (z ^ z >> 30) * 0xBF58476D1CE4E5B9;
  z = (z ^ z >> 27) * 0x94D049BB133111EB; return z ^ z >> 31 (all wrapping u64).
* Element ``i`` (row-major flat index) of tensor ``name``: z = splitmix64(fnv1a64(name) + i)
  (wrapping add), u = (z >> 40) / 2**24 in [0, 1), v = 2u - 1 in [-1, 1), and the value is
  float32(center + scale * v), computed in float64 and rounded to float32 once.
* (center, scale) come from ``init_params(name, shape)``, computed in float64:

  - ``logit_scale`` is the constant float32(log(1/0.07)) and ``logit_bias`` the constant -10.0.
  - LayerNorm parameters (the second-to-last dot-separated name component starts with ``ln_``)
    get (1.0, 0.1) for ``.weight`` and (0.0, 0.05) for ``.bias``.
  - Other 1-D tensors get (0.0, 0.05).
  - ``visual.proj``, ``text.text_projection`` and ``text_decoder.text_projection``, stored as
    [in, out], get (0, sqrt(3) / sqrt(shape[0])).
  - Every other tensor of 2 or more dims gets (0, sqrt(3) / sqrt(prod(shape[1:]))).

  The sqrt(3) makes the standard deviation of the random tensors 1/sqrt(fan_in).
* ``synth_input_image(batch, size)`` is the tensor ``input.image`` of shape [batch, 3, size, size]
  with (center, scale) = (0, 1), used directly as the preprocessed pixel input.

Run as a script to print sample values and write tests/fixtures/synth_spec_check.json, the
reference the Rust generator is tested against:

    # needs torch, numpy, safetensors, open-clip-torch==3.3.0 and transformers==4.55.4
    # (the versions the committed fixtures were made with)
    python scripts/synth_weights.py                    # writes tests/fixtures/synth_spec_check.json
    python scripts/synth_weights.py --save-weights coca_b32_synth.safetensors   # full state dict too
"""

import argparse
import json
import math
from pathlib import Path

import numpy as np

MASK64 = (1 << 64) - 1
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
SPLITMIX_GAMMA = 0x9E3779B97F4A7C15
SPLITMIX_MUL1 = 0xBF58476D1CE4E5B9
SPLITMIX_MUL2 = 0x94D049BB133111EB

# Tensors stored as [in, out] in open_clip and applied as x @ W, so their fan-in is shape[0].
IN_OUT_PROJECTIONS = ("visual.proj", "text.text_projection", "text_decoder.text_projection")
LOGIT_SCALE = float(np.float32(math.log(1 / 0.07)))
LOGIT_BIAS = -10.0
INPUT_IMAGE_NAME = "input.image"

# Elements generated per numpy pass, which bounds the temporaries to a few hundred MB.
CHUNK_ELEMENTS = 1 << 22

REPO_ROOT = Path(__file__).resolve().parent.parent
SPEC_CHECK_PATH = REPO_ROOT / "tests" / "fixtures" / "synth_spec_check.json"


def fnv1a64(name: bytes) -> int:
    h = FNV_OFFSET
    for byte in name:
        h ^= byte
        h = (h * FNV_PRIME) & MASK64
    return h


def splitmix64(x: int) -> int:
    z = (x + SPLITMIX_GAMMA) & MASK64
    z = ((z ^ (z >> 30)) * SPLITMIX_MUL1) & MASK64
    z = ((z ^ (z >> 27)) * SPLITMIX_MUL2) & MASK64
    return z ^ (z >> 31)


def _splitmix64_array(x: np.ndarray) -> np.ndarray:
    """Apply splitmix64 to a uint64 array, wrapping like the scalar version."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(SPLITMIX_GAMMA)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(SPLITMIX_MUL1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(SPLITMIX_MUL2)
        return z ^ (z >> np.uint64(31))


def uniform_pm1(name: str, count: int) -> np.ndarray:
    """Return the float64 values v in [-1, 1) for elements 0..count of tensor `name`."""
    base = np.uint64(fnv1a64(name.encode("utf-8")))
    out = np.empty(count, dtype=np.float64)
    for start in range(0, count, CHUNK_ELEMENTS):
        stop = min(start + CHUNK_ELEMENTS, count)
        with np.errstate(over="ignore"):
            counters = base + np.arange(start, stop, dtype=np.uint64)
        z = _splitmix64_array(counters)
        u = (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)
        out[start:stop] = 2.0 * u - 1.0
    return out


def _is_layer_norm(name: str) -> bool:
    parts = name.split(".")
    return len(parts) >= 2 and parts[-2].startswith("ln_")


def init_params(name: str, shape) -> tuple:
    """Return (center, scale, is_constant) for a tensor, following the spec in the module docstring."""
    shape = tuple(int(d) for d in shape)
    if name == "logit_scale":
        return LOGIT_SCALE, 0.0, True
    if name == "logit_bias":
        return LOGIT_BIAS, 0.0, True
    if _is_layer_norm(name):
        if name.endswith(".weight"):
            return 1.0, 0.1, False
        if name.endswith(".bias"):
            return 0.0, 0.05, False
        raise ValueError(f"LayerNorm tensor {name!r} is neither .weight nor .bias")
    if len(shape) == 1:
        return 0.0, 0.05, False
    if len(shape) == 0:
        raise ValueError(f"no synthesis rule for scalar tensor {name!r}")
    if name in IN_OUT_PROJECTIONS:
        fan_in = shape[0]
    else:
        fan_in = math.prod(shape[1:])
    return 0.0, math.sqrt(3.0) / math.sqrt(fan_in), False


def synth_array(name: str, shape) -> np.ndarray:
    """Generate the float32 array for tensor `name` of the given shape."""
    shape = tuple(int(d) for d in shape)
    center, scale, is_constant = init_params(name, shape)
    if is_constant:
        return np.full(shape, center, dtype=np.float32)
    count = math.prod(shape)
    values = center + scale * uniform_pm1(name, count)
    return values.astype(np.float32).reshape(shape)


def synthesize(model) -> dict:
    """Return a state dict of synthesized float32 torch tensors for every entry of `model.state_dict()`."""
    import torch

    state_dict = {}
    for name, tensor in model.state_dict().items():
        state_dict[name] = torch.from_numpy(synth_array(name, tensor.shape))
    return state_dict


def synth_input_image(batch: int, size: int):
    """Return the synthesized pixel input `input.image` as a float32 torch tensor [batch, 3, size, size]."""
    import torch

    values = uniform_pm1(INPUT_IMAGE_NAME, batch * 3 * size * size)
    return torch.from_numpy(values.astype(np.float32).reshape(batch, 3, size, size))


def spec_check_entry(name: str, array: np.ndarray) -> dict:
    return {
        "shape": list(array.shape),
        "first8": [float(x) for x in array.reshape(-1)[:8]],
        "sum": float(array.astype(np.float64).sum()),
    }


# Tensors of the built-in coca_ViT-B-32 config that cover every rule of `init_params`.
SPEC_CHECK_TENSORS = [
    ("logit_scale", []),
    ("logit_bias", []),
    ("visual.ln_pre.weight", [768]),
    ("visual.ln_pre.bias", [768]),
    ("text.transformer.resblocks.0.ln_1.bias", [512]),
    ("text_decoder.cross_attn.0.ln_1_kv.weight", [512]),
    ("visual.attn_pool.ln_q.weight", [512]),
    ("visual.class_embedding", [768]),
    ("text.cls_emb", [512]),
    ("visual.transformer.resblocks.0.attn.in_proj_bias", [2304]),
    ("visual.conv1.weight", [768, 3, 32, 32]),
    ("visual.positional_embedding", [50, 768]),
    ("visual.attn_pool.query", [256, 512]),
    ("visual.attn_pool.attn.k_proj_weight", [512, 768]),
    ("visual.proj", [512, 512]),
    ("text.text_projection", [512, 512]),
    ("text.token_embedding.weight", [49408, 512]),
    ("text_decoder.resblocks.0.mlp.c_proj.weight", [512, 2048]),
    ("text_decoder.text_projection", [512, 49408]),
]


def write_spec_check(path: Path = SPEC_CHECK_PATH) -> dict:
    """Write the first 8 values and the float64 sum of a few tensors to `path` and print samples."""
    tensors = {}
    for name, shape in SPEC_CHECK_TENSORS:
        array = synth_array(name, shape)
        tensors[name] = spec_check_entry(name, array)
        print(f"{name} {shape}: first 4 = {array.reshape(-1)[:4].tolist()}")
    image = synth_input_image(1, 224).numpy()
    tensors[INPUT_IMAGE_NAME] = spec_check_entry(INPUT_IMAGE_NAME, image)
    print(f"{INPUT_IMAGE_NAME} [1, 3, 224, 224]: first 4 = {image.reshape(-1)[:4].tolist()}")

    check = {
        "description": (
            "Reference values of the counter-based weight generator in scripts/synth_weights.py. "
            "first8 holds the first 8 float32 values in row-major order, each written as the shortest "
            "decimal that parses back to the same float64, so casting it to float32 is exact. sum is the float64 sum of all float32 values as computed by numpy (pairwise "
            "summation). A sum taken in another order differs only by float64 rounding, so compare "
            "it with an absolute tolerance of about 1e-6 rather than exactly."
        ),
        "hash_checks": {
            "fnv1a64": {name: f"{fnv1a64(name.encode('utf-8')):#018x}" for name in ("", "visual.proj", "logit_scale")},
            "splitmix64": {f"{x:#018x}": f"{splitmix64(x):#018x}" for x in (0, 1, fnv1a64(b"visual.proj"))},
        },
        "tensors": tensors,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(check, indent=1) + "\n")
    print(f"wrote {path}")
    return check


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec-check", type=Path, default=SPEC_CHECK_PATH,
                        help="where to write the reference values (default: %(default)s)")
    parser.add_argument("--save-weights", type=Path, default=None,
                        help="also write the full synthesized float32 state dict of --model as safetensors")
    parser.add_argument("--model", default="coca_ViT-B-32", help="built-in open_clip model name for --save-weights")
    args = parser.parse_args()

    write_spec_check(args.spec_check)
    if args.save_weights is not None:
        import open_clip
        from safetensors.torch import save_file

        model = open_clip.create_model(args.model, pretrained=None)
        state_dict = synthesize(model)
        save_file({k: v.contiguous() for k, v in state_dict.items()}, str(args.save_weights))
        print(f"wrote {args.save_weights} ({len(state_dict)} tensors)")


if __name__ == "__main__":
    main()
