//! JavaScript bindings (wasm-bindgen) for browsers and Node, built by `scripts/build_wasm.sh`
//! into the npm package `coca-wgpu`.
//!
//! The exported class `Coca` loads a checkpoint from URLs or user-picked files onto a WebGPU
//! device and offers `caption`, `encodeImage`, `encodeText` and `classify`, each returning a
//! promise. Failures reject with a JavaScript `Error` whose message comes from the crate's
//! [`crate::Error`]. The TypeScript declarations of the option and result objects are in
//! `TYPESCRIPT` below and become part of the generated `.d.ts`.

mod fetch;
mod image;
mod options;

use std::cell::{Cell, RefCell};
use std::fmt::Display;
use std::rc::Rc;
use std::sync::Arc;

use js_sys::{Array, Float32Array, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;

use crate::error::Error;
use crate::gpu::{GpuContext, GpuOptions};
use crate::timing::Stopwatch;
use crate::tokenizer::Tokenizer;
use fetch::Transfer;
use options::{describe_value, generation_config, JsOptions, CAPTION_OPTIONS};

#[wasm_bindgen(typescript_custom_section)]
const TYPESCRIPT: &'static str = r#"
/** A model's files: two URLs, or the files' contents (e.g. `File`s from a file picker). */
export type ModelSource =
  | { configUrl: string; weightsUrl: string }
  | {
      /** `open_clip_config.json` as text, bytes or a `File`. */
      config: string | Blob | Uint8Array | ArrayBuffer;
      /** The safetensors weights (f32, f16 or bf16). */
      weights: Blob | Uint8Array | ArrayBuffer;
      /** The weights' name in error messages; defaults to the `File`'s name. */
      weightsName?: string;
    };

/** Progress of reading one model file. */
export interface LoadProgress {
  file: "config" | "weights";
  /** Bytes read so far. */
  loaded: number;
  /** Size in bytes, or null when the server does not send it. */
  total: number | null;
}

export interface LoadOptions {
  onProgress?: (progress: LoadProgress) => void;
  /** Aborting rejects `load` with an `Error` named "AbortError". */
  signal?: AbortSignal;
  /** Name of a Cache Storage bucket: downloads are stored there and later loads read them back. */
  cache?: string;
  /** Adapter preference: "high-performance" (default) or "low-power". */
  powerPreference?: "high-performance" | "low-power";
}

/** Anything `caption`, `encodeImage` and `classify` accept as an image. Encoded bytes (Blob, File,
 * Uint8Array, ArrayBuffer with PNG, JPEG, WebP, GIF or BMP) decode exactly as open_clip does.
 * The other types are drawn onto a canvas first, so the browser's decoding applies. */
export type ImageInput =
  | ImageBitmap
  | ImageData
  | HTMLImageElement
  | HTMLCanvasElement
  | OffscreenCanvas
  | Blob
  | Uint8Array
  | ArrayBuffer;

/** One streamed token of sampling or greedy decoding. */
export interface TokenEvent {
  token: number;
  /** The caption decoded so far. */
  text: string;
}

/** Generation options: open_clip's `generate` arguments (Rust `GenerationConfig`) in camelCase. */
export interface CaptionOptions {
  /** Decoding strategy; default "beam_search". */
  generationType?: "beam_search" | "top_k" | "top_p";
  /** Maximum caption length in tokens, start token included; default 30. */
  seqLen?: number;
  maxSeqLen?: number;
  /** Softmax temperature for sampling; default 1. */
  temperature?: number;
  /** Nucleus size for "top_p"; default 0.1. */
  topP?: number;
  /** Candidates for "top_k"; default 1 (greedy). */
  topK?: number;
  padTokenId?: number;
  eosTokenId?: number;
  sotTokenId?: number;
  /** Beams for "beam_search"; default 6. */
  numBeams?: number;
  /** Independently searched beam groups; default 3. */
  numBeamGroups?: number;
  /** The end token is blocked until the caption has this many tokens; default 5. */
  minSeqLen?: number;
  repetitionPenalty?: number;
  fixedOutputLength?: boolean;
  lengthPenalty?: number;
  /** Seed of the sampler; the same seed gives the same caption. Default 0. */
  seed?: number;
  /** Beam scores: sums of log-probabilities (default) or open_clip 3.3.0's raw logits. */
  beamScoring?: "log_softmax" | "raw_logits";
  /** Diverse beam search: penalty per earlier group that picked the same token; default 0. */
  diversityPenalty?: number;
  /** transformers' early stopping of beam groups; default false. */
  earlyStopping?: boolean | "never";
  /** Beam search returns this many captions, best first, in `alternatives`; default 1. */
  numReturnSequences?: number;
  /** A caption ends once its text contains one of these strings. */
  stopStrings?: string[];
  /** Text the caption continues. */
  prefix?: string;
  /** Called for each token that sampling appends (not called by beam search); return false to stop. */
  onToken?: (event: TokenEvent) => boolean | void;
}

/** Time spent in each stage of one call, in milliseconds. */
export interface CaptionTimings {
  /** Decoding and resizing the image. */
  preprocessMs: number;
  /** Building GPU plans (first call per option set only). */
  planMs: number;
  /** Image encoder and the decoder's cross-attention inputs. */
  encodeMs: number;
  /** All decode steps. */
  decodeMs: number;
  totalMs: number;
}

export interface CaptionResult {
  caption: string;
  /** Token ids as open_clip's `generate` returns them, start token first. */
  tokens: number[];
  /** Beam score of the chosen caption (beam search only). */
  score: number | null;
  /** Decode steps run. */
  steps: number;
  /** Generated tokens (start token excluded) per second of decoding. */
  tokensPerSecond: number;
  timings: CaptionTimings;
  /** With `numReturnSequences` above 1: every returned caption, best first (the first is this one). */
  alternatives?: { caption: string; tokens: number[]; score: number | null }[];
}

export interface EmbedOptions {
  /** L2-normalize the embedding; default true. */
  normalize?: boolean;
}

export interface LabelProbability {
  label: string;
  probability: number;
}

export interface ModelInfo {
  /** The WebGPU adapter's description. */
  adapter: string;
  imageSize: number;
  embedDim: number;
  contextLength: number;
  vocabSize: number;
  /** Bytes of weights on the GPU (f32). */
  weightBytes: number;
}
"#;

const WEBGPU_MISSING: &str = "WebGPU is not available: navigator.gpu is undefined. Use a browser with WebGPU \
     (Chrome or Edge 113 or newer, Safari 26, Firefox 141 or newer on Windows), or enable it: in Chrome on \
     Linux, start it with --enable-unsafe-webgpu or turn on chrome://flags/#enable-unsafe-webgpu. Pages need \
     https: or localhost. In Node, provide navigator.gpu with the `webgpu` package";

const NO_ADAPTER: &str = "WebGPU is present but offered no GPU adapter. The GPU may be blocklisted or \
     WebGPU disabled in the browser's settings; in Chrome, check chrome://gpu and try \
     chrome://flags/#enable-unsafe-webgpu";

/// Turns any message into a JavaScript `Error`.
pub(crate) fn js_error(message: impl Display) -> JsValue {
    js_sys::Error::new(&message.to_string()).into()
}

#[wasm_bindgen(start)]
fn start() {
    // NOTE: A panic aborts the WebAssembly instance, and this hook only prints its message to
    // the console. Every input check returns an Error instead, so a panic is a bug.
    console_error_panic_hook::set_once();
}

/// A CoCa model on a WebGPU device.
#[wasm_bindgen(js_name = Coca)]
pub struct CocaHandle {
    shared: Rc<Shared>,
    info: JsValue,
    /// A copy of the model's tokenizer for decoding streamed tokens while the model is
    /// borrowed by generation.
    tokenizer: Rc<Tokenizer>,
}

/// The model and the state that calls in flight share with the handle.
struct Shared {
    /// `None` while a call is running (the call owns the model then) and after `free()`.
    model: RefCell<Option<crate::Coca>>,
    freed: Cell<bool>,
}

impl Shared {
    /// Takes the model for one call, so that no borrow is held across an `await`.
    fn take(&self) -> Result<crate::Coca, JsValue> {
        if self.freed.get() {
            return Err(js_error("this Coca model was freed; load it again"));
        }
        self.model.borrow_mut().take().ok_or_else(|| {
            js_error("this Coca model is busy with another call; await the previous promise before starting the next")
        })
    }

    /// Returns the model after a call, or releases its GPU memory if `free()` came meanwhile.
    fn put_back(&self, model: crate::Coca) {
        if self.freed.get() {
            model.ctx.device.destroy();
        } else {
            *self.model.borrow_mut() = Some(model);
        }
    }
}

impl Drop for CocaHandle {
    fn drop(&mut self) {
        self.shared.freed.set(true);
        if let Some(model) = self.shared.model.borrow_mut().take() {
            model.ctx.device.destroy();
        }
    }
}

/// Runs one call with the model taken out of `shared`, inside WebGPU error scopes so that a
/// validation or out-of-memory error of this call rejects its promise.
fn run_call<F, Fut>(shared: &Rc<Shared>, call: F) -> Promise
where
    F: FnOnce(crate::Coca) -> Fut + 'static,
    Fut: std::future::Future<Output = (crate::Coca, Result<JsValue, JsValue>)> + 'static,
{
    let shared = shared.clone();
    future_to_promise(async move {
        let model = shared.take()?;
        let device = model.ctx.device.clone();
        let memory_scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation_scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let (model, result) = call(model).await;
        let validation = validation_scope.pop().await;
        let memory = memory_scope.pop().await;
        shared.put_back(model);
        if let Some(error) = memory.or(validation) {
            return Err(js_error(format!("the GPU reported an error: {error}")));
        }
        result
    })
}

#[wasm_bindgen(js_class = Coca)]
impl CocaHandle {
    /// Loads a model from two URLs or from the files' contents.
    #[wasm_bindgen(unchecked_return_type = "Promise<Coca>")]
    pub fn load(
        #[wasm_bindgen(unchecked_param_type = "ModelSource")] source: JsValue,
        #[wasm_bindgen(unchecked_param_type = "LoadOptions | undefined")] options: JsValue,
    ) -> Promise {
        future_to_promise(async move { load(source, options).await.map(JsValue::from) })
    }

    /// Deletes the Cache Storage bucket that `load` stored downloads in; resolves to whether it
    /// existed.
    #[wasm_bindgen(js_name = clearCache, unchecked_return_type = "Promise<boolean>")]
    pub fn clear_cache(name: String) -> Promise {
        future_to_promise(async move { fetch::delete_cache(&name).await.map(JsValue::from) })
    }

    /// Returns the adapter's description and the model's sizes.
    #[wasm_bindgen(getter, unchecked_return_type = "ModelInfo")]
    pub fn info(&self) -> JsValue {
        self.info.clone()
    }

    /// Captions one image.
    #[wasm_bindgen(unchecked_return_type = "Promise<CaptionResult>")]
    pub fn caption(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ImageInput")] image: JsValue,
        #[wasm_bindgen(unchecked_param_type = "CaptionOptions | undefined")] options: JsValue,
    ) -> Promise {
        let tokenizer = self.tokenizer.clone();
        run_call(&self.shared, move |mut model| async move {
            let result = caption(&mut model, &tokenizer, image, options).await;
            (model, result)
        })
    }

    /// Computes the image embedding (`encode_image`), normalized unless `normalize: false`.
    #[wasm_bindgen(js_name = encodeImage, unchecked_return_type = "Promise<Float32Array>")]
    pub fn encode_image(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ImageInput")] image: JsValue,
        #[wasm_bindgen(unchecked_param_type = "EmbedOptions | undefined")] options: JsValue,
    ) -> Promise {
        run_call(&self.shared, move |mut model| async move {
            let result = encode_image(&mut model, image, options).await;
            (model, result)
        })
    }

    /// Computes one text embedding (`encode_text`) per text, normalized unless `normalize: false`.
    #[wasm_bindgen(js_name = encodeText, unchecked_return_type = "Promise<Float32Array[]>")]
    pub fn encode_text(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | string[]")] texts: JsValue,
        #[wasm_bindgen(unchecked_param_type = "EmbedOptions | undefined")] options: JsValue,
    ) -> Promise {
        run_call(&self.shared, move |mut model| async move {
            let result = encode_text(&mut model, texts, options).await;
            (model, result)
        })
    }

    /// Classifies the image zero-shot and returns each label's probability, in the given order.
    #[wasm_bindgen(unchecked_return_type = "Promise<LabelProbability[]>")]
    pub fn classify(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ImageInput")] image: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string[]")] labels: JsValue,
    ) -> Promise {
        run_call(&self.shared, move |mut model| async move {
            let result = classify(&mut model, image, labels).await;
            (model, result)
        })
    }
}

