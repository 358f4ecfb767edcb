//! Image decoding and preprocessing that reproduces open_clip's eval transform.
//!
//! open_clip 3.3.0 turns an image into model input with
//! `image_transform_v2(PreprocessCfg, is_train=False)`. For the default `resize_mode` "shortest"
//! that is torchvision `Resize(size, BICUBIC)`, which scales the shortest side to `size` and the
//! other side to `int(size * long / short)`. Then come `CenterCrop(size)`, with the offset
//! `int(round((h - size) / 2))` rounded half to even as Python does, `convert("RGB")`,
//! `ToTensor` and `Normalize(mean, std)`, all on a PIL image. This module does the same from
//! encoded bytes and returns a CHW `f32` tensor.
//!
//! # Parity with open_clip
//!
//! The resize reproduces Pillow's fixed-point resampling exactly (see `resize.rs`), including
//! the rules that depend on the mode Pillow opens a file in:
//!
//! * palette images (PNG colour type 3, GIF and BMP with a colour palette) and 1-bit PNGs are
//!   resized with nearest neighbour, because Pillow forces that for modes "P" and "1";
//! * images with an alpha channel (PNG gray+alpha and RGBA, WebP with alpha, BMP with an alpha
//!   mask) are resized with premultiplied alpha and the alpha is then dropped, like Pillow's
//!   RGBA resize followed by `convert("RGB")`. Transparency of palette, gray and RGB images
//!   (PNG `tRNS`, GIF transparent index) is ignored, like `convert("RGB")` does, so a
//!   transparent pixel shows the colour stored under it;
//! * 16-bit PNG samples keep their high byte.
//!
//! For PNG, GIF, BMP and lossless WebP input the output equals open_clip's tensor bit for bit
//! (tests/preprocess.rs checks this on the fixtures from scripts/make_preprocess_fixtures.py).
//! JPEG input goes through zune-jpeg, whose chroma upsampling and rounding differ from
//! libjpeg-turbo's. On the test photos that costs up to 4 levels out of 255 (0.2 on average) for
//! JPEGs with 4:2:0 chroma subsampling, the usual camera format, and 1 level without
//! subsampling. The lossy WebP test image matches libwebp exactly.
//!
//! Deliberate differences from open_clip + PIL:
//!
//! * **EXIF orientation is applied by default.** Phones store photos sideways and record the
//!   rotation in the EXIF orientation tag; PIL's `Image.open` ignores that tag, so open_clip sees
//!   such photos rotated. Here they are turned upright first, which is what a user expects and
//!   what `PIL.ImageOps.exif_transpose` does. Set [`DecodeOptions::apply_exif_orientation`] to
//!   `false` to get open_clip's behaviour.
//! * **16-bit grayscale PNGs** are reduced to their high byte. PIL opens them in mode "I;16" and
//!   `convert("RGB")` clips every value above 255, which turns nearly every such image white.
//! * **CMYK JPEGs** are converted to RGB while decoding and then resized; PIL resizes the CMYK
//!   samples and converts afterwards. The results differ by a few levels.
//! * In "longest" mode, a resized side that rounds to 0 pixels becomes 1 pixel (PIL raises an
//!   error), and palette images are padded with the gray `fill_color` (PIL pads them with
//!   palette index `fill_color`).
//! * GIFs whose first frame does not cover the whole canvas get transparent black outside the
//!   frame, which becomes black; PIL fills that area with palette entry 0 or the transparent
//!   entry's colour.
//!
//! # Limits
//!
//! Images above [`DecodeOptions::max_pixels`] (default [`DEFAULT_MAX_PIXELS`], 100 megapixels)
//! are refused before their pixels are decoded. Damaged or unsupported input is reported as a
//! [`PreprocessError`] that names the problem; the tests feed truncated files and random bytes.
//! Only the pixels that survive the crop are resampled, so a 60000x1 strip costs no more than
//! a small photo (PIL would build a 13-million-pixel-wide intermediate image).
//!
//! Apart from [`Preprocessor::preprocess_file`], which reads the file system, nothing here is
//! platform-specific: decoding works from bytes, so the module is meant to build for `wasm32`.

