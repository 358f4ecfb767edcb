"""Write open_clip 3.3.0's generated tokens for generation options beyond the defaults:
tests/fixtures/generation/small.json for the `small` parity checkpoint (tests/fixtures/parity/small)
on the pixel input stored in its expected.safetensors, and tests/fixtures/generation/demo.json for
the bundled demo model on demo fixture images with nucleus (top_p) sampling, whose nucleus is a
single token there, so the output does not depend on the random generator.

Beam search options that open_clip 3.3.0's `generate` does not expose are produced by open_clip's
own `_generate_beamsearch` with transformers' components plugged in the way transformers' group
beam search uses them: a log-softmax processor ahead of the others (log-probability scores), a
`HammingDiversityLogitsProcessor` (diversity_penalty), a `BeamSearchScorer` with length_penalty,
early_stopping and num_beam_hyps_to_keep (n best), and a start tensor holding a prefix.

Rerun from the repository root with the reference environment (open-clip-torch==3.3.0,
transformers==4.55.4):

    python scripts/make_generation_fixtures.py
"""

import json
import pathlib

import functools

import open_clip
import open_clip.coca_model as coca_model
import torch
import transformers
from transformers import (BeamSearchScorer, HammingDiversityLogitsProcessor, LogitsProcessorList,
                          MaxLengthCriteria, MinLengthLogitsProcessor, RepetitionPenaltyLogitsProcessor,
                          StoppingCriteriaList)
from PIL import Image
from safetensors.torch import load_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "tests/fixtures/parity/small"

CASES = {
    "greedy_repetition_penalty": dict(generation_type="top_k", top_k=1, seq_len=20, repetition_penalty=1.5),
    "beam_repetition_penalty": dict(generation_type="beam_search", num_beams=6, num_beam_groups=1, seq_len=20,
                                    repetition_penalty=1.5),
    "greedy_strong_penalty": dict(generation_type="top_k", top_k=1, seq_len=20, repetition_penalty=3.0),
    "greedy_prefix": dict(generation_type="top_k", top_k=1, seq_len=20, prefix=[320, 1125, 539]),
    "greedy_window": dict(generation_type="top_k", top_k=1, seq_len=16, max_seq_len=6),
    "greedy_window_penalty": dict(generation_type="top_k", top_k=1, seq_len=14, max_seq_len=5,
                                  repetition_penalty=1.5, min_seq_len=3),
    "greedy_fixed_length": dict(generation_type="top_k", top_k=1, seq_len=20, min_seq_len=2,
                                fixed_output_length=True),
    "beam_fixed_length": dict(generation_type="beam_search", num_beams=4, num_beam_groups=2, seq_len=20,
                              min_seq_len=2, fixed_output_length=True),
}

# Beam search cases beyond open_clip 3.3.0's options (see the module docstring).
BEAM_CASES = {
    "beam_log_softmax_default": dict(num_beams=6, num_beam_groups=3, seq_len=20, beam_scoring="log_softmax"),
    "beam_log_softmax_one_group": dict(num_beams=6, num_beam_groups=1, seq_len=20, beam_scoring="log_softmax"),
    "beam_log_softmax_penalty": dict(num_beams=4, num_beam_groups=1, seq_len=20, beam_scoring="log_softmax",
                                     repetition_penalty=1.5),
    "beam_raw_diversity": dict(num_beams=6, num_beam_groups=3, seq_len=20, beam_scoring="raw_logits",
                               diversity_penalty=0.5),
    "beam_log_softmax_diversity": dict(num_beams=6, num_beam_groups=3, seq_len=20, beam_scoring="log_softmax",
                                       diversity_penalty=1.0),
    "beam_diversity_four_groups": dict(num_beams=8, num_beam_groups=4, seq_len=16, beam_scoring="log_softmax",
                                       diversity_penalty=2.0),
    "beam_length_penalty_early": dict(num_beams=6, num_beam_groups=1, seq_len=20, beam_scoring="log_softmax",
                                      length_penalty=0.5, early_stopping=True, min_seq_len=2),
    "beam_length_penalty_never": dict(num_beams=6, num_beam_groups=2, seq_len=20, beam_scoring="log_softmax",
                                      length_penalty=2.0, early_stopping="never", min_seq_len=2),
    "beam_n_best": dict(num_beams=6, num_beam_groups=2, seq_len=20, beam_scoring="log_softmax",
                        num_return_sequences=4),
    "beam_raw_n_best": dict(num_beams=6, num_beam_groups=1, seq_len=20, beam_scoring="raw_logits",
                            num_return_sequences=3),
    "beam_prefix": dict(num_beams=6, num_beam_groups=3, seq_len=20, beam_scoring="log_softmax",
                        prefix=[320, 1125, 539]),
}


class LogSoftmax:
    """Turns logits into log-probabilities, as transformers' beam search does before its processors."""

    def __call__(self, input_ids, scores):
        return torch.log_softmax(scores, dim=-1)


class RecordingScorer(BeamSearchScorer):
    """A BeamSearchScorer that keeps the scores of the hypotheses it returns."""

    last_scores = None

    def finalize(self, *args, **kwargs):
        out = super().finalize(*args, **kwargs)
        RecordingScorer.last_scores = out["sequence_scores"].tolist()
        return out