/// Resolves to `undefined` when this environment can run the model, else to the reason it
/// cannot: no `navigator.gpu`, or no adapter.
#[wasm_bindgen(js_name = webgpuUnavailableReason, unchecked_return_type = "Promise<string | undefined>")]
pub fn webgpu_unavailable_reason() -> Promise {
    future_to_promise(async move {
        if let Err(reason) = check_navigator_gpu() {
            return Ok(JsValue::from_str(&reason));
        }
        let instance = wgpu::Instance::new(web_instance_descriptor());
        let adapter = instance.request_adapter(&wgpu::RequestAdapterOptions::default()).await;
        Ok(match adapter {
            Ok(_) => JsValue::UNDEFINED,
            Err(_) => JsValue::from_str(NO_ADAPTER),
        })
    })
}

fn web_instance_descriptor() -> wgpu::InstanceDescriptor {
    let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle();
    descriptor.backends = wgpu::Backends::BROWSER_WEBGPU;
    descriptor
}

/// Checks what wgpu's WebGPU backend needs before it is created, because it panics without it:
/// a `navigator.gpu` object in a window or worker global scope.
fn check_navigator_gpu() -> Result<(), String> {
    let global = js_sys::global();
    let navigator = Reflect::get(&global, &"navigator".into()).unwrap_or(JsValue::UNDEFINED);
    let gpu = if navigator.is_object() { Reflect::get(&navigator, &"gpu".into()).unwrap_or(JsValue::UNDEFINED) } else { JsValue::UNDEFINED };
    if gpu.is_undefined() || gpu.is_null() {
        return Err(WEBGPU_MISSING.into());
    }
    let has = |name: &str| Reflect::has(&global, &name.into()).unwrap_or(false);
    if !has("Window") && !has("WorkerGlobalScope") {
        return Err("wgpu looks for navigator.gpu only in a window or a worker; outside both (in Node), define \
                    globalThis.WorkerGlobalScope (any class) before loading a model"
            .into());
    }
    Ok(())
}

