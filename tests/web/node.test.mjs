// The npm package (pkg/, built by scripts/build_wasm.sh) in Node, on WebGPU from the `webgpu`
// package (Dawn). On machines without a GPU, run with
// VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json (Debian's chromium package).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { create, globals } from "webgpu";

import { decodings, nativeCaption, nativeCaptions, nativeImageEmbedding, repoRoot, sampleImage } from "./native.mjs";

const pkg = join(repoRoot, "pkg");
const { default: init, Coca } = await import(join(pkg, "coca_wgpu.js"));

let model;

before(async () => {
  Object.assign(globalThis, globals);
  Object.defineProperty(globalThis, "navigator", { value: { gpu: create([]) }, configurable: true });
  // wgpu looks for navigator.gpu only in a window or a worker.
  globalThis.WorkerGlobalScope ??= class WorkerGlobalScope {};
  await init({ module_or_path: await readFile(join(pkg, "coca_wgpu_bg.wasm")) });

  const demo = join(repoRoot, "models/demo");
  model = await Coca.load({
    config: await readFile(join(demo, "open_clip_config.json"), "utf8"),
    weights: await readFile(join(demo, "open_clip_model.safetensors")),
    weightsName: "open_clip_model.safetensors",
  });
});

after(() => model?.free());

for (const decoding of decodings) {
  test(`caption tokens match the CLI: ${decoding.name}`, async () => {
    const expected = nativeCaption(sampleImage, decoding.flags);
    const image = await readFile(join(repoRoot, sampleImage));
    const result = await model.caption(image, decoding.options);
    assert.deepEqual(result.tokens, expected.tokens);
    assert.equal(result.caption, expected.caption);
    assert.ok(result.tokensPerSecond > 0, `tokensPerSecond is ${result.tokensPerSecond}`);
  });
}

test("the n best captions match the CLI's", async () => {
  const expected = nativeCaptions(sampleImage, ["--num-return-sequences", "3", "--num-beam-groups", "1"]);
  const image = await readFile(join(repoRoot, sampleImage));
  const result = await model.caption(image, { numReturnSequences: 3, numBeamGroups: 1 });
  assert.equal(result.alternatives.length, 3);
  assert.deepEqual(result.alternatives.map((a) => a.tokens), expected.map((line) => line.tokens));
  assert.deepEqual(result.tokens, expected[0].tokens);
});

test("streamed tokens match the caption", async () => {
  const image = await readFile(join(repoRoot, sampleImage));
  const streamed = [];
  const result = await model.caption(image, {
    generationType: "top_k",
    topK: 1,
    onToken: ({ token }) => {
      streamed.push(token);
    },
  });
  assert.deepEqual(streamed, result.tokens.slice(1));
});

test("token callback can stop generation", async () => {
  const image = await readFile(join(repoRoot, sampleImage));
  const result = await model.caption(image, { generationType: "top_k", topK: 1, onToken: () => false });
  assert.equal(result.tokens.length, 2);
});

test("image embedding matches the CLI", async () => {
  const expected = nativeImageEmbedding(sampleImage);
  const embedding = await model.encodeImage(await readFile(join(repoRoot, sampleImage)));
  assert.equal(embedding.length, expected.length);
  const maxDifference = Math.max(...expected.map((value, i) => Math.abs(value - embedding[i])));
  assert.ok(maxDifference < 1e-4, `largest difference from the CLI's embedding: ${maxDifference}`);
});

test("classify prefers the true caption", async () => {
  const image = await readFile(join(repoRoot, sampleImage));
  const labels = ["a blue circle left of a blue triangle", "a red square"];
  const probabilities = await model.classify(image, labels);
  assert.deepEqual(probabilities.map((p) => p.label), labels);
  assert.ok(probabilities[0].probability > 0.9, JSON.stringify(probabilities));
});

test("text embeddings are normalized", async () => {
  const [embedding] = await model.encodeText(["a red circle"]);
  assert.equal(embedding.length, model.info.embedDim);
  const norm = Math.hypot(...embedding);
  assert.ok(Math.abs(norm - 1) < 1e-4, `norm is ${norm}`);
});

test("caption rejects non-image bytes", async () => {
  const text = new TextEncoder().encode("this is not an image");
  await assert.rejects(model.caption(text), { name: "Error", message: /unsupported image format/ });
});

test("caption rejects misspelled options", async () => {
  const image = await readFile(join(repoRoot, sampleImage));
  await assert.rejects(model.caption(image, { top_k: 1 }), { message: /unknown option `top_k`; the JavaScript name is `topK`/ });
});

test("caption rejects invalid generation options", async () => {
  const image = await readFile(join(repoRoot, sampleImage));
  await assert.rejects(model.caption(image, { numBeams: 4, numBeamGroups: 3 }), { message: /divisible/ });
});

test("load rejects non-safetensors weights", async () => {
  const config = await readFile(join(repoRoot, "models/demo/open_clip_config.json"), "utf8");
  await assert.rejects(
    Coca.load({ config, weights: new TextEncoder().encode("not weights"), weightsName: "weights.bin" }),
    { message: /weights\.bin.*not a readable safetensors file/ },
  );
});