mod decode;
mod resize;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use decode::{Format, SamplingRule};
use resize::{Filter, Pixels, Window};

/// open_clip's `OPENAI_DATASET_MEAN`, the default normalization mean (per RGB channel).
pub const OPENAI_DATASET_MEAN: [f32; 3] = [
    0.48145466_f64 as f32,
    0.4578275_f64 as f32,
    0.40821073_f64 as f32,
];
/// open_clip's `OPENAI_DATASET_STD`, the default normalization standard deviation.
pub const OPENAI_DATASET_STD: [f32; 3] = [
    0.26862954_f64 as f32,
    0.26130258_f64 as f32,
    0.27577711_f64 as f32,
];
/// Default for [`DecodeOptions::max_pixels`]: 100 megapixels, enough for nearly every camera.
/// Decoding an image of that size takes about 300 MB (8-bit RGB) to 800 MB (16-bit RGBA PNG).
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;
/// The input formats, as listed in error messages.
pub const SUPPORTED_FORMATS: &str = "PNG, JPEG, WebP, GIF (first frame) and BMP";

/// Output height and width in pixels (open_clip's `size`, an int or `[height, width]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageSize {
    /// Height in pixels.
    pub height: u32,
    /// Width in pixels.
    pub width: u32,
}

impl ImageSize {
    /// Returns a `size` x `size` square.
    pub fn square(size: u32) -> Self {
        ImageSize {
            height: size,
            width: size,
        }
    }

    /// Returns whether height and width are equal.
    pub fn is_square(&self) -> bool {
        self.height == self.width
    }
}

/// Resampling filter (open_clip's `interpolation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interpolation {
    /// "bicubic" (the default) and "random" (open_clip maps "random" to bicubic for inference).
    Bicubic,
    /// "bilinear".
    Bilinear,
}

/// Fitting of the image to the output size (open_clip's `resize_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeMode {
    /// "shortest" (the default): scale so the image covers the output, then crop the centre.
    Shortest,
    /// "longest": scale so the whole image fits, then pad the centred image with `fill_color`.
    Longest,
    /// "squash": scale each side to the output size, ignoring the aspect ratio.
    Squash,
}

/// open_clip's `PreprocessCfg`, deserialized from the `preprocess_cfg` object of an
/// `open_clip_config.json`. Missing or `null` keys take open_clip's defaults and unknown keys
/// are ignored, as open_clip does. An invalid value is an error that names the key, the value
/// and the accepted values.
///
/// With a non-square `size` and `resize_mode` "shortest", open_clip ignores `interpolation` and
/// resizes with bicubic, and so does this module.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "RawConfig")]
pub struct PreprocessConfig {
    /// Output size (default 224x224).
    pub size: ImageSize,
    /// Per-channel mean subtracted after scaling pixels to [0, 1].
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by after subtracting the mean.
    pub std: [f32; 3],
    /// Resampling filter (default bicubic).
    pub interpolation: Interpolation,
    /// Resize mode (default "shortest").
    pub resize_mode: ResizeMode,
    /// Gray level (0-255) of the padding in "longest" mode.
    pub fill_color: u8,
}

impl Default for PreprocessConfig {
    fn default() -> Self {
        PreprocessConfig {
            size: ImageSize::square(224),
            mean: OPENAI_DATASET_MEAN,
            std: OPENAI_DATASET_STD,
            interpolation: Interpolation::Bicubic,
            resize_mode: ResizeMode::Shortest,
            fill_color: 0,
        }
    }
}

impl PreprocessConfig {
    /// Returns the default configuration with a square output of `size` pixels.
    pub fn square(size: u32) -> Self {
        PreprocessConfig {
            size: ImageSize::square(size),
            ..Default::default()
        }
    }