async fn create_context(power_preference: wgpu::PowerPreference) -> Result<GpuContext, JsValue> {
    check_navigator_gpu().map_err(js_error)?;
    let options = GpuOptions { backends: Some(wgpu::Backends::BROWSER_WEBGPU), power_preference, trusted_kernels: false };
    let ctx = GpuContext::new(&options).await.map_err(|e| match e {
        Error::NoAdapter | Error::NoAdapterForBackend { .. } => js_error(NO_ADAPTER),
        other => js_error(other),
    })?;

    // wgpu's default handler panics. Errors of a call are caught by its error scopes, so
    // anything left over is only logged.
    ctx.device.on_uncaptured_error(Arc::new(|error| {
        web_sys::console::error_1(&format!("coca-wgpu: uncaptured WebGPU error: {error}").into());
    }));
    Ok(ctx)
}

const LOAD_OPTIONS: &[&str] = &["onProgress", "signal", "cache", "powerPreference"];
const URL_SOURCE: &[&str] = &["configUrl", "weightsUrl"];
const FILE_SOURCE: &[&str] = &["config", "weights", "weightsName"];

async fn load(source: JsValue, options: JsValue) -> Result<CocaHandle, JsValue> {
    let options = JsOptions::new(&options, "load options", LOAD_OPTIONS)?;
    let signal = match options.get("signal")? {
        Some(value) => Some(value.dyn_into::<web_sys::AbortSignal>().map_err(|value| {
            js_error(format!("load options: `signal` must be an AbortSignal, got {}", describe_value(&value)))
        })?),
        None => None,
    };
    let power_preference = match options.string("powerPreference")?.as_deref() {
        None | Some("high-performance") => wgpu::PowerPreference::HighPerformance,
        Some("low-power") => wgpu::PowerPreference::LowPower,
        Some(other) => {
            return Err(js_error(format!(
                "load options: `powerPreference` must be \"high-performance\" or \"low-power\", got \"{other}\""
            )))
        }
    };
    let cache = match options.string("cache")? {
        Some(name) => fetch::open_cache(&name).await?,
        None => None,
    };
    let transfer = Transfer { on_progress: options.function("onProgress")?, signal, cache };

    let (config, weights, weights_name) = read_model_files(&source, &transfer).await?;
    transfer.check_aborted()?;

    let ctx = create_context(power_preference).await?;
    let device = ctx.device.clone();
    let adapter = adapter_description(&ctx.adapter_info);
    let memory_scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation_scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let loaded = crate::Coca::from_bytes(ctx, &config, &weights, &weights_name);
    drop(weights);
    let validation = validation_scope.pop().await;
    let memory = memory_scope.pop().await;
    let model = loaded.map_err(js_error)?;
    if let Some(error) = memory.or(validation) {
        device.destroy();
        return Err(js_error(format!("uploading the weights failed: {error}")));
    }

    let info = model_info(&model, &adapter)?;
    let tokenizer = Rc::new(model.tokenizer.clone());
    let shared = Rc::new(Shared { model: RefCell::new(Some(model)), freed: Cell::new(false) });
    Ok(CocaHandle { shared, info, tokenizer })
}

