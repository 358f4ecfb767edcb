"""Write the open_clip 3.3.0 parity fixtures under tests/fixtures/parity/<case>/.

Each case folder contains:

* model.json: the open_clip model config used (embed_dim, vision_cfg, text_cfg, multimodal_cfg,
  ...), plus "weights": "synthesized" when the weights come from scripts/synth_weights.py or
  "weights": "open_clip_model.safetensors" when they are stored in the folder.
* expected.safetensors: the pixel input, the token ids and open_clip's outputs (float32 and int64).
  meta.json lists every tensor with its shape and meaning.
* meta.json: the texts, batch size, generation arguments, logits slices, output lengths and the
  torch / open_clip / transformers versions.

Cases:

* small: a random-init CoCa (torch.manual_seed(0)) with 32-pixel images, vision width 64 and
  embed_dim 32, so the attentional pooler has separate q/k/v projection weights. Its weights are
  stored as float16 in open_clip_model.safetensors next to open_clip_config.json (the Hugging Face
  Hub layout, loadable with open_clip.create_model("local-dir:<folder>")), and the expected outputs
  come from that folder as open_clip loads it, i.e. from the float16-rounded weights in float32.
* small_quickgelu: the same sizes with quick_gelu, vision width equal to embed_dim (so the pooler
  uses a fused in_proj_weight) and a logit_bias, with synthesized weights.
* vit_b_32: open_clip's built-in coca_ViT-B-32 config with synthesized weights, batch 1.
* vit_l_14: open_clip's built-in coca_ViT-L-14 config with synthesized weights, batch 1. Its
  49408 x 768 token embedding and vocabulary projection (152 MB each in f32) exceed a 128 MiB
  storage binding, so coca-wgpu stores them in parts.

The pixel input is synth_input_image(batch, image_size), fed to the model as already preprocessed.
Rerun from the repository root (took about 4 minutes on 2 CPU cores shared with other jobs):

    # needs torch, numpy, safetensors, open-clip-torch==3.3.0 and transformers==4.55.4
    # (the versions the committed fixtures were made with)
    python scripts/make_parity_fixtures.py              # all cases
    python scripts/make_parity_fixtures.py small        # only the named cases
"""

import argparse
import copy
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import open_clip
import torch
import transformers
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from safetensors.torch import load_file, save_file

from synth_weights import synth_input_image, synthesize

REPO_ROOT = Path(__file__).resolve().parent.parent
PARITY_DIR = REPO_ROOT / "tests" / "fixtures" / "parity"

SOT_TOKEN_ID = 49406
EOS_TOKEN_ID = 49407
# CoCa.generate defaults pad_token_id to model.pad_id, which is 0, also the CLIP vocab entry "!" (no end-of-word marker).
PAD_TOKEN_ID = 0

TEXTS = ["a photo of a cat", "two dogs playing in the snow"]
# Logit columns stored for every batch row and position, next to the full-vocab slice.
LOGITS_HEAD_IDS = 256

SMALL_CFG = {
    "embed_dim": 32,
    "vision_cfg": {
        "image_size": 32,
        "layers": 2,
        "width": 64,
        "head_width": 32,
        "patch_size": 8,
        "attentional_pool": True,
        "attn_pooler_queries": 16,
        "attn_pooler_heads": 2,
        "output_tokens": True,
    },
    "text_cfg": {
        "context_length": 76,
        "vocab_size": 49408,
        "width": 32,
        "heads": 2,
        "layers": 2,
        "embed_cls": True,
        "output_tokens": True,
    },
    "multimodal_cfg": {
        "context_length": 76,
        "vocab_size": 49408,
        "width": 32,
        "heads": 2,
        "layers": 2,
        "attn_pooler_heads": 2,
    },
    "custom_text": True,
}

SMALL_QUICKGELU_CFG = copy.deepcopy(SMALL_CFG)
SMALL_QUICKGELU_CFG["vision_cfg"].update(width=32, head_width=16)
SMALL_QUICKGELU_CFG["quick_gelu"] = True
SMALL_QUICKGELU_CFG["init_logit_bias"] = -10.0

# Generation settings shared by all cases. Each case sets its own seq_len.
GENERATION_COMMON = {
    "max_seq_len": 77,
    "temperature": 1.0,
    "min_seq_len": 5,
    "repetition_penalty": 1.0,
    "fixed_output_length": False,
    "pad_token_id": PAD_TOKEN_ID,
    "eos_token_id": EOS_TOKEN_ID,
    "sot_token_id": SOT_TOKEN_ID,
}
GENERATIONS = {
    "greedy_tokens": {"generation_type": "top_k", "top_k": 1},
    "beam_tokens": {"generation_type": "beam_search", "num_beams": 6, "num_beam_groups": 1},
    "beam_group_tokens": {"generation_type": "beam_search", "num_beams": 6, "num_beam_groups": 3},
}

