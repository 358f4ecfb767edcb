// The demo page (web/, built by scripts/build_wasm.sh) in Debian's Chromium, driven by Playwright.
// WebGPU runs on SwiftShader, Chromium's software Vulkan driver, which needs
// --enable-unsafe-webgpu on Linux. A screenshot of the captioned page goes to target/web-test/.
import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";

import { serve } from "../../scripts/serve_web.mjs";
import { decodings, nativeCaption, repoRoot, sampleImage } from "./native.mjs";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const WEBGPU_ARGS = ["--enable-unsafe-webgpu"];
const outputDir = join(repoRoot, "target/web-test");
// Loading and the first caption compile every kernel on a software GPU.
const CAPTION_TIMEOUT_MS = 180_000;

let server;
let pageUrl;

before(async () => {
  server = await serve(undefined, 0);
  pageUrl = `http://127.0.0.1:${server.address().port}/`;
  await mkdir(outputDir, { recursive: true });
});

after(() => server?.close());

/** Opens the demo page in a fresh Chromium and collects its console errors. */
async function openPage(args) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args });
  const page = await browser.newPage({ viewport: { width: 1200, height: 1100 } });
  const consoleErrors = [];
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => consoleErrors.push(error.message));
  await page.goto(pageUrl);
  return { browser, page, consoleErrors };
}

/** Waits until the model whose menu label starts with `label` has loaded, or failed to. */
async function waitForModel(page, label = "Demo model") {
  await page.waitForFunction(
    (label) => {
      const status = document.getElementById("model-status").textContent;
      return status.startsWith(`Loaded ${label}`) || status.includes("could not be loaded");
    },
    label,
    { timeout: CAPTION_TIMEOUT_MS },
  );
  const status = await page.textContent("#model-status");
  assert.match(status, /^Loaded/, `model status: ${status}; error: ${await page.textContent("#error")}`);
}

/** Waits until the caption in progress has finished or failed; returns the final state. */
async function waitForCaption(page) {
  await page.waitForFunction(
    () => ["done", "failed"].includes(document.getElementById("caption").dataset.state),
    null,
    { timeout: CAPTION_TIMEOUT_MS },
  );
  return page.getAttribute("#caption", "data-state");
}

async function shownTokens(page) {
  return (await page.textContent("#tokens")).split(" ").map(Number);
}

test("page caption matches the CLI", async () => {
  const expected = decodings.map((decoding) => nativeCaption(sampleImage, decoding.flags));
  const { browser, page, consoleErrors } = await openPage(WEBGPU_ARGS);
  try {
    const started = Date.now();
    await page.setInputFiles("#image-input", join(repoRoot, sampleImage));
    await waitForModel(page);
    assert.equal(await waitForCaption(page), "done", await page.textContent("#error"));
    const firstCaptionSeconds = (Date.now() - started) / 1000;
    console.log(`time to first caption in headless Chromium: ${firstCaptionSeconds.toFixed(1)} s`);
    await writeFile(join(outputDir, "first-caption-seconds.txt"), `${firstCaptionSeconds.toFixed(1)}\n`);

    // Beam search with the default options.
    assert.deepEqual(await shownTokens(page), expected[0].tokens);
    assert.equal(await page.textContent("#caption"), expected[0].caption);
    assert.ok(Number(await page.textContent("#tokens-per-second")) > 0);
    await page.screenshot({ path: join(outputDir, "captioned.png"), fullPage: true });

    // The other decodings, chosen in the form.
    for (const [index, decoding] of decodings.entries()) {
      if (index === 0 || decoding.form === false) continue;
      const { generationType, ...fields } = decoding.options;
      await page.selectOption("#generation-type", generationType);
      for (const [name, value] of Object.entries(fields)) {
        await page.fill(`#options [name=${name}]`, String(value));
      }
      await page.click("#caption-button");
      assert.equal(await waitForCaption(page), "done", await page.textContent("#error"));
      assert.deepEqual(await shownTokens(page), expected[index].tokens, decoding.name);
      assert.equal(await page.textContent("#caption"), expected[index].caption, decoding.name);
    }

    assert.deepEqual(consoleErrors, []);
  } finally {
    await browser.close();
  }
});