/// Reads the config text and the weights from a `ModelSource`.
async fn read_model_files(source: &JsValue, transfer: &Transfer) -> Result<(String, Vec<u8>, String), JsValue> {
    let is_url_source =
        source.is_object() && (Reflect::has(source, &"configUrl".into())? || Reflect::has(source, &"weightsUrl".into())?);
    if is_url_source {
        let source = JsOptions::new(source, "model source", URL_SOURCE)?;
        let config_url = source.string("configUrl")?.ok_or_else(|| js_error("model source: `configUrl` is missing"))?;
        let weights_url = source.string("weightsUrl")?.ok_or_else(|| js_error("model source: `weightsUrl` is missing"))?;
        let config = transfer.fetch(&config_url, "config").await?;
        let weights = transfer.fetch(&weights_url, "weights").await?;
        let name = weights_url.rsplit('/').next().unwrap_or(&weights_url).to_string();
        return Ok((config_text(config, &config_url)?, weights, name));
    }

    if !source.is_object() {
        return Err(js_error(format!(
            "the model source must be {{ configUrl, weightsUrl }} or {{ config, weights }}, got {}",
            describe_value(source)
        )));
    }
    let source = JsOptions::new(source, "model source", FILE_SOURCE)?;
    let config_value = source.get("config")?.ok_or_else(|| js_error("model source: `config` is missing"))?;
    let weights_value = source.get("weights")?.ok_or_else(|| js_error("model source: `weights` is missing"))?;
    let config_name = file_name(&config_value).unwrap_or_else(|| "open_clip_config.json".into());
    let weights_name = match source.string("weightsName")? {
        Some(name) => name,
        None => file_name(&weights_value).unwrap_or_else(|| "the weights".into()),
    };
    let config = match config_value.as_string() {
        Some(text) => text,
        None => config_text(read_bytes(&config_value, "config", transfer).await?, &config_name)?,
    };
    let weights = read_bytes(&weights_value, "weights", transfer).await?;
    Ok((config, weights, weights_name))
}

