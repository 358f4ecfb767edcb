// Runs the model off the page's main thread, so the page stays responsive while the GPU works.
//
// Messages from the page: { type: "load", id, source, cache }, { type: "abort" },
// { type: "caption", id, image, options }, { type: "clearCache", id, name }.
// Replies: { type: "ready", webgpuProblem }, { type: "progress", loaded, total, file },
// { type: "token", text }, { type: "done", id, result } and { type: "failed", id, message, name }.
import init, { Coca, webgpuUnavailableReason } from "./pkg/coca_wgpu.js";

let model = null;
let loadAbort = null;

// One task at a time: the model rejects overlapping calls, and a load replaces the model.
let queue = Promise.resolve();

const handlers = {
  async load({ source, cache }) {
    model?.free();
    model = null;
    loadAbort = new AbortController();
    try {
      model = await Coca.load(source, {
        cache,
        signal: loadAbort.signal,
        onProgress: ({ file, loaded, total }) => postMessage({ type: "progress", file, loaded, total }),
      });
    } finally {
      loadAbort = null;
    }
    return model.info;
  },

  async caption({ image, options }) {
    if (!model) {
      throw new Error("no model is loaded; load one first");
    }
    const onToken = ({ text }) => postMessage({ type: "token", text });
    return model.caption(image, { ...options, onToken });
  },

  async clearCache({ name }) {
    return Coca.clearCache(name);
  },
};

onmessage = ({ data }) => {
  // Aborting must not wait behind the load it aborts.
  if (data.type === "abort") {
    loadAbort?.abort();
    return;
  }
  queue = queue.then(async () => {
    try {
      const result = await handlers[data.type](data);
      postMessage({ type: "done", id: data.id, result });
    } catch (error) {
      postMessage({ type: "failed", id: data.id, message: error?.message ?? String(error), name: error?.name });
    }
  });
};

try {
  await init();
  postMessage({ type: "ready", webgpuProblem: (await webgpuUnavailableReason()) ?? null });
} catch (error) {
  postMessage({ type: "ready", webgpuProblem: `The WebAssembly module failed to start: ${error?.message ?? error}` });
}