CASES = {
    "small": {
        "cfg": SMALL_CFG,
        "weights": "open_clip_model.safetensors",
        "batch": 2,
        "seq_len": 20,
        # Four full-vocab positions of batch row 0 keep the folder (weights included) under 8 MB.
        "logits_slice": {"batch": [0, 1], "positions": [0, 4]},
        "max_folder_bytes": 8_000_000,
    },
    "small_quickgelu": {
        "cfg": SMALL_QUICKGELU_CFG,
        "weights": "synthesized",
        "batch": 2,
        "seq_len": 20,
        "logits_slice": {"batch": [0, 1], "positions": [0, 6]},
        "max_folder_bytes": 3_000_000,
    },
    "vit_b_32": {
        "cfg": None,  # filled from open_clip's built-in coca_ViT-B-32 config
        "builtin": "coca_ViT-B-32",
        "weights": "synthesized",
        "batch": 1,
        "seq_len": 30,
        "logits_slice": {"batch": [0, 1], "positions": [0, 6]},
        "max_folder_bytes": 3_200_000,
    },
    "vit_l_14": {
        "cfg": None,  # filled from open_clip's built-in coca_ViT-L-14 config
        "builtin": "coca_ViT-L-14",
        "weights": "synthesized",
        "batch": 1,
        "seq_len": 20,
        "logits_slice": {"batch": [0, 1], "positions": [0, 4]},
        "max_folder_bytes": 3_200_000,
    },
}

TENSOR_DESCRIPTIONS = {
    "image": "pixel input [B, 3, S, S], synth_input_image(B, S), used as already preprocessed",
    "text": "token ids [B, context_length] from open_clip's SimpleTokenizer (SOT ... EOT, 0-padded)",
    "image_features": "model.encode_image(image, normalize=True)",
    "image_features_raw": "model.encode_image(image, normalize=False)",
    "image_embs": "model._encode_image(image)[1]: attentional-pooler tokens after ln_post, without the first query",
    "text_features": "model.encode_text(text, normalize=True)",
    "text_features_raw": "model.encode_text(text, normalize=False)",
    "text_token_embs": "model._encode_text(text)[1]: text tower tokens before ln_final, without the appended cls token",
    "logits": "model(image, text)['logits'] (output_labels=True, so L-1 positions), sliced as meta.logits_slice",
    "logits_first_256_ids": "model(image, text)['logits'][:, :, :256]: every batch row and position, first 256 vocab ids",
    "greedy_tokens": "model.generate(image, **meta.generation.greedy_tokens), SOT included",
    "beam_tokens": "model.generate(image, **meta.generation.beam_tokens), SOT included",
    "beam_group_tokens": "model.generate(image, **meta.generation.beam_group_tokens), SOT included",
}


def open_clip_config(cfg: dict) -> dict:
    """Return the Hugging Face Hub style open_clip_config.json for a model config."""
    return {
        "model_cfg": cfg,
        "preprocess_cfg": {
            "size": cfg["vision_cfg"]["image_size"],
            "mean": list(OPENAI_DATASET_MEAN),
            "std": list(OPENAI_DATASET_STD),
            "interpolation": "bicubic",
            "resize_mode": "shortest",
        },
    }


def build_coca(cfg: dict) -> open_clip.CoCa:
    """Build a float32 CoCa from a model config the way open_clip.create_model does (custom_text selects CoCa)."""
    kwargs = {k: v for k, v in copy.deepcopy(cfg).items() if k != "custom_text"}
    return open_clip.CoCa(**kwargs)