fn file_name(value: &JsValue) -> Option<String> {
    value.dyn_ref::<web_sys::File>().map(web_sys::File::name)
}

async fn read_bytes(value: &JsValue, file: &str, transfer: &Transfer) -> Result<Vec<u8>, JsValue> {
    if let Some(blob) = value.dyn_ref::<web_sys::Blob>() {
        return transfer.read_blob(blob, file).await;
    }
    if let Some(bytes) = value.dyn_ref::<js_sys::Uint8Array>() {
        return Ok(bytes.to_vec());
    }
    if let Some(buffer) = value.dyn_ref::<js_sys::ArrayBuffer>() {
        return Ok(js_sys::Uint8Array::new(buffer).to_vec());
    }
    Err(js_error(format!(
        "model source: `{file}` must be a Blob, File, Uint8Array or ArrayBuffer, got {}",
        describe_value(value)
    )))
}

fn config_text(bytes: Vec<u8>, name: &str) -> Result<String, JsValue> {
    String::from_utf8(bytes)
        .map_err(|_| js_error(format!("{name} is not a text file; expected open_clip_config.json (JSON)")))
}

/// Names the adapter with whatever the browser reveals (often only vendor and architecture).
fn adapter_description(info: &wgpu::AdapterInfo) -> String {
    let parts = [info.name.as_str(), info.driver.as_str(), info.driver_info.as_str()];
    let known: Vec<&str> = parts.into_iter().filter(|part| !part.is_empty()).collect();
    if known.is_empty() {
        "a WebGPU adapter that the browser does not name".to_string()
    } else {
        known.join(", ")
    }
}