    /// Checks what the types cannot: sizes from 1 to 16384, finite mean, finite non-zero std.
    pub fn validate(&self) -> Result<(), PreprocessError> {
        let bad = |msg: String| Err(PreprocessError::Config(msg));
        if self.size.height == 0 || self.size.width == 0 {
            return bad(format!(
                "size must be positive, got {}x{} (height x width)",
                self.size.height, self.size.width
            ));
        }
        if self.size.height > MAX_OUTPUT_SIDE || self.size.width > MAX_OUTPUT_SIDE {
            return bad(format!(
                "size {}x{} (height x width) is larger than {MAX_OUTPUT_SIDE} pixels per side; \
                 CLIP-style models use 224 to 1024",
                self.size.height, self.size.width
            ));
        }
        if self.mean.iter().any(|m| !m.is_finite()) {
            return bad(format!("mean must be finite, got {:?}", self.mean));
        }
        if self.std.iter().any(|s| !s.is_finite() || *s == 0.0) {
            return bad(format!(
                "std must be finite and non-zero, got {:?}",
                self.std
            ));
        }
        Ok(())
    }

    /// Returns the shape of one preprocessed image: `[3, height, width]`.
    pub fn output_shape(&self) -> [usize; 3] {
        [3, self.size.height as usize, self.size.width as usize]
    }
}