test("page captions dropped and pasted images", async () => {
  const expected = nativeCaption(sampleImage, decodings[0].flags);
  const bytes = [...(await readFile(join(repoRoot, sampleImage)))];
  const { browser, page, consoleErrors } = await openPage(WEBGPU_ARGS);
  try {
    await waitForModel(page);
    for (const gesture of ["drop", "paste"]) {
      // Playwright cannot drag a file from the desktop or fill the clipboard with one, so the
      // test sends the events that the browser sends for those gestures.
      await page.evaluate(
        ({ gesture, bytes }) => {
          const file = new File([new Uint8Array(bytes)], `${gesture}.png`, { type: "image/png" });
          const transfer = new DataTransfer();
          transfer.items.add(file);
          if (gesture === "drop") {
            const event = new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true });
            document.getElementById("drop-zone").dispatchEvent(event);
          } else {
            document.dispatchEvent(new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true }));
          }
        },
        { gesture, bytes },
      );
      assert.equal(await page.getAttribute("#caption", "data-state"), "running", `${gesture} started no caption`);
      assert.equal(await waitForCaption(page), "done", await page.textContent("#error"));
      assert.deepEqual(await shownTokens(page), expected.tokens, gesture);
      assert.equal(await page.isVisible("#preview"), true, `${gesture} shows the image`);
    }
    assert.deepEqual(consoleErrors, []);
  } finally {
    await browser.close();
  }
});

test("library captions every image type", async () => {
  const greedy = decodings.find((decoding) => decoding.name === "greedy");
  const expected = nativeCaption(sampleImage, greedy.flags);
  const { browser, page } = await openPage(WEBGPU_ARGS);
  try {
    await waitForModel(page);
    const outcome = await page.evaluate(async (options) => {
      const { default: init, Coca } = await import("./pkg/coca_wgpu.js");
      await init();
      const model = await Coca.load({
        configUrl: new URL("models/demo/open_clip_config.json", location.href).href,
        weightsUrl: new URL("models/demo/open_clip_model.safetensors", location.href).href,
      });

      // samples/shapes-1.png is a copy of the native test's image.
      const url = new URL("samples/shapes-1.png", location.href).href;
      const blob = await (await fetch(url)).blob();
      const bytes = new Uint8Array(await blob.arrayBuffer());
      const bitmap = await createImageBitmap(blob);
      const canvas = document.createElement("canvas");
      canvas.width = bitmap.width;
      canvas.height = bitmap.height;
      canvas.getContext("2d").drawImage(bitmap, 0, 0);
      const offscreen = new OffscreenCanvas(bitmap.width, bitmap.height);
      offscreen.getContext("2d").drawImage(bitmap, 0, 0);
      const element = new Image();
      element.src = url;

      const inputs = {
        Blob: blob,
        File: new File([blob], "shapes-1.png", { type: "image/png" }),
        Uint8Array: bytes,
        ArrayBuffer: bytes.buffer.slice(0),
        ImageData: canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height),
        ImageBitmap: bitmap,
        HTMLImageElement: element,
        HTMLCanvasElement: canvas,
        OffscreenCanvas: offscreen,
      };
      const results = {};
      for (const [type, image] of Object.entries(inputs)) {
        try {
          results[type] = (await model.caption(image, options)).tokens;
        } catch (error) {
          results[type] = error.message;
        }
      }
      model.free();
      return results;
    }, greedy.options);
    assert.deepEqual(Object.keys(outcome).length, 9);
    for (const [type, tokens] of Object.entries(outcome)) {
      assert.deepEqual(tokens, expected.tokens, `caption of the image as ${type}`);
    }
  } finally {
    await browser.close();
  }
});