fn model_info(model: &crate::Coca, adapter: &str) -> Result<JsValue, JsValue> {
    let dims = &model.model.dims;
    let info = Object::new();
    Reflect::set(&info, &"adapter".into(), &adapter.into())?;
    Reflect::set(&info, &"imageSize".into(), &(dims.image_size as f64).into())?;
    Reflect::set(&info, &"embedDim".into(), &(dims.embed_dim as f64).into())?;
    Reflect::set(&info, &"contextLength".into(), &(dims.context_length as f64).into())?;
    Reflect::set(&info, &"vocabSize".into(), &(dims.vocab_size as f64).into())?;
    Reflect::set(&info, &"weightBytes".into(), &(model.model.weight_bytes as f64).into())?;
    Ok(info.into())
}

/// Decodes and preprocesses one image into the model's input pixels.
async fn pixels(model: &crate::Coca, image: &JsValue) -> Result<Vec<f32>, JsValue> {
    let decoded = image::decode_image(image, &model.preprocessor).await?;
    Ok(model.preprocessor.preprocess(&decoded).data)
}

async fn caption(model: &mut crate::Coca, tokenizer: &Tokenizer, image: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
    let total = Stopwatch::start();
    let options = JsOptions::new(&options, "caption options", CAPTION_OPTIONS)?;
    let config = generation_config(&options)?;
    let on_token = options.function("onToken")?;
    let prefix = match options.string("prefix")? {
        Some(text) if !text.is_empty() => Some(model.tokenizer.encode(&text).map_err(js_error)?),
        _ => None,
    };

    let clock = Stopwatch::start();
    let pixels = pixels(model, &image).await?;
    let preprocess_ms = clock.elapsed_ms();

    // The token callback runs inside generation, which cannot return a JavaScript exception,
    // so a throwing callback stops generation and its exception is rethrown afterwards.
    let mut streamed: Vec<u32> = vec![config.sot_token_id];
    streamed.extend(prefix.iter().flatten());
    let mut thrown: Option<JsValue> = None;
    let mut report = |_image: usize, token: u32| -> bool {
        let Some(callback) = &on_token else {
            return true;
        };
        streamed.push(token);
        match token_event(tokenizer, token, &streamed).and_then(|event| callback.call1(&JsValue::UNDEFINED, &event)) {
            Ok(keep_going) => keep_going.as_bool() != Some(false),
            Err(error) => {
                thrown = Some(error);
                false
            }
        }
    };
    let generated = model.generate_streaming(&pixels, 1, &config, prefix.as_deref(), &mut report).await;
    if let Some(error) = thrown {
        return Err(error);
    }
    let all = generated.map_err(js_error)?;
    let generated = all[0].clone();
    let text = model.tokenizer.decode_caption(&generated.tokens).map_err(js_error)?;

    let stats = &model.last_generation;
    let new_tokens = generated.tokens.len().saturating_sub(1);
    let tokens_per_second = if stats.decode_ms > 0.0 { new_tokens as f64 / (stats.decode_ms / 1000.0) } else { 0.0 };
    let timings = Object::new();
    Reflect::set(&timings, &"preprocessMs".into(), &preprocess_ms.into())?;
    Reflect::set(&timings, &"planMs".into(), &stats.plan_ms.into())?;
    Reflect::set(&timings, &"encodeMs".into(), &stats.encode_ms.into())?;
    Reflect::set(&timings, &"decodeMs".into(), &stats.decode_ms.into())?;
    Reflect::set(&timings, &"totalMs".into(), &total.elapsed_ms().into())?;

    let result = Object::new();
    Reflect::set(&result, &"caption".into(), &text.into())?;
    let tokens: Array = generated.tokens.iter().map(|&t| JsValue::from(t)).collect();
    Reflect::set(&result, &"tokens".into(), &tokens)?;
    Reflect::set(&result, &"score".into(), &generated.score.map_or(JsValue::NULL, JsValue::from))?;
    Reflect::set(&result, &"steps".into(), &(stats.steps as f64).into())?;
    Reflect::set(&result, &"tokensPerSecond".into(), &tokens_per_second.into())?;
    Reflect::set(&result, &"timings".into(), &timings)?;
    if all.len() > 1 {
        let alternatives = Array::new();
        for option in &all {
            let entry = Object::new();
            let caption = model.tokenizer.decode_caption(&option.tokens).map_err(js_error)?;
            Reflect::set(&entry, &"caption".into(), &caption.into())?;
            let tokens: Array = option.tokens.iter().map(|&t| JsValue::from(t)).collect();
            Reflect::set(&entry, &"tokens".into(), &tokens)?;
            Reflect::set(&entry, &"score".into(), &option.score.map_or(JsValue::NULL, JsValue::from))?;
            alternatives.push(&entry);
        }
        Reflect::set(&result, &"alternatives".into(), &alternatives)?;
    }
    Ok(result.into())
}