def beam_reference(model, image, num_beams, num_beam_groups, seq_len, beam_scoring, min_seq_len=5,
                   repetition_penalty=1.0, diversity_penalty=0.0, length_penalty=1.0, early_stopping=False,
                   num_return_sequences=1, prefix=()):
    eos = coca_model._token_to_tensor(49407, device=image.device)
    processors = [LogSoftmax()] if beam_scoring == "log_softmax" else []
    processors += [MinLengthLogitsProcessor(min_seq_len, eos), RepetitionPenaltyLogitsProcessor(repetition_penalty)]
    if diversity_penalty:
        processors.append(HammingDiversityLogitsProcessor(diversity_penalty, num_beams, num_beam_groups))
    # `_generate_beamsearch` starts from torch.ones((rows, 1)) * sot_token_id, so a [1, 1 + prefix]
    # tensor gives every beam the prefix after the start token.
    sot = torch.tensor([[49406, *prefix]]) if prefix else coca_model._token_to_tensor(49406, device=image.device)
    original = coca_model.BeamSearchScorer
    coca_model.BeamSearchScorer = functools.partial(
        RecordingScorer, length_penalty=length_penalty, do_early_stopping=early_stopping,
        num_beam_hyps_to_keep=num_return_sequences, max_length=seq_len)
    try:
        tokens = model._generate_beamsearch(
            image, pad_token_id=model.pad_id, eos_token_id=eos, sot_token_id=sot, num_beams=num_beams,
            num_beam_groups=num_beam_groups, min_seq_len=min_seq_len,
            stopping_criteria=StoppingCriteriaList([MaxLengthCriteria(max_length=seq_len)]),
            logit_processor=LogitsProcessorList(processors))
    finally:
        coca_model.BeamSearchScorer = original
    return tokens.tolist(), RecordingScorer.last_scores


def open_clip_generate(model, image, args):
    """open_clip's `generate`; a prefix becomes its `text` argument (start token first)."""
    args = dict(args)
    prefix = args.pop("prefix", None)
    if prefix:
        args["text"] = torch.tensor([[49406, *prefix]] * image.shape[0])
    return model.generate(image, **args).tolist()


def main():
    model, _, _ = open_clip.create_model_and_transforms(f"local-dir:{MODEL_DIR}")
    model.eval()
    image = load_file(str(MODEL_DIR / "expected.safetensors"))["image"]
    cases = {}
    with torch.no_grad():
        for name, args in CASES.items():
            cases[name] = {"args": args, "tokens": open_clip_generate(model, image, args)}
        for name, args in BEAM_CASES.items():
            tokens, scores = beam_reference(model, image, **args)
            cases[name] = {"args": dict(generation_type="beam_search", **args), "tokens": tokens, "scores": scores}
        default = cases["beam_log_softmax_default"]["tokens"]
        diverse = cases["beam_log_softmax_diversity"]["tokens"]
        print("diversity penalty changes the output:", default != diverse)
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

    # The demo model ends its captions early, which exercises hypotheses, early stopping and
    # length penalties that the random `small` checkpoint never reaches.
    demo_images = json.loads((ROOT / "tests/fixtures/demo/expected.json").read_text())["images"]
    demo_cases = {
        "beam_log_softmax_default": dict(num_beams=6, num_beam_groups=3, seq_len=30, beam_scoring="log_softmax"),
        "beam_log_softmax_diversity": dict(num_beams=6, num_beam_groups=3, seq_len=30, beam_scoring="log_softmax",
                                           diversity_penalty=1.0),
        "beam_length_penalty_early": dict(num_beams=6, num_beam_groups=1, seq_len=30, beam_scoring="log_softmax",
                                          length_penalty=0.5, early_stopping=True),
        "beam_length_penalty_never": dict(num_beams=6, num_beam_groups=2, seq_len=30, beam_scoring="log_softmax",
                                          length_penalty=2.0, early_stopping="never"),
        "beam_raw_length_penalty": dict(num_beams=6, num_beam_groups=3, seq_len=30, beam_scoring="raw_logits",
                                        length_penalty=0.0),
        "beam_n_best": dict(num_beams=6, num_beam_groups=3, seq_len=30, beam_scoring="log_softmax",
                            num_return_sequences=3),
    }
    cases = {}
    with torch.no_grad():
        for name, case_args in demo_cases.items():
            # The default runs on every fixture image; the other options on the first four.
            names = list(demo_images) if name == "beam_log_softmax_default" else list(demo_images)[:4]
            results = {}
            for image_name in names:
                pixels = preprocess(Image.open(ROOT / demo_images[image_name]["path"])).unsqueeze(0)
                tokens, scores = beam_reference(model, pixels, **case_args)
                results[image_name] = {"path": demo_images[image_name]["path"], "tokens": tokens, "scores": scores}
            cases[name] = {"args": dict(generation_type="beam_search", **case_args), "images": results}
    out = ROOT / "tests/fixtures/generation/demo_beam.json"
    out.write_text(json.dumps({"model": "models/demo", "open_clip": open_clip.__version__,
                               "transformers": transformers.__version__, "cases": cases}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