/// `preprocess_cfg` as written in JSON, before validation.
#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    size: Option<RawSize>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    mean: Option<RawTriple>,
    #[serde(default)]
    std: Option<RawTriple>,
    #[serde(default)]
    interpolation: Option<String>,
    #[serde(default)]
    resize_mode: Option<String>,
    #[serde(default)]
    fill_color: Option<i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSize {
    One(u32),
    List(Vec<u32>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawTriple {
    One(f64),
    List(Vec<f64>),
}

fn triple(
    key: &str,
    value: Option<RawTriple>,
    default: [f32; 3],
) -> Result<[f32; 3], PreprocessError> {
    // Values go through f64 first, as Python floats do before torch stores them as float32.
    match value {
        None => Ok(default),
        Some(RawTriple::One(v)) => Ok([v as f32; 3]),
        Some(RawTriple::List(v)) if v.len() == 3 => Ok([v[0] as f32, v[1] as f32, v[2] as f32]),
        Some(RawTriple::List(v)) => Err(PreprocessError::Config(format!(
            "{key} must be one number or a list of 3 (one per RGB channel), got a list of {}",
            v.len()
        ))),
    }
}

impl TryFrom<RawConfig> for PreprocessConfig {
    type Error = PreprocessError;

    fn try_from(raw: RawConfig) -> Result<Self, Self::Error> {
        let defaults = PreprocessConfig::default();
        let size = match raw.size {
            None => defaults.size,
            Some(RawSize::One(s)) => ImageSize::square(s),
            Some(RawSize::List(v)) if v.len() == 2 => ImageSize {
                height: v[0],
                width: v[1],
            },
            Some(RawSize::List(v)) => {
                return Err(PreprocessError::Config(format!(
                    "size must be an integer or [height, width], got a list of {} values",
                    v.len()
                )))
            }
        };
        if let Some(mode) = raw.mode.as_deref() {
            if mode != "RGB" {
                return Err(PreprocessError::Config(format!(
                    "mode \"{mode}\" is not supported; open_clip and this module support \
                     only \"RGB\""
                )));
            }
        }
        let interpolation = match raw.interpolation.as_deref() {
            None | Some("bicubic") | Some("random") => Interpolation::Bicubic,
            Some("bilinear") => Interpolation::Bilinear,
            Some(other) => {
                return Err(PreprocessError::Config(format!(
                    "interpolation \"{other}\" is not supported; use \"bicubic\", \"bilinear\" \
                     or \"random\" (bicubic at inference)"
                )))
            }
        };
        let resize_mode = match raw.resize_mode.as_deref() {
            None | Some("shortest") => ResizeMode::Shortest,
            Some("longest") => ResizeMode::Longest,
            Some("squash") => ResizeMode::Squash,
            Some(other) => {
                return Err(PreprocessError::Config(format!(
                    "resize_mode \"{other}\" is not supported; use \"shortest\", \"longest\" \
                     or \"squash\""
                )))
            }
        };
        let fill_color = match raw.fill_color {
            None => 0,
            Some(v) => u8::try_from(v).map_err(|_| {
                PreprocessError::Config(format!("fill_color must be a gray level 0-255, got {v}"))
            })?,
        };
        let config = PreprocessConfig {
            size,
            mean: triple("mean", raw.mean, defaults.mean)?,
            std: triple("std", raw.std, defaults.std)?,
            interpolation,
            resize_mode,
            fill_color,
        };
        config.validate()?;
        Ok(config)
    }
}

/// Options for turning bytes into pixels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Whether to rotate or flip the image according to its EXIF orientation tag (JPEG, PNG
    /// `eXIf`, WebP). Default `true`. open_clip does not do this, so set `false` for parity.
    pub apply_exif_orientation: bool,
    /// Maximum number of pixels; larger images are rejected before their pixels are decoded.
    /// Default [`DEFAULT_MAX_PIXELS`].
    pub max_pixels: u64,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            apply_exif_orientation: true,
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

/// A decoded image: interleaved 8-bit gray, gray+alpha, RGB or RGBA, kept in the channel layout
/// Pillow would use so that resizing follows Pillow's rules for that layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedImage {
    width: u32,
    height: u32,
    channels: usize,
    data: Vec<u8>,
    sampling: SamplingRule,
    format: Option<Format>,
}

impl DecodedImage {
    /// Wraps interleaved 8-bit RGB pixels (row-major, `width * height * 3` bytes).
    pub fn from_rgb8(width: u32, height: u32, data: Vec<u8>) -> Result<Self, PreprocessError> {
        Self::from_raw(width, height, 3, data)
    }

    /// Wraps interleaved 8-bit RGBA pixels with straight (not premultiplied) alpha, e.g. a
    /// browser's `ImageData`. They are resized with premultiplied alpha and the alpha is then
    /// dropped, as PIL does with an RGBA image.
    pub fn from_rgba8(width: u32, height: u32, data: Vec<u8>) -> Result<Self, PreprocessError> {
        Self::from_raw(width, height, 4, data)
    }

    fn from_raw(
        width: u32,
        height: u32,
        channels: usize,
        data: Vec<u8>,
    ) -> Result<Self, PreprocessError> {
        if width == 0 || height == 0 {
            return Err(PreprocessError::ZeroSize {
                format: "raw pixel",
                width,
                height,
            });
        }
        let expected = (width as usize)
            .checked_mul(height as usize)
            .and_then(|n| n.checked_mul(channels));
        if expected != Some(data.len()) {
            return Err(PreprocessError::PixelBuffer {
                width,
                height,
                channels,
                expected: expected.unwrap_or(usize::MAX),
                actual: data.len(),
            });
        }
        Ok(DecodedImage {
            width,
            height,
            channels,
            data,
            sampling: SamplingRule::Filtered,
            format: None,
        })
    }

    /// Returns the width in pixels, after any EXIF rotation.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Returns the height in pixels, after any EXIF rotation.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Returns whether the pixels carry an alpha channel, which changes how they are resized.
    pub fn has_alpha(&self) -> bool {
        self.channels == 2 || self.channels == 4
    }

    /// Returns the name of the source format ("PNG", "JPEG", ...), or `None` for raw pixels.
    pub fn format_name(&self) -> Option<&'static str> {
        self.format.map(Format::name)
    }

    /// Returns the pixels as interleaved RGB with alpha dropped and gray replicated, like PIL's
    /// `convert("RGB")`.
    pub fn to_rgb8(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() / self.channels * 3);
        for px in self.data.chunks_exact(self.channels) {
            match self.channels {
                1 | 2 => out.extend_from_slice(&[px[0]; 3]),
                _ => out.extend_from_slice(&px[..3]),
            }
        }
        out
    }
}

