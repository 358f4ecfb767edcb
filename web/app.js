// The demo page: picks a model and an image and shows the caption that worker.js computes.

const HUB_REPO = "laion/mscoco_finetuned_CoCa-ViT-B-32-laion2B-s13B-b90k";
const HUB_BASE = `https://huggingface.co/${HUB_REPO}/resolve/main/`;

// NOTE: open_clip reads open_clip_model.safetensors from a Hub repository when it exists and
// falls back to open_clip_pytorch_model.bin, which this library cannot read. The Hub was not
// reachable when this was written, so whether this repository has the safetensors file is
// unverified; a missing file fails with "HTTP 404".
const MODELS = {
  demo: {
    configUrl: "models/demo/open_clip_config.json",
    weightsUrl: "models/demo/open_clip_model.safetensors",
  },
  hub: {
    configUrl: `${HUB_BASE}open_clip_config.json`,
    weightsUrl: `${HUB_BASE}open_clip_model.safetensors`,
  },
};

/** Cache Storage bucket for Hub downloads. */
const CACHE_NAME = "coca-wgpu-models";

const $ = (id) => document.getElementById(id);

const worker = new Worker(new URL("worker.js", import.meta.url), { type: "module" });
const pending = new Map();
let nextId = 1;
let modelLoaded = false;
let currentImage = null;
let busy = false;

/** Sends a task to the worker; resolves with its result or rejects with its error. */
function request(type, fields = {}) {
  const id = nextId++;
  worker.postMessage({ type, id, ...fields });
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
}

worker.onmessage = ({ data }) => {
  switch (data.type) {
    case "ready":
      onWorkerReady(data.webgpuProblem);
      break;
    case "progress":
      showProgress(data);
      break;
    case "token":
      $("caption").textContent = data.text;
      break;
    case "done":
    case "failed": {
      const task = pending.get(data.id);
      pending.delete(data.id);
      if (data.type === "done") {
        task.resolve(data.result);
      } else {
        const error = new Error(data.message);
        error.name = data.name ?? "Error";
        task.reject(error);
      }
      break;
    }
  }
};

worker.onerror = (event) => {
  setStatus(`The model worker failed: ${event.message}`);
  showError(`The model worker failed to start: ${event.message}`);
};

function setStatus(text) {
  $("model-status").textContent = text;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

function formatBytes(bytes) {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${(bytes / 1e3).toFixed(0)} kB`;
}

function showProgress({ file, loaded, total }) {
  const bar = $("load-progress");
  bar.hidden = false;
  if (total) {
    bar.max = total;
    bar.value = loaded;
    setStatus(`Reading the ${file}: ${formatBytes(loaded)} of ${formatBytes(total)}`);
  } else {
    bar.removeAttribute("value");
    setStatus(`Reading the ${file}: ${formatBytes(loaded)}`);
  }
}

function onWorkerReady(webgpuProblem) {
  if (webgpuProblem) {
    $("webgpu-problem-text").textContent = webgpuProblem;
    $("webgpu-problem").hidden = false;
    document.body.dataset.webgpu = "unavailable";
    setStatus("WebGPU is not available, so no model can be loaded.");
    for (const control of document.querySelectorAll("main button, main input, main select")) {
      control.disabled = true;
    }
    return;
  }
  document.body.dataset.webgpu = "available";
  loadModel();
}

// --- Models -------------------------------------------------------------------------------

async function modelSource() {
  const choice = $("model-choice").value;
  if (choice !== "local") {
    return { source: MODELS[choice], cache: choice === "hub" ? CACHE_NAME : undefined };
  }
  const files = [...$("model-files").files];
  const config = files.find((file) => file.name.endsWith(".json"));
  const weights = files.find((file) => file.name.endsWith(".safetensors"));
  if (!config || !weights) {
    throw new Error("Select both open_clip_config.json and a .safetensors weights file.");
  }
  return { source: { config, weights } };
}

async function loadModel() {
  const label = $("model-choice").selectedOptions[0].textContent;
  modelLoaded = false;
  updateButtons();
  $("error").hidden = true;
  $("load-button").disabled = true;
  $("cancel-button").hidden = false;
  setStatus(`Loading ${label}…`);
  const started = performance.now();
  try {
    const { source, cache } = await modelSource();
    const info = await request("load", { source, cache });
    modelLoaded = true;
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    setStatus(`Loaded ${label} in ${seconds} s on ${info.adapter} (${formatBytes(info.weightBytes)} of weights).`);
    if (currentImage) {
      caption();
    }
  } catch (error) {
    setStatus(error.name === "AbortError" ? "Loading was cancelled." : "The model could not be loaded.");
    if (error.name !== "AbortError") {
      showError(error.message);
    }
  } finally {
    $("load-button").disabled = false;
    $("cancel-button").hidden = true;
    $("load-progress").hidden = true;
    updateButtons();
  }
}

/** Shows the size of the Hub download, or that it is already in the cache. */
async function describeHubDownload() {
  const text = $("hub-size");
  const url = MODELS.hub.weightsUrl;
  if ("caches" in globalThis && (await (await caches.open(CACHE_NAME)).match(url))) {
    text.textContent = "The weights are already downloaded and cached in this browser.";
    return;
  }
  text.textContent = "Checking the download size…";
  try {
    const response = await fetch(url, { method: "HEAD" });
    if (!response.ok) {
      throw new Error(`HTTP ${response.status} ${response.statusText}`);
    }
    const size = Number(response.headers.get("content-length") || response.headers.get("x-linked-size"));
    text.textContent = size
      ? `Download size: ${formatBytes(size)}, kept in the browser's cache afterwards. Press “Load model” to start.`
      : "The server did not report the size. Press “Load model” to start.";
  } catch (error) {
    text.textContent = `Could not reach the Hugging Face Hub (${error.message}). Check the network connection, or download the files and choose “Local files”.`;
  }
}

