//! Turning the image types of the web platform into decoded pixels.
//!
//! Encoded bytes (`Blob`, `File`, `Uint8Array`, `ArrayBuffer`) go through the crate's own
//! decoders, so they give the same pixels as the native command-line tool and open_clip
//! (see `crate::preprocess`). `ImageData` is used as given. `ImageBitmap`, `HTMLImageElement`,
//! `HTMLCanvasElement` and `OffscreenCanvas` have no byte access, so they are drawn onto an
//! `OffscreenCanvas` and read back. The browser decoded those and may have applied colour
//! management, so their pixels can differ slightly from the file's.

use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, File, HtmlCanvasElement, HtmlImageElement, ImageBitmap, ImageData, OffscreenCanvas};

use super::js_error;
use super::options::describe_value;
use crate::preprocess::{DecodedImage, Preprocessor};

/// The image types that `caption`, `encodeImage` and `classify` accept.
pub(crate) const IMAGE_TYPES: &str =
    "an ImageBitmap, ImageData, HTMLImageElement, HTMLCanvasElement, OffscreenCanvas, Blob, File, Uint8Array or ArrayBuffer";

/// Decodes an image given as any of [`IMAGE_TYPES`].
pub(crate) async fn decode_image(value: &JsValue, preprocessor: &Preprocessor) -> Result<DecodedImage, JsValue> {
    if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
        return decode_bytes(&bytes.to_vec(), preprocessor, None);
    }
    if let Some(buffer) = value.dyn_ref::<ArrayBuffer>() {
        return decode_bytes(&Uint8Array::new(buffer).to_vec(), preprocessor, None);
    }
    if let Some(blob) = value.dyn_ref::<Blob>() {
        let name = value.dyn_ref::<File>().map(File::name);
        let buffer = JsFuture::from(blob.array_buffer()).await?;
        return decode_bytes(&Uint8Array::new(&buffer).to_vec(), preprocessor, name.as_deref());
    }
    if let Some(image_data) = value.dyn_ref::<ImageData>() {
        return from_image_data(image_data);
    }
    if let Some(bitmap) = value.dyn_ref::<ImageBitmap>() {
        return draw(value, bitmap.width(), bitmap.height());
    }
    if let Some(element) = value.dyn_ref::<HtmlImageElement>() {
        if !element.complete() || element.natural_width() == 0 {
            JsFuture::from(element.decode())
                .await
                .map_err(|_| js_error(format!("the image element could not be decoded (src: {})", element.src())))?;
        }
        return draw(value, element.natural_width(), element.natural_height());
    }
    if let Some(canvas) = value.dyn_ref::<HtmlCanvasElement>() {
        return draw(value, canvas.width(), canvas.height());
    }
    if let Some(canvas) = value.dyn_ref::<OffscreenCanvas>() {
        return draw(value, canvas.width(), canvas.height());
    }
    Err(js_error(format!("expected an image as {IMAGE_TYPES}, got {}", describe_value(value))))
}

fn decode_bytes(bytes: &[u8], preprocessor: &Preprocessor, name: Option<&str>) -> Result<DecodedImage, JsValue> {
    preprocessor.decode(bytes).map_err(|e| match name {
        Some(name) => js_error(format!("{name}: {e}")),
        None => js_error(e),
    })
}

fn from_image_data(image_data: &ImageData) -> Result<DecodedImage, JsValue> {
    DecodedImage::from_rgba8(image_data.width(), image_data.height(), image_data.data().0).map_err(js_error)
}

/// Draws a drawable image source onto an `OffscreenCanvas` and reads its RGBA pixels.
fn draw(source: &JsValue, width: u32, height: u32) -> Result<DecodedImage, JsValue> {
    if width == 0 || height == 0 {
        return Err(js_error(format!("the image has zero size ({width}x{height}); wait until it has loaded")));
    }
    let has_offscreen_canvas = js_sys::Reflect::has(&js_sys::global(), &JsValue::from_str("OffscreenCanvas")).unwrap_or(false);
    if !has_offscreen_canvas {
        return Err(js_error(
            "reading pixels from this image type needs OffscreenCanvas, which this environment lacks; \
             pass the encoded image as a Blob, Uint8Array or ArrayBuffer instead",
        ));
    }
    let canvas = OffscreenCanvas::new(width, height)?;
    let context = canvas
        .get_context("2d")?
        .ok_or_else(|| js_error("could not create a 2D context on an OffscreenCanvas to read the image's pixels"))?
        .dyn_into::<web_sys::OffscreenCanvasRenderingContext2d>()?;

    // drawImage accepts every CanvasImageSource, but web-sys binds it once per type. All the
    // bindings call the same JavaScript method, so the ImageBitmap one serves every type.
    context.draw_image_with_image_bitmap(source.unchecked_ref::<ImageBitmap>(), 0.0, 0.0)?;
    let image_data = context.get_image_data(0.0, 0.0, width as f64, height as f64)?;
    from_image_data(&image_data)
}