/// One preprocessed image: normalized `f32` values in CHW order, shape `[3, height, width]`.
#[derive(Clone, Debug, PartialEq)]
pub struct PreprocessedImage {
    /// The values, channel-major: all red, then all green, then all blue, each plane row by row.
    pub data: Vec<f32>,
    /// `[3, height, width]`.
    pub shape: [usize; 3],
}

/// A batch of preprocessed images: NCHW order, shape `[n, 3, height, width]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageBatch {
    /// The images' CHW values, one after another in input order.
    pub data: Vec<f32>,
    /// `[n, 3, height, width]`.
    pub shape: [usize; 4],
}

/// Decodes an image from its encoded bytes (PNG, JPEG, WebP, GIF first frame, BMP).
pub fn decode_image(
    bytes: &[u8],
    options: &DecodeOptions,
) -> Result<DecodedImage, PreprocessError> {
    decode::decode(bytes, options)
}

/// A validated [`PreprocessConfig`] with its [`DecodeOptions`].
///
/// ```no_run
/// use coca_wgpu::preprocess::{PreprocessConfig, Preprocessor};
/// let pre = Preprocessor::new(PreprocessConfig::square(224))?;
/// let image = pre.preprocess_file("cat.jpg")?;
/// assert_eq!(image.shape, [3, 224, 224]);
/// # Ok::<(), coca_wgpu::preprocess::PreprocessError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Preprocessor {
    config: PreprocessConfig,
    options: DecodeOptions,
}

impl Preprocessor {
    /// Validates `config` and pairs it with the default [`DecodeOptions`].
    pub fn new(config: PreprocessConfig) -> Result<Self, PreprocessError> {
        config.validate()?;
        Ok(Preprocessor {
            config,
            options: DecodeOptions::default(),
        })
    }

    /// Replaces the decode options.
    pub fn with_options(mut self, options: DecodeOptions) -> Self {
        self.options = options;
        self
    }

    /// Returns the preprocessing config.
    pub fn config(&self) -> &PreprocessConfig {
        &self.config
    }

    /// Returns the decode options.
    pub fn options(&self) -> &DecodeOptions {
        &self.options
    }

    /// Decodes bytes with this preprocessor's options.
    pub fn decode(&self, bytes: &[u8]) -> Result<DecodedImage, PreprocessError> {
        decode::decode(bytes, &self.options)
    }

    /// Resizes, crops or pads, and normalizes a decoded image.
    pub fn preprocess(&self, image: &DecodedImage) -> PreprocessedImage {
        let shape = self.config.output_shape();
        let mut data = vec![0.0; shape.iter().product()];
        self.preprocess_into(image, &mut data);
        PreprocessedImage { data, shape }
    }

    /// Decodes and preprocesses encoded bytes.
    pub fn preprocess_bytes(&self, bytes: &[u8]) -> Result<PreprocessedImage, PreprocessError> {
        Ok(self.preprocess(&self.decode(bytes)?))
    }