$("model-choice").addEventListener("change", () => {
  const choice = $("model-choice").value;
  $("hub-details").hidden = choice !== "hub";
  $("local-details").hidden = choice !== "local";
  if (choice === "hub") {
    describeHubDownload();
  } else if (choice === "demo") {
    loadModel();
  }
});

$("model-files").addEventListener("change", () => loadModel());
$("load-button").addEventListener("click", () => loadModel());
$("cancel-button").addEventListener("click", () => worker.postMessage({ type: "abort" }));

$("clear-cache-button").addEventListener("click", async () => {
  const existed = await request("clearCache", { name: CACHE_NAME });
  setStatus(existed ? "Deleted the downloaded models from the browser's cache." : "No downloaded models were cached.");
  if ($("model-choice").value === "hub") {
    describeHubDownload();
  }
});

// --- Images -------------------------------------------------------------------------------

function setImage(file) {
  currentImage = file;
  const preview = $("preview");
  if (preview.src) {
    URL.revokeObjectURL(preview.src);
  }
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  if (modelLoaded) {
    caption();
  }
  updateButtons();
}

$("image-input").addEventListener("change", () => {
  const [file] = $("image-input").files;
  if (file) setImage(file);
});

const dropZone = $("drop-zone");
dropZone.addEventListener("dragover", (event) => {
  event.preventDefault();
  dropZone.classList.add("dragging");
});
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropZone.classList.remove("dragging");
  const [file] = event.dataTransfer.files;
  if (file) setImage(file);
});

document.addEventListener("paste", (event) => {
  const file = [...event.clipboardData.files].find((f) => f.type.startsWith("image/"));
  if (file) setImage(file);
});

for (const button of document.querySelectorAll(".sample")) {
  button.addEventListener("click", async () => {
    const response = await fetch(button.dataset.src);
    const name = button.dataset.src.split("/").pop();
    setImage(new File([await response.blob()], name, { type: "image/png" }));
  });
}

// --- Decoding options and captions ---------------------------------------------------------

function showOptionsFor(type) {
  for (const element of document.querySelectorAll("#options [data-for]")) {
    element.hidden = !element.dataset.for.split(" ").includes(type);
  }
}

$("generation-type").addEventListener("change", () => showOptionsFor($("generation-type").value));
showOptionsFor($("generation-type").value);

/** Collects the visible decoding options under the names that `caption` expects. */
function captionOptions() {
  const options = { generationType: $("generation-type").value };
  for (const input of document.querySelectorAll("#options input")) {
    if (!input.hidden) {
      options[input.name] = Number(input.value);
    }
  }
  return options;
}

function updateButtons() {
  $("caption-button").disabled = !(modelLoaded && currentImage) || busy;
}

async function caption() {
  if (busy) return;
  busy = true;
  updateButtons();
  $("error").hidden = true;
  $("stats").hidden = true;
  const captionText = $("caption");
  captionText.textContent = "…";
  captionText.dataset.state = "running";
  try {
    const result = await request("caption", { image: currentImage, options: captionOptions() });
    captionText.textContent = result.caption;
    captionText.dataset.state = "done";
    showStats(result);
  } catch (error) {
    captionText.textContent = "";
    captionText.dataset.state = "failed";
    showError(error.message);
  } finally {
    busy = false;
    updateButtons();
  }
}

function showStats(result) {
  const ms = (value) => `${value.toFixed(1)} ms`;
  $("tokens-per-second").textContent = result.tokensPerSecond.toFixed(1);
  $("time-preprocess").textContent = ms(result.timings.preprocessMs);
  $("time-plan").textContent = ms(result.timings.planMs);
  $("time-encode").textContent = ms(result.timings.encodeMs);
  $("time-decode").textContent = `${ms(result.timings.decodeMs)} (${result.steps} steps)`;
  $("time-total").textContent = ms(result.timings.totalMs);
  $("tokens").textContent = result.tokens.join(" ");
  $("stats").hidden = false;
}

$("caption-button").addEventListener("click", () => caption());
