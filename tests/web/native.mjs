// Expected outputs from the native command-line tool, which tests/cli.rs and tests/demo.rs check
// against open_clip. The web builds must reproduce its tokens exactly.
//
// COCA_BIN names an already built `coca` binary (CI passes the one `cargo test` built);
// otherwise `cargo run --release` builds and runs it.
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/** The sample image both tests caption, relative to the repository root. */
export const sampleImage = "examples/images/shapes-1.png";

/** Caption options of each checked decoding, as CLI flags and as JavaScript options. Those
 * marked `form: false` use options that the demo page's form does not offer. */
export const decodings = [
  { name: "beam search (default options)", flags: [], options: {} },
  { name: "greedy", flags: ["--generation", "top_k", "--top-k", "1"], options: { generationType: "top_k", topK: 1 } },
  {
    name: "seeded top-k sampling",
    flags: ["--generation", "top_k", "--top-k", "16", "--temperature", "8", "--seed", "2"],
    options: { generationType: "top_k", topK: 16, temperature: 8, seed: 2 },
  },
  {
    // A nucleus of the whole vocabulary, which reads every logit of each step back. Temperature
    // 1 keeps the draws clear of the rounding differences between GPUs: at temperature 2 the demo
    // model's distribution is flat enough for one draw to differ between lavapipe and SwiftShader.
    name: "seeded top-p sampling with p = 1",
    flags: ["--generation", "top_p", "--top-p", "1", "--temperature", "1", "--seed", "3"],
    options: { generationType: "top_p", topP: 1, temperature: 1, seed: 3 },
  },
  {
    name: "diverse beam search with a prefix and a stop string",
    flags: ["--diversity-penalty", "1", "--prefix", "a blue", "--stop", "triangle", "--early-stopping", "never"],
    options: { diversityPenalty: 1, prefix: "a blue", stopStrings: ["triangle"], earlyStopping: "never" },
    form: false,
  },
  {
    name: "raw-logit beam search, 1 group, length penalty 0",
    flags: ["--beam-scoring", "raw_logits", "--num-beam-groups", "1", "--length-penalty", "0"],
    options: { beamScoring: "raw_logits", numBeamGroups: 1, lengthPenalty: 0 },
    form: false,
  },
];

function runNative(args) {
  const [program, ...prefix] = process.env.COCA_BIN
    ? [resolve(process.env.COCA_BIN)]
    : ["cargo", "run", "--release", "--quiet", "--bin", "coca", "--"];
  const output = execFileSync(program, [...prefix, ...args], {
    cwd: repoRoot,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 64 * 1024 * 1024,
  });
  return output.trim().split("\n").map((line) => JSON.parse(line));
}

/** Runs `coca caption --model demo --json FLAGS IMAGE` and returns all its JSON lines. */
export function nativeCaptions(image, flags) {
  return runNative(["caption", "--model", "demo", "--json", ...flags, image]);
}

/** Runs `coca caption --model demo --json FLAGS IMAGE` and returns its JSON line. */
export function nativeCaption(image, flags) {
  return runNative(["caption", "--model", "demo", "--json", ...flags, image])[0];
}

/** Runs `coca embed-image --model demo --json IMAGE` and returns the embedding. */
export function nativeImageEmbedding(image) {
  return runNative(["embed-image", "--model", "demo", "--json", image])[0].embedding;
}