    /// Reads, decodes and preprocesses an image file.
    pub fn preprocess_file(
        &self,
        path: impl AsRef<Path>,
    ) -> Result<PreprocessedImage, PreprocessError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|error| PreprocessError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        self.preprocess_bytes(&bytes).map_err(|e| match e {
            PreprocessError::Io { .. } => e,
            other => PreprocessError::InFile {
                path: path.to_path_buf(),
                error: Box::new(other),
            },
        })
    }

    /// Decodes and preprocesses several encoded images into one NCHW batch. An error names the
    /// index of the image that failed.
    pub fn preprocess_batch<B: AsRef<[u8]>>(
        &self,
        images: &[B],
    ) -> Result<ImageBatch, PreprocessError> {
        let [c, h, w] = self.config.output_shape();
        let per_image = c * h * w;
        let mut data = vec![0.0; per_image * images.len()];
        for (index, (bytes, out)) in images
            .iter()
            .zip(data.chunks_exact_mut(per_image))
            .enumerate()
        {
            let image = self
                .decode(bytes.as_ref())
                .map_err(|e| PreprocessError::InBatch {
                    index,
                    error: Box::new(e),
                })?;
            self.preprocess_into(&image, out);
        }
        Ok(ImageBatch {
            data,
            shape: [images.len(), c, h, w],
        })
    }

    /// Preprocesses already decoded images into one NCHW batch.
    pub fn preprocess_decoded_batch(&self, images: &[DecodedImage]) -> ImageBatch {
        let [c, h, w] = self.config.output_shape();
        let per_image = c * h * w;
        let mut data = vec![0.0; per_image * images.len()];
        for (image, out) in images.iter().zip(data.chunks_exact_mut(per_image)) {
            self.preprocess_into(image, out);
        }
        ImageBatch {
            data,
            shape: [images.len(), c, h, w],
        }
    }

    fn preprocess_into(&self, image: &DecodedImage, out: &mut [f32]) {
        let plan = Plan::new(&self.config, image);
        let pixels = plan.render(image);
        normalize_into(&plan, &pixels, image.channels, &self.config, out);
    }
}

/// Largest accepted output side; a typo such as `"size": 2240000` would otherwise try to
/// allocate terabytes.
const MAX_OUTPUT_SIDE: u32 = 16384;

/// Largest side of the (virtual) resized image; see `Plan::new`.
const MAX_RESIZED_SIDE: u64 = 1 << 30;

/// Geometry of one image's trip through the transform, in torchvision's terms. The source is
/// resized to `resized_w` x `resized_h`, then the output is the `out_w` x `out_h` window whose
/// top-left corner is at (`off_x`, `off_y`) in the resized image. Negative offsets and
/// positions past the resized image are padding.
struct Plan {
    resized_w: usize,
    resized_h: usize,
    out_w: usize,
    out_h: usize,
    off_x: i64,
    off_y: i64,
    filter: Filter,
}

impl Plan {
    fn new(config: &PreprocessConfig, image: &DecodedImage) -> Plan {
        let (w, h) = (u64::from(image.width), u64::from(image.height));
        let (tw, th) = (u64::from(config.size.width), u64::from(config.size.height));
        let configured = match config.interpolation {
            Interpolation::Bicubic => Filter::Bicubic,
            Interpolation::Bilinear => Filter::Bilinear,
        };

        // open_clip's ResizeKeepRatio: scale both sides by one ratio, Python-round each.
        let keep_ratio = |longest: bool| {
            let ratio_h = h as f64 / th as f64;
            let ratio_w = w as f64 / tw as f64;
            let ratio = if longest {
                ratio_h.max(ratio_w)
            } else {
                ratio_h.min(ratio_w)
            };
            let side = |x: u64| (resize::round_half_even(x as f64 / ratio) as u64).max(1);
            (side(w), side(h))
        };

        let ((rw, rh), filter) = match config.resize_mode {
            ResizeMode::Shortest if config.size.is_square() => {
                // torchvision Resize(int): shorter side to `size`, longer int(size * long / short).
                let (short, long) = if w <= h { (w, h) } else { (h, w) };
                let new_long = ((th * long) as f64 / short as f64) as u64;
                let dims = if w <= h {
                    (th, new_long)
                } else {
                    (new_long, th)
                };
                (dims, configured)
            }
            // open_clip uses ResizeKeepRatio with its default (bicubic) interpolation here.
            ResizeMode::Shortest => (keep_ratio(false), Filter::Bicubic),
            ResizeMode::Longest => (keep_ratio(true), configured),
            ResizeMode::Squash => ((tw, th), configured),
        };

        // A 1-pixel-high panorama can ask for a resized width that 32-bit targets cannot index.
        // PIL cannot allocate such an image either, so the cap changes no result PIL can produce.
        let (rw, rh) = (rw.min(MAX_RESIZED_SIDE), rh.min(MAX_RESIZED_SIDE));

        // CenterCrop / CenterCropOrPad: pad (t - r) // 2 before when too small, else crop at
        // round((r - t) / 2).
        let offset = |r: u64, t: u64| -> i64 {
            if t > r {
                -(((t - r) / 2) as i64)
            } else {
                resize::half_round_even(r - t) as i64
            }
        };
        Plan {
            resized_w: rw as usize,
            resized_h: rh as usize,
            out_w: tw as usize,
            out_h: th as usize,
            off_x: offset(rw, tw),
            off_y: offset(rh, th),
            filter,
        }
    }