test("page reports a non-image file", async () => {
  const { browser, page } = await openPage(WEBGPU_ARGS);
  try {
    await waitForModel(page);
    await page.setInputFiles("#image-input", {
      name: "notes.png",
      mimeType: "image/png",
      buffer: Buffer.from("These are notes, not an image.\n"),
    });
    assert.equal(await waitForCaption(page), "failed");
    const error = await page.textContent("#error");
    assert.match(error, /^notes\.png: unsupported image format/);
    assert.equal(await page.isVisible("#error"), true);
    assert.equal(await page.textContent("#caption"), "");
  } finally {
    await browser.close();
  }
});

test("library caches downloads and honors abort", async () => {
  const { browser, page } = await openPage(WEBGPU_ARGS);
  try {
    await waitForModel(page);
    const outcome = await page.evaluate(async () => {
      // The page's own module instance lives in its worker; this one runs on the main thread.
      const { default: init, Coca } = await import("./pkg/coca_wgpu.js");
      await init();
      const source = {
        configUrl: new URL("models/demo/open_clip_config.json", location.href).href,
        weightsUrl: new URL("models/demo/open_clip_model.safetensors", location.href).href,
      };
      const cacheName = "coca-wgpu-test";
      const results = {};

      const aborted = new AbortController();
      aborted.abort();
      try {
        await Coca.load(source, { signal: aborted.signal });
        results.abort = "resolved";
      } catch (error) {
        results.abort = error.name;
      }

      const progress = [];
      const model = await Coca.load(source, { cache: cacheName, onProgress: (event) => progress.push(event) });
      const cache = await caches.open(cacheName);
      results.cachedAfterLoad = Boolean(await cache.match(source.weightsUrl));
      const weightsEvents = progress.filter((event) => event.file === "weights");
      results.lastProgress = weightsEvents.at(-1);
      results.info = model.info;
      model.free();

      results.clearedExisting = await Coca.clearCache(cacheName);
      results.clearedAgain = await Coca.clearCache(cacheName);
      return results;
    });
    assert.equal(outcome.abort, "AbortError");
    assert.equal(outcome.cachedAfterLoad, true);
    assert.equal(outcome.lastProgress.loaded, outcome.lastProgress.total);
    assert.ok(outcome.lastProgress.total > 1_000_000, JSON.stringify(outcome.lastProgress));
    assert.equal(outcome.info.imageSize, 64);
    assert.equal(outcome.clearedExisting, true);
    assert.equal(outcome.clearedAgain, false);
  } finally {
    await browser.close();
  }
});

test("page loads local model files", async () => {
  const expected = nativeCaption(sampleImage, decodings[0].flags);
  const { browser, page } = await openPage(WEBGPU_ARGS);
  try {
    await waitForModel(page);
    await page.selectOption("#model-choice", "local");
    await page.setInputFiles("#model-files", [
      join(repoRoot, "models/demo/open_clip_config.json"),
      join(repoRoot, "models/demo/open_clip_model.safetensors"),
    ]);
    await waitForModel(page, "Local files");
    await page.setInputFiles("#image-input", join(repoRoot, sampleImage));
    assert.equal(await waitForCaption(page), "done", await page.textContent("#error"));
    assert.deepEqual(await shownTokens(page), expected.tokens);
  } finally {
    await browser.close();
  }
});

test("page explains when WebGPU is unavailable", async () => {
  // Without --enable-unsafe-webgpu, Chromium on Linux exposes navigator.gpu but no adapter.
  const { browser, page } = await openPage([]);
  try {
    await page.waitForSelector("#webgpu-problem", { state: "visible", timeout: 60_000 });
    const text = await page.textContent("#webgpu-problem");
    assert.match(text, /offered no GPU adapter/);
    assert.match(text, /enable-unsafe-webgpu/);
    assert.equal(await page.isDisabled("#caption-button"), true);
    assert.equal(await page.isDisabled("#load-button"), true);
  } finally {
    await browser.close();
  }
});