def make_small_weights(case_dir: Path, cfg: dict) -> open_clip.CoCa:
    """Write the float16 weights and open_clip_config.json, then load them back through open_clip."""
    torch.manual_seed(0)
    model = build_coca(cfg)
    # open_clip creates text_decoder.text_projection with torch.empty and never initializes it
    # (MultimodalTransformer.init_parameters is not called), so give it the std that method uses.
    width = cfg["multimodal_cfg"]["width"]
    torch.nn.init.normal_(model.text_decoder.text_projection, std=width ** -0.5)
    state_dict = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    for name, tensor in state_dict.items():
        if not torch.isfinite(tensor).all():
            raise RuntimeError(f"{name} has non-finite values after float16 rounding")
    save_file(state_dict, str(case_dir / "open_clip_model.safetensors"))
    (case_dir / "open_clip_config.json").write_text(json.dumps(open_clip_config(cfg), indent=2) + "\n")

    loaded = open_clip.create_model(f"local-dir:{case_dir}")
    for name, tensor in loaded.state_dict().items():
        if tensor.dtype != torch.float32 or not torch.equal(tensor, state_dict[name].float()):
            raise RuntimeError(f"{name} did not load back as the float16-rounded value in float32")
    return loaded


def describe_rows(tokens: torch.Tensor, seq_len: int, forces_last_eos: bool) -> list:
    """Describe how each output row ends. Positions count from the SOT token at 0.

    A row ends at its first EOS or pad token (generate() pads finished rows with pad_token_id 0 and
    also treats a generated 0 as finished). `forces_last_eos` marks top_k decoding, where
    generate() writes EOS at position seq_len - 1 whatever the logits are.
    """
    rows = []
    for row in tokens.tolist():
        generated = row[1:]
        info = {"total_len": len(row)}
        ends = [generated.index(token) for token in (EOS_TOKEN_ID, PAD_TOKEN_ID) if token in generated]
        if not ends:
            info["generated_tokens"] = len(generated)
            info["stop"] = "length"
        else:
            first = min(ends)
            info["generated_tokens"] = first + 1
            info["end_position"] = first + 1
            if generated[first] == PAD_TOKEN_ID:
                info["stop"] = "pad_token"
            elif forces_last_eos and first + 1 == seq_len - 1:
                info["stop"] = "eos_forced_at_seq_len"
            else:
                info["stop"] = "eos"
        rows.append(info)
    return rows


def greedy_min_margins(model, image: torch.Tensor, tokens: torch.Tensor, min_seq_len: int) -> list:
    """Return, per row, the smallest gap between the top two logits over the freely chosen greedy steps.

    A small gap means a reimplementation with slightly different rounding may pick another token.
    One teacher-forced forward pass over the output replaces the step-by-step passes of
    generate(), which differ from it only by rounding. The last step is skipped because generate()
    forces EOS there, and EOS is excluded while MinLengthLogitsProcessor blocks it.
    """
    with torch.no_grad():
        logits = model(image, tokens[:, :-1], output_labels=False)["logits"]
    margins = []
    for row in range(tokens.shape[0]):
        generated = tokens[row, 1:].tolist()
        stop = len(generated) - 1
        for end_token in (EOS_TOKEN_ID, PAD_TOKEN_ID):
            if end_token in generated:
                stop = min(stop, generated.index(end_token) + 1)
        row_min = float("inf")
        for position in range(stop):
            step_logits = logits[row, position].clone()
            if position + 1 < min_seq_len:
                step_logits[EOS_TOKEN_ID] = -float("inf")
            top2 = torch.topk(step_logits, 2).values
            row_min = min(row_min, float(top2[0] - top2[1]))
        margins.append(row_min)
    return margins