    /// Returns the part of the resized image that lies inside the output window.
    fn window(&self) -> Window {
        let span = |off: i64, out: usize, resized: usize| {
            let start = off.max(0) as usize;
            let end = ((off + out as i64).max(0) as usize).min(resized);
            (start.min(end), end)
        };
        let (x0, x1) = span(self.off_x, self.out_w, self.resized_w);
        let (y0, y1) = span(self.off_y, self.out_h, self.resized_h);
        Window { x0, x1, y0, y1 }
    }

    /// Returns the pixels of the window, interleaved with the image's channel count and with
    /// premultiplied alpha already undone.
    fn render(&self, image: &DecodedImage) -> Vec<u8> {
        let window = self.window();
        let ch = image.channels;
        let (w, h) = (image.width as usize, image.height as usize);
        if window.x0 == window.x1 || window.y0 == window.y1 {
            return Vec::new();
        }
        if (self.resized_w, self.resized_h) == (w, h) {
            // No resize: Pillow returns the image unchanged (no premultiplication round trip).
            let mut out =
                Vec::with_capacity((window.x1 - window.x0) * (window.y1 - window.y0) * ch);
            for y in window.y0..window.y1 {
                out.extend_from_slice(
                    &image.data[(y * w + window.x0) * ch..(y * w + window.x1) * ch],
                );
            }
            return out;
        }
        let sampling = image.sampling.with_filter(self.filter);
        let premultiply = image.has_alpha() && sampling != resize::Sampling::Nearest;
        let src = Pixels {
            width: w,
            height: h,
            channels: ch,
            data: &image.data,
        };
        let mut out = resize::resize_window(
            &src,
            self.resized_w,
            self.resized_h,
            window,
            sampling,
            premultiply,
        );
        if premultiply {
            resize::unpremultiply_in_place(&mut out, ch);
        }
        out
    }
}

/// Applies ToTensor and Normalize into CHW: `(v / 255 - mean) / std` in `f32`, as torch
/// computes it. Padding gets the value of `fill_color`.
fn normalize_into(
    plan: &Plan,
    pixels: &[u8],
    channels: usize,
    config: &PreprocessConfig,
    out: &mut [f32],
) {
    let mut lut = [[0.0f32; 256]; 3];
    for (c, table) in lut.iter_mut().enumerate() {
        for (v, entry) in table.iter_mut().enumerate() {
            *entry = (v as f32 / 255.0 - config.mean[c]) / config.std[c];
        }
    }
    let window = plan.window();
    let win_w = window.x1 - window.x0;
    let plane = plan.out_w * plan.out_h;
    let fill = usize::from(config.fill_color);
    for oy in 0..plan.out_h {
        let ry = oy as i64 + plan.off_y;
        let row_inside = ry >= window.y0 as i64 && ry < window.y1 as i64;
        for ox in 0..plan.out_w {
            let rx = ox as i64 + plan.off_x;
            let i = oy * plan.out_w + ox;
            if row_inside && rx >= window.x0 as i64 && rx < window.x1 as i64 {
                let p = ((ry as usize - window.y0) * win_w + (rx as usize - window.x0)) * channels;
                let px = &pixels[p..p + channels];
                let rgb = if channels <= 2 {
                    [px[0]; 3]
                } else {
                    [px[0], px[1], px[2]]
                };
                for c in 0..3 {
                    out[c * plane + i] = lut[c][usize::from(rgb[c])];
                }
            } else {
                for c in 0..3 {
                    out[c * plane + i] = lut[c][fill];
                }
            }
        }
    }
}

