"""Time open_clip 3.3.0 CoCa on the CPU, as the baseline for coca-wgpu's own timings.

The model is open_clip's built-in coca_ViT-B-32 config in float32 with the synthesized weights of
scripts/synth_weights.py, and the pixel input is synth_input_image(batch, 224). Measured:

* encode_image, batch 1.
* Greedy decoding, batch 1: generate(generation_type="top_k", top_k=1, seq_len=30,
  min_seq_len=29). min_seq_len=29 blocks EOS until the step that generate() forces to EOS, so every
  row runs all 29 decoding steps unless it picks the pad token 0, which generate() also treats as
  the end of a row.
* Beam search, batch 1: num_beams=6, num_beam_groups=1, seq_len=30, min_seq_len=29.
* Greedy decoding, batch 8, with the greedy settings.
* Beam search with open_clip's default 3 groups, batch 8: num_beams=6, num_beam_groups=3,
  seq_len=30, min_seq_len=29.

open_clip 3.3.0's generate() keeps no KV cache: every step reruns the text tower and the decoder over
the whole prefix, and beam search encodes the image once per beam.

Each is run once to warm up, then timed 3 times (see --runs), and the median wall time is
reported. The result is one JSON line on stdout with the medians in seconds, all run times, the
output lengths and torch's intra-op thread count (the default unless --threads is given). It also
records the CPU count and the load average, because other processes on the machine slow the runs.

    # needs torch, numpy, safetensors, open-clip-torch==3.3.0 and transformers==4.55.4
    # (the versions the committed fixtures were made with)
    python scripts/bench_open_clip.py                 # took 36 minutes on 2 CPU cores at load average 8
    python scripts/bench_open_clip.py --runs 1 --only encode_image greedy_b1
"""

import argparse
import json
import os
import statistics
import time

import open_clip
import torch
import transformers

from synth_weights import synth_input_image, synthesize

MODEL_NAME = "coca_ViT-B-32"
IMAGE_SIZE = 224
SEQ_LEN = 30
# The highest value generate() accepts (it asserts seq_len > min_seq_len).
MIN_SEQ_LEN = SEQ_LEN - 1
EOS_TOKEN_ID = 49407
PAD_TOKEN_ID = 0

GREEDY_ARGS = {"generation_type": "top_k", "top_k": 1, "seq_len": SEQ_LEN, "min_seq_len": MIN_SEQ_LEN}
BEAM_ARGS = {
    "generation_type": "beam_search",
    "num_beams": 6,
    "num_beam_groups": 1,
    "seq_len": SEQ_LEN,
    "min_seq_len": MIN_SEQ_LEN,
}
BEAM_GROUP_ARGS = dict(BEAM_ARGS, num_beam_groups=3)


def generated_lengths(tokens: torch.Tensor) -> list:
    """Count the generated tokens per row (SOT excluded) up to and including EOS or the first pad token."""
    lengths = []
    for row in tokens.tolist():
        generated = row[1:]
        length = len(generated)
        for end_token in (EOS_TOKEN_ID, PAD_TOKEN_ID):
            if end_token in generated:
                length = min(length, generated.index(end_token) + 1)
        lengths.append(length)
    return lengths


def time_runs(fn, runs: int, warm_up: bool = True) -> tuple:
    """Call fn once to warm up (unless warm_up is false) and then `runs` more times. Return (wall times
    in seconds, last output)."""
    output = fn() if warm_up else None
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        output = fn()
        times.append(time.perf_counter() - start)
    return times, output


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="timed runs per benchmark after one warm-up run")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's default)")
    parser.add_argument("--no-warm-up", action="store_true", help="skip the untimed first call of each benchmark")
    parser.add_argument("--only", nargs="*", default=None,
                        help="benchmarks to run, from encode_image greedy_b1 beam6_b1 greedy_b8 beam6x3_b8 (default: all)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    model = open_clip.create_model(MODEL_NAME, pretrained=None)
    model.load_state_dict(synthesize(model), strict=True)
    model.eval()
    image_b1 = synth_input_image(1, IMAGE_SIZE)
    image_b8 = synth_input_image(8, IMAGE_SIZE)

    def encode_image():
        with torch.no_grad():
            return model.encode_image(image_b1)

    benchmarks = {
        "encode_image": (encode_image, None),
        "greedy_b1": (lambda: model.generate(image_b1, **GREEDY_ARGS), GREEDY_ARGS),
        "beam6_b1": (lambda: model.generate(image_b1, **BEAM_ARGS), BEAM_ARGS),
        "greedy_b8": (lambda: model.generate(image_b8, **GREEDY_ARGS), GREEDY_ARGS),
        "beam6x3_b8": (lambda: model.generate(image_b8, **BEAM_GROUP_ARGS), BEAM_GROUP_ARGS),
    }
    selected = args.only or list(benchmarks)
    unknown = [name for name in selected if name not in benchmarks]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(benchmarks)}")

    result = {
        "model": f"{MODEL_NAME} float32, synthesized weights",
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "loadavg_start": list(os.getloadavg()),
        "runs": args.runs,
    }
    for name in selected:
        fn, generate_args = benchmarks[name]
        times, output = time_runs(fn, args.runs, warm_up=not args.no_warm_up)
        entry = {"median_s": statistics.median(times), "times_s": times}
        if generate_args is not None:
            entry["generate_args"] = generate_args
            entry["output_shape"] = list(output.shape)
            entry["generated_tokens"] = generated_lengths(output)
        result[name] = entry
    result["loadavg_end"] = list(os.getloadavg())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
