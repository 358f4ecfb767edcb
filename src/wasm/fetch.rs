//! Reading model files from URLs and `Blob`s with progress reports, cancellation through an
//! `AbortSignal`, and an optional Cache Storage bucket for downloads.

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Blob, Cache, CacheStorage, ReadableStream, ReadableStreamDefaultReader, RequestInit, Response};

use super::js_error;

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`, which windows, workers and Node all have (web-sys binds it only as
    /// a method of `Window` and `WorkerGlobalScope`).
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(url: &str, init: &RequestInit) -> Promise;
}

/// How to read the model files: progress callback, abort signal and download cache.
pub(crate) struct Transfer {
    pub on_progress: Option<Function>,
    pub signal: Option<AbortSignal>,
    pub cache: Option<Cache>,
}

impl Transfer {
    /// Fails with an `AbortError` if the signal has fired.
    pub fn check_aborted(&self) -> Result<(), JsValue> {
        match &self.signal {
            Some(signal) if signal.aborted() => Err(abort_error()),
            _ => Ok(()),
        }
    }

    /// Calls `onProgress({ file, loaded, total })`; `total` is `null` when unknown.
    fn report(&self, file: &str, loaded: u64, total: Option<u64>) -> Result<(), JsValue> {
        let Some(callback) = &self.on_progress else {
            return Ok(());
        };
        let event = Object::new();
        Reflect::set(&event, &"file".into(), &file.into())?;
        Reflect::set(&event, &"loaded".into(), &(loaded as f64).into())?;
        let total = match total {
            Some(total) => JsValue::from_f64(total.max(loaded) as f64),
            None => JsValue::NULL,
        };
        Reflect::set(&event, &"total".into(), &total)?;
        callback.call1(&JsValue::UNDEFINED, &event)?;
        Ok(())
    }

    /// Downloads `url`, or reads it from the cache if an earlier download stored it there.
    /// `file` ("config" or "weights") names the file in progress reports.
    pub async fn fetch(&self, url: &str, file: &str) -> Result<Vec<u8>, JsValue> {
        self.check_aborted()?;
        if let Some(cache) = &self.cache {
            let cached = JsFuture::from(cache.match_with_str(url)).await?;
            if let Some(response) = cached.dyn_ref::<Response>() {
                return self.read_response(response, url, file).await;
            }
        }

        let init = RequestInit::new();
        if let Some(signal) = &self.signal {
            init.set_signal(Some(signal));
        }
        let response = match JsFuture::from(global_fetch(url, &init)).await {
            Ok(response) => response.dyn_into::<Response>()?,
            Err(error) => {
                self.check_aborted()?;
                return Err(js_error(format!(
                    "downloading {url} failed: {}. Check the network connection and that the server allows \
                     cross-origin requests, or load the model from local files",
                    error_message(&error)
                )));
            }
        };
        if !response.ok() {
            return Err(js_error(format!(
                "downloading {url} failed: HTTP {} {}; check the URL",
                response.status(),
                response.status_text()
            )));
        }

        // The cache stores a copy of the stream while this reads the other. Its put completes with the body.
        let stored = match &self.cache {
            Some(cache) => Some(cache.put_with_str(url, &response.clone()?)),
            None => None,
        };
        let bytes = self.read_response(&response, url, file).await?;
        if let Some(stored) = stored {
            if let Err(error) = JsFuture::from(stored).await {
                web_sys::console::warn_1(
                    &format!("coca-wgpu: storing {url} in the browser cache failed: {}", error_message(&error)).into(),
                );
            }
        }
        Ok(bytes)
    }

    async fn read_response(&self, response: &Response, url: &str, file: &str) -> Result<Vec<u8>, JsValue> {
        let total = response
            .headers()
            .get("content-length")?
            .and_then(|length| length.parse::<u64>().ok());
        let Some(body) = response.body() else {
            self.report(file, 0, Some(0))?;
            return Ok(Vec::new());
        };
        self.read_stream(&body, total, file)
            .await
            .map_err(|error| self.read_error(error, &format!("reading the download of {url}")))
    }

    /// Reads a `Blob` or `File` (a file the user picked).
    pub async fn read_blob(&self, blob: &Blob, file: &str) -> Result<Vec<u8>, JsValue> {
        self.check_aborted()?;
        let name = blob.dyn_ref::<web_sys::File>().map_or_else(|| "the blob".to_string(), |f| f.name());
        self.read_stream(&blob.stream(), Some(blob.size() as u64), file)
            .await
            .map_err(|error| self.read_error(error, &format!("reading {name}")))
    }

    fn read_error(&self, error: JsValue, action: &str) -> JsValue {
        if self.signal.as_ref().is_some_and(AbortSignal::aborted) {
            return abort_error();
        }
        js_error(format!("{action} failed: {}", error_message(&error)))
    }

    async fn read_stream(&self, stream: &ReadableStream, total: Option<u64>, file: &str) -> Result<Vec<u8>, JsValue> {
        let reader = stream.get_reader().dyn_into::<ReadableStreamDefaultReader>()?;
        let capacity = total.unwrap_or(0).min(u32::MAX as u64) as usize;
        let mut bytes = Vec::with_capacity(capacity);
        self.report(file, 0, total)?;
        loop {
            if let Err(error) = self.check_aborted() {
                let _ = reader.cancel();
                return Err(error);
            }
            let chunk = JsFuture::from(reader.read()).await?;
            if Reflect::get(&chunk, &"done".into())?.as_bool().unwrap_or(false) {
                break;
            }
            let value = Reflect::get(&chunk, &"value".into())?.dyn_into::<Uint8Array>()?;
            let start = bytes.len();
            bytes.resize(start + value.length() as usize, 0);
            value.copy_to(&mut bytes[start..]);
            self.report(file, bytes.len() as u64, total)?;
        }
        Ok(bytes)
    }
}

/// Opens the Cache Storage bucket `name`, or returns `None` (with a console warning) where the
/// Cache API is missing: it exists only in secure contexts (https:, localhost, 127.0.0.1).
pub(crate) async fn open_cache(name: &str) -> Result<Option<Cache>, JsValue> {
    let Some(caches) = cache_storage()? else {
        web_sys::console::warn_1(
            &"coca-wgpu: the Cache API is not available here (it needs https: or localhost), so downloads are not cached"
                .into(),
        );
        return Ok(None);
    };
    let cache = JsFuture::from(caches.open(name)).await?;
    Ok(Some(cache.dyn_into::<Cache>()?))
}

/// Deletes the Cache Storage bucket `name`; returns whether it existed.
pub(crate) async fn delete_cache(name: &str) -> Result<bool, JsValue> {
    let Some(caches) = cache_storage()? else {
        return Ok(false);
    };
    Ok(JsFuture::from(caches.delete(name)).await?.as_bool().unwrap_or(false))
}

fn cache_storage() -> Result<Option<CacheStorage>, JsValue> {
    let caches = Reflect::get(&js_sys::global(), &"caches".into())?;
    if caches.is_undefined() || caches.is_null() {
        return Ok(None);
    }
    Ok(Some(caches.dyn_into::<CacheStorage>()?))
}

/// Creates an `Error` named `AbortError`, the name of `fetch`'s rejection when its signal fires.
pub(crate) fn abort_error() -> JsValue {
    let error = js_sys::Error::new("loading the model was aborted");
    error.set_name("AbortError");
    error.into()
}

/// Returns the `message` of a thrown JavaScript value, or its string form.
pub(crate) fn error_message(error: &JsValue) -> String {
    if let Some(error) = error.dyn_ref::<js_sys::Error>() {
        return String::from(error.message());
    }
    error.as_string().unwrap_or_else(|| format!("{error:?}"))
}