def run_case(name: str, spec: dict) -> None:
    case_dir = PARITY_DIR / name
    case_dir.mkdir(parents=True, exist_ok=True)
    cfg = spec["cfg"] if spec["cfg"] is not None else open_clip.get_model_config(spec["builtin"])
    cfg = copy.deepcopy(cfg)

    if spec["weights"] == "synthesized":
        model = build_coca(cfg)
        model.load_state_dict(synthesize(model), strict=True)
        model_json = dict(cfg, weights="synthesized")
    else:
        model = make_small_weights(case_dir, cfg)
        model_json = dict(cfg, weights=spec["weights"], weights_dtype="float16")
    if "builtin" in spec:
        model_json["open_clip_builtin"] = spec["builtin"]
    model.eval()
    (case_dir / "model.json").write_text(json.dumps(model_json, indent=2) + "\n")

    batch = spec["batch"]
    image_size = cfg["vision_cfg"]["image_size"]
    context_length = cfg["text_cfg"]["context_length"]
    texts = TEXTS[:batch]
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=context_length)
    text = tokenizer(texts).to(torch.int64)
    image = synth_input_image(batch, image_size)

    tensors = {"image": image, "text": text}
    with torch.no_grad():
        tensors["image_features"] = model.encode_image(image, normalize=True)
        tensors["image_features_raw"] = model.encode_image(image, normalize=False)
        tensors["image_embs"] = model._encode_image(image)[1]
        tensors["text_features"] = model.encode_text(text, normalize=True)
        tensors["text_features_raw"] = model.encode_text(text, normalize=False)
        tensors["text_token_embs"] = model._encode_text(text)[1]
        logits = model(image, text)["logits"]
    b0, b1 = spec["logits_slice"]["batch"]
    p0, p1 = spec["logits_slice"]["positions"]
    tensors["logits"] = logits[b0:b1, p0:p1, :]
    tensors["logits_first_256_ids"] = logits[:, :, :LOGITS_HEAD_IDS]

    generation_meta = {}
    generation_warnings = []
    for key, args in GENERATIONS.items():
        kwargs = dict(GENERATION_COMMON, seq_len=spec["seq_len"], **args)
        torch.manual_seed(0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tokens = model.generate(image, **kwargs)
        generation_warnings += sorted({f"{key}: {w.category.__name__}: {w.message}" for w in caught})
        tensors[key] = tokens.to(torch.int64)
        rows = describe_rows(tokens, spec["seq_len"], forces_last_eos=args["generation_type"] == "top_k")
        generation_meta[key] = {"args": kwargs, "output_shape": list(tokens.shape), "rows": rows}
        print(f"  {key}: shape {list(tokens.shape)}, rows {rows}")
        print(f"    {tokens.tolist()}")

    margins = greedy_min_margins(model, image, tensors["greedy_tokens"], GENERATION_COMMON["min_seq_len"])
    generation_meta["greedy_tokens"]["min_top2_logit_margin"] = margins
    print(f"  greedy smallest top-2 logit margin per row: {margins}")

    greedy_rows = generation_meta["greedy_tokens"]["rows"]
    if any(row["generated_tokens"] <= 1 for row in greedy_rows):
        generation_meta["greedy_tokens"]["note"] = "greedy decoding stopped after its first generated token"
        print("  NOTE: greedy decoding stopped after its first generated token")

    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    save_file(tensors, str(case_dir / "expected.safetensors"))

    meta = {
        "case": name,
        "versions": {
            "torch": torch.__version__,
            "open_clip": open_clip.__version__,
            "transformers": transformers.__version__,
            "numpy": np.__version__,
        },
        "texts": texts,
        "batch": batch,
        "image_size": image_size,
        "context_length": context_length,
        "image_input": f"synth_input_image({batch}, {image_size}) from scripts/synth_weights.py",
        "weights": model_json["weights"],
        "logits_full_shape": list(logits.shape),
        "logits_slice": {
            "batch": [b0, b1],
            "positions": [p0, p1],
            "vocab": [0, logits.shape[-1]],
            "ranges": "half-open [start, end)",
        },
        "logits_first_256_ids_slice": {
            "batch": [0, logits.shape[0]],
            "positions": [0, logits.shape[1]],
            "vocab": [0, LOGITS_HEAD_IDS],
        },
        "generation": generation_meta,
        "generation_warnings": generation_warnings,
        "tensors": {
            k: {"shape": list(v.shape), "dtype": str(v.dtype).removeprefix("torch."), "description": TENSOR_DESCRIPTIONS[k]}
            for k, v in tensors.items()
        },
    }
    (case_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def check_outputs(names) -> bool:
    """Reload each expected.safetensors, print tensor shapes and folder sizes, and check size limits."""
    ok = True
    for name in names:
        case_dir = PARITY_DIR / name
        tensors = load_file(str(case_dir / "expected.safetensors"))
        print(f"{name}/expected.safetensors:")
        for key, tensor in tensors.items():
            print(f"  {key}: {list(tensor.shape)} {str(tensor.dtype).removeprefix('torch.')}")
        folder_bytes = sum(p.stat().st_size for p in case_dir.iterdir() if p.is_file())
        limit = CASES[name]["max_folder_bytes"]
        status = "ok" if folder_bytes <= limit else "OVER LIMIT"
        print(f"  folder size {folder_bytes} bytes (limit {limit}): {status}")
        ok &= folder_bytes <= limit
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*", help=f"cases to write, from {', '.join(CASES)} (default: all)")
    args = parser.parse_args()
    unknown = [name for name in args.cases if name not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")
    names = args.cases or list(CASES)
    print(f"torch {torch.__version__}, open_clip {open_clip.__version__}, transformers {transformers.__version__}")
    for name in names:
        print(f"case {name}")
        run_case(name, CASES[name])
    if not check_outputs(names):
        sys.exit("a fixture folder is over its size limit")


if __name__ == "__main__":
    main()