fn token_event(tokenizer: &Tokenizer, token: u32, tokens: &[u32]) -> Result<JsValue, JsValue> {
    let event = Object::new();
    Reflect::set(&event, &"token".into(), &token.into())?;
    let text = tokenizer.decode_caption(tokens).map_err(js_error)?;
    Reflect::set(&event, &"text".into(), &text.into())?;
    Ok(event.into())
}

fn normalize_option(options: &JsValue) -> Result<bool, JsValue> {
    let options = JsOptions::new(options, "embedding options", &["normalize"])?;
    Ok(options.boolean("normalize")?.unwrap_or(true))
}

async fn encode_image(model: &mut crate::Coca, image: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
    let normalize = normalize_option(&options)?;
    let pixels = pixels(model, &image).await?;
    let mut features = model.encode_image(&pixels, 1, normalize).await.map_err(js_error)?;
    Ok(Float32Array::from(features.remove(0).as_slice()).into())
}

async fn encode_text(model: &mut crate::Coca, texts: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
    let normalize = normalize_option(&options)?;
    let texts = match texts.as_string() {
        Some(text) => vec![text],
        None => string_list(&texts, "encodeText: `texts`")?,
    };
    let features = model.embed_texts(&texts, normalize).await.map_err(js_error)?;
    let list: Array = features.iter().map(|f| JsValue::from(Float32Array::from(f.as_slice()))).collect();
    Ok(list.into())
}

async fn classify(model: &mut crate::Coca, image: JsValue, labels: JsValue) -> Result<JsValue, JsValue> {
    let labels = string_list(&labels, "classify: `labels`")?;
    let pixels = pixels(model, &image).await?;
    let probabilities = model.classify_pixels(&pixels, 1, &labels).await.map_err(js_error)?.remove(0);
    let list = Array::new();
    for (label, probability) in labels.iter().zip(probabilities) {
        let entry = Object::new();
        Reflect::set(&entry, &"label".into(), &label.into())?;
        Reflect::set(&entry, &"probability".into(), &probability.into())?;
        list.push(&entry);
    }
    Ok(list.into())
}

fn string_list(value: &JsValue, argument: &str) -> Result<Vec<String>, JsValue> {
    if !Array::is_array(value) {
        return Err(js_error(format!("{argument} must be an array of strings, got {}", describe_value(value))));
    }
    Array::from(value)
        .iter()
        .enumerate()
        .map(|(index, item)| {
            item.as_string().ok_or_else(|| {
                js_error(format!("{argument} must be an array of strings, but item {index} is {}", describe_value(&item)))
            })
        })
        .collect()
}