/// Error from decoding or preprocessing an image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PreprocessError {
    /// The input has no bytes.
    #[error(
        "the image data is empty (0 bytes); check that the file was read or downloaded completely"
    )]
    Empty,
    /// The bytes are not in one of the [`SUPPORTED_FORMATS`].
    #[error(
        "unsupported image format: {found}; supported formats are {SUPPORTED_FORMATS}; \
         convert the image to one of them first"
    )]
    UnsupportedFormat {
        /// The format recognized from the first bytes (e.g. "HEIF/HEIC", "TIFF"), or "unknown"
        /// with those bytes in hex.
        found: String,
    },
    /// The file is damaged or ends early.
    #[error("corrupt or truncated {format} image: {detail}; re-export or re-download the file")]
    Corrupt {
        /// Name of the format, e.g. "PNG".
        format: &'static str,
        /// The decoder's description of the problem.
        detail: String,
    },
    /// The file is valid but uses a feature the decoder does not implement.
    #[error(
        "this {format} file uses a feature the decoder does not support ({detail}); \
         re-save it as an ordinary 8-bit PNG or baseline JPEG"
    )]
    UnsupportedFeature {
        /// Name of the format, e.g. "JPEG".
        format: &'static str,
        /// The decoder's description of the feature.
        detail: String,
    },
    /// The image has no pixels.
    #[error(
        "the {format} image has zero size ({width}x{height} pixels), so there is nothing to \
         preprocess"
    )]
    ZeroSize {
        /// Name of the format, or "raw pixel" for [`DecodedImage::from_rgb8`] and
        /// [`DecodedImage::from_rgba8`].
        format: &'static str,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// The image has more pixels than [`DecodeOptions::max_pixels`].
    #[error(
        "the image is {width}x{height} ({} pixels), more than the limit of {limit} pixels; \
         downscale it first or raise DecodeOptions::max_pixels",
        u64::from(*.width) * u64::from(*.height)
    )]
    TooLarge {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// The pixel limit in force.
        limit: u64,
    },
    /// A raw pixel buffer's length does not match its width, height and channel count.
    #[error(
        "a {width}x{height} image with {channels} channels needs {expected} bytes of pixels, \
         but the buffer holds {actual}"
    )]
    PixelBuffer {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Channels per pixel: 3 for RGB, 4 for RGBA.
        channels: usize,
        /// Bytes that width, height and channels require (`usize::MAX` on overflow).
        expected: usize,
        /// Bytes in the buffer.
        actual: usize,
    },
    /// A `preprocess_cfg` value is invalid; the message names the key and the accepted values.
    #[error("invalid preprocess_cfg: {0}")]
    Config(String),
    /// Reading an image file failed.
    #[error("cannot read image file {}: {error}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        error: std::io::Error,
    },
    /// Decoding the image file at `path` failed.
    #[error("{}: {error}", .path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// The decoding error.
        error: Box<PreprocessError>,
    },
    /// Decoding one image of a batch failed.
    #[error("image {index} of the batch (counting from 0): {error}")]
    InBatch {
        /// Position of the image in the batch, from 0.
        index: usize,
        /// The decoding error.
        error: Box<PreprocessError>,
    },
}
