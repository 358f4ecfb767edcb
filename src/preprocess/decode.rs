//! Decoding from bytes with the `image` crate, plus the header reading needed to know which mode
//! Pillow would open the file in, because that mode decides how Pillow resizes it.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits};

use super::resize::Sampling;
use super::{DecodeOptions, DecodedImage, PreprocessError};

/// The formats this module decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Png,
    Jpeg,
    Gif,
    WebP,
    Bmp,
}

impl Format {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Format::Png => "PNG",
            Format::Jpeg => "JPEG",
            Format::Gif => "GIF",
            Format::WebP => "WebP",
            Format::Bmp => "BMP",
        }
    }

    fn image_format(self) -> ImageFormat {
        match self {
            Format::Png => ImageFormat::Png,
            Format::Jpeg => ImageFormat::Jpeg,
            Format::Gif => ImageFormat::Gif,
            Format::WebP => ImageFormat::WebP,
            Format::Bmp => ImageFormat::Bmp,
        }
    }
}

/// Identifies the format from the first bytes. Common unsupported formats are named in the error,
/// so the user learns what the file is.
fn sniff(bytes: &[u8]) -> Result<Format, PreprocessError> {
    let starts = |sig: &[u8]| bytes.starts_with(sig);
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Ok(Format::Png);
    }
    if starts(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Format::Jpeg);
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Ok(Format::Gif);
    }
    if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Ok(Format::WebP);
    }
    if starts(b"BM") {
        return Ok(Format::Bmp);
    }
    let found = if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        match &bytes[8..12] {
            b"avif" | b"avis" => "AVIF".to_string(),
            b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"mif1" | b"msf1" => {
                "HEIF/HEIC".to_string()
            }
            brand => format!(
                "an ISO media file (brand \"{}\"), probably video or HEIF",
                String::from_utf8_lossy(brand)
            ),
        }
    } else if starts(&[0xFF, 0x0A]) || starts(b"\0\0\0\x0CJXL \r\n\x87\n") {
        "JPEG XL".to_string()
    } else if starts(b"%PDF") {
        "PDF".to_string()
    } else if starts(b"8BPS") {
        "Photoshop PSD".to_string()
    } else if looks_like_svg(bytes) {
        "SVG (vector graphics)".to_string()
    } else if let Ok(format) = image::guess_format(bytes) {
        format!("{format:?}").to_uppercase()
    } else {
        let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("unknown (first bytes: {})", head.join(" "))
    };
    Err(PreprocessError::UnsupportedFormat { found })
}

fn looks_like_svg(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(512)];
    let text = String::from_utf8_lossy(head);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    text.starts_with("<svg") || (text.starts_with("<?xml") && text.contains("<svg"))
}

/// Properties of the mode Pillow would open this image in, read from the file header.
struct PilTraits {
    /// Pillow opens the image in mode "P" or "1" and therefore resizes it with nearest neighbour.
    nearest: bool,
    /// Pillow opens the image with a real alpha channel (mode "LA" or "RGBA"). Otherwise any
    /// alpha from the decoder (PNG tRNS, GIF transparency) is dropped, because Pillow's
    /// `convert("RGB")` ignores the transparency of "L", "RGB" and "P" images.
    alpha: bool,
}

fn corrupt(format: Format, detail: impl Into<String>) -> PreprocessError {
    PreprocessError::Corrupt {
        format: format.name(),
        detail: detail.into(),
    }
}

fn png_traits(bytes: &[u8]) -> Result<PilTraits, PreprocessError> {
    if bytes.len() < 26 || &bytes[12..16] != b"IHDR" {
        return Err(corrupt(
            Format::Png,
            "the IHDR header chunk is missing or cut off",
        ));
    }
    let bit_depth = bytes[24];
    let color_type = bytes[25];
    Ok(PilTraits {
        nearest: color_type == 3 || (color_type == 0 && bit_depth == 1),
        alpha: color_type == 4 || color_type == 6,
    })
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads the first frame's palette: the local one if present, else the global one. Pillow opens
/// the frame in mode "L" when that palette is absent or maps every index i to gray (i, i, i),
/// and in mode "P" otherwise.
fn gif_traits(bytes: &[u8]) -> Result<PilTraits, PreprocessError> {
    let cut = || corrupt(Format::Gif, "the file ends before the first frame's header");
    let flags = *bytes.get(10).ok_or_else(cut)?;
    let mut pos = 13;
    let mut palette: Option<&[u8]> = None;
    if flags & 0x80 != 0 {
        let len = 3usize << ((flags & 7) + 1);
        palette = Some(bytes.get(pos..pos + len).ok_or_else(cut)?);
        pos += len;
    }
    loop {
        match *bytes.get(pos).ok_or_else(cut)? {
            0x21 => {
                // Extension: label byte, then data sub-blocks ending with a zero length.
                pos += 2;
                loop {
                    let len = usize::from(*bytes.get(pos).ok_or_else(cut)?);
                    pos += 1 + len;
                    if len == 0 {
                        break;
                    }
                }
            }
            0x2C => {
                let local_flags = *bytes.get(pos + 9).ok_or_else(cut)?;
                if local_flags & 0x80 != 0 {
                    let len = 3usize << ((local_flags & 7) + 1);
                    palette = Some(bytes.get(pos + 10..pos + 10 + len).ok_or_else(cut)?);
                }
                break;
            }
            0x3B => return Err(corrupt(Format::Gif, "the file contains no image frame")),
            other => {
                return Err(corrupt(
                    Format::Gif,
                    format!("unexpected block type 0x{other:02x}"),
                ))
            }
        }
    }
    let gray = palette.is_none_or(|p| {
        p.chunks_exact(3)
            .enumerate()
            .all(|(i, c)| c.iter().all(|&v| usize::from(v) == i))
    });
    Ok(PilTraits {
        nearest: !gray,
        alpha: false,
    })
}

/// Reads the palette of a BMP. Pillow opens BMPs of up to 8 bits per pixel in mode "P", but a
/// palette that maps index i to gray (i, i, i) gives mode "L" ("1" for black and white only).
/// Modes "P" and "1" are resized with nearest neighbour. 32-bit BMPs with an alpha bit mask open
/// as "RGBA".
fn bmp_traits(bytes: &[u8], decoder_alpha: bool) -> Result<PilTraits, PreprocessError> {
    let cut = || corrupt(Format::Bmp, "the file ends inside its header");
    let header_size = le32(bytes, 14).ok_or_else(cut)? as usize;
    let (bits, colors, entry_size) = if header_size == 12 {
        let bits = le16(bytes, 24).ok_or_else(cut)?;
        (bits, 0u32, 3usize)
    } else {
        let bits = le16(bytes, 28).ok_or_else(cut)?;
        (bits, le32(bytes, 46).ok_or_else(cut)?, 4usize)
    };
    if bits > 8 {
        return Ok(PilTraits {
            nearest: false,
            alpha: decoder_alpha,
        });
    }
    let colors = if colors == 0 {
        1usize << bits
    } else {
        colors as usize
    };
    let palette_start = 14 + header_size;
    let entry =
        |i: usize| bytes.get(palette_start + i * entry_size..palette_start + i * entry_size + 3);
    let gray = if colors == 2 {
        entry(0) == Some(&[0, 0, 0][..]) && entry(1) == Some(&[255, 255, 255][..])
    } else {
        colors <= 256
            && (0..colors).all(|i| entry(i).is_some_and(|c| c.iter().all(|&v| usize::from(v) == i)))
    };
    Ok(PilTraits {
        nearest: !(gray && colors > 2),
        alpha: false,
    })
}

/// Returns the width and height stored in a PNG or BMP header (BMP heights are negative for
/// top-down images), or `None` when the header is too short or the format is another one.
fn header_dimensions(format: Format, bytes: &[u8]) -> Option<(u32, u32)> {
    match format {
        Format::Png => {
            let be = |at: usize| Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
            Some((be(16)?, be(20)?))
        }
        Format::Bmp if le32(bytes, 14)? == 12 => {
            Some((u32::from(le16(bytes, 18)?), u32::from(le16(bytes, 20)?)))
        }
        Format::Bmp => {
            let width = le32(bytes, 18)? as i32;
            let height = le32(bytes, 22)? as i32;
            Some((width.unsigned_abs(), height.unsigned_abs()))
        }
        Format::Jpeg | Format::Gif | Format::WebP => None,
    }
}

fn check_dimensions(
    format: Format,
    width: u32,
    height: u32,
    options: &DecodeOptions,
) -> Result<(), PreprocessError> {
    if width == 0 || height == 0 {
        return Err(PreprocessError::ZeroSize {
            format: format.name(),
            width,
            height,
        });
    }
    if u64::from(width) * u64::from(height) > options.max_pixels {
        return Err(PreprocessError::TooLarge {
            width,
            height,
            limit: options.max_pixels,
        });
    }
    Ok(())
}

/// Maps an `image` crate error to a [`PreprocessError`] that describes the problem with the file.
fn map_image_error(
    format: Format,
    err: ImageError,
    dims: Option<(u32, u32)>,
    max_pixels: u64,
) -> PreprocessError {
    match err {
        ImageError::Limits(e) => match dims {
            Some((width, height)) => PreprocessError::TooLarge {
                width,
                height,
                limit: max_pixels,
            },
            None => corrupt(
                format,
                format!("the header asks for more memory than allowed ({e})"),
            ),
        },
        ImageError::Unsupported(e) => PreprocessError::UnsupportedFeature {
            format: format.name(),
            detail: e.to_string(),
        },
        ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            corrupt(format, "the data ends early (truncated file)")
        }
        other => corrupt(format, other.to_string()),
    }
}

/// Checks that a JPEG has an end-of-image marker after its first start-of-scan marker.
///
/// The lenient decoder decodes a JPEG whose entropy-coded data is cut off and fills the missing
/// part with gray, which would feed a damaged picture to the model. Pillow rejects such files
/// ("image file is truncated"), and so does this check. Marker segments before the scan are
/// skipped by their lengths, because an EXIF thumbnail inside them has its own end marker.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let mut pos = 2;
    while pos + 4 <= bytes.len() {
        if bytes[pos] != 0xFF {
            return false;
        }
        let marker = bytes[pos + 1];
        if marker == 0xFF {
            pos += 1; // fill byte
            continue;
        }
        if marker == 0xD9 {
            return true;
        }
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            pos += 2;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([bytes[pos + 2], bytes[pos + 3]]));
        if marker == 0xDA {
            let scan = pos + 2 + len;
            return bytes
                .get(scan..)
                .is_some_and(|rest| rest.windows(2).any(|w| w == [0xFF, 0xD9]));
        }
        pos += 2 + len;
    }
    false
}

pub(crate) fn decode(
    bytes: &[u8],
    options: &DecodeOptions,
) -> Result<DecodedImage, PreprocessError> {
    if bytes.is_empty() {
        return Err(PreprocessError::Empty);
    }
    let format = sniff(bytes)?;
    let header = match format {
        Format::Png => Some(png_traits(bytes)?),
        Format::Gif => Some(gif_traits(bytes)?),
        Format::Jpeg | Format::WebP | Format::Bmp => None,
    };
    // PNG and BMP decoders read more than the header before reporting the size (and reject a
    // zero size with an unrelated message), so check the size from the header first.
    if let Some((width, height)) = header_dimensions(format, bytes) {
        check_dimensions(format, width, height, options)?;
    }

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    let mut limits = Limits::default();
    // Room for the decoded image at up to 8 bytes per pixel (16-bit RGBA) plus decoder buffers.
    limits.max_alloc = Some(
        options
            .max_pixels
            .saturating_mul(8)
            .saturating_add(64 << 20),
    );
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| map_image_error(format, e, None, options.max_pixels))?;

    let (width, height) = decoder.dimensions();
    check_dimensions(format, width, height, options)?;
    let orientation = if options.apply_exif_orientation {
        // A damaged EXIF block should not make an otherwise readable photo unusable.
        decoder
            .orientation()
            .unwrap_or(image::metadata::Orientation::NoTransforms)
    } else {
        image::metadata::Orientation::NoTransforms
    };
    if format == Format::Jpeg && !jpeg_is_complete(bytes) {
        return Err(corrupt(
            format,
            "the data ends before the end-of-image marker (truncated file)",
        ));
    }
    let decoder_alpha = decoder.color_type().has_alpha();
    let traits = match (format, header) {
        (_, Some(traits)) => traits,
        (Format::Bmp, None) => bmp_traits(bytes, decoder_alpha)?,
        (_, None) => PilTraits {
            nearest: false,
            alpha: decoder_alpha,
        },
    };

    // NOTE: zune-jpeg upsamples chroma and rounds differently from libjpeg-turbo, so JPEG pixels
    // differ from PIL's by up to a few levels; CMYK JPEGs come out as RGB already, while PIL
    // resizes CMYK and converts afterwards.
    let mut image = DynamicImage::from_decoder(decoder)
        .map_err(|e| map_image_error(format, e, Some((width, height)), options.max_pixels))?;
    image.apply_orientation(orientation);
    Ok(from_dynamic(image, traits, format))
}

/// Converts to interleaved 8-bit L / LA / RGB / RGBA. 16-bit samples keep their high byte, which
/// is what Pillow does when it opens 16-bit RGB and RGBA PNGs.
fn from_dynamic(image: DynamicImage, traits: PilTraits, format: Format) -> DecodedImage {
    let (width, height) = (image.width(), image.height());
    let high = |v: &[u16]| v.iter().map(|&s| (s >> 8) as u8).collect::<Vec<u8>>();
    let (channels, data) = match image {
        DynamicImage::ImageLuma8(b) => (1, b.into_raw()),
        DynamicImage::ImageLumaA8(b) => (2, b.into_raw()),
        DynamicImage::ImageRgb8(b) => (3, b.into_raw()),
        DynamicImage::ImageRgba8(b) => (4, b.into_raw()),
        DynamicImage::ImageLuma16(b) => (1, high(b.as_raw())),
        DynamicImage::ImageLumaA16(b) => (2, high(b.as_raw())),
        DynamicImage::ImageRgb16(b) => (3, high(b.as_raw())),
        DynamicImage::ImageRgba16(b) => (4, high(b.as_raw())),
        other if other.color().has_alpha() => (4, other.to_rgba8().into_raw()),
        other => (3, other.to_rgb8().into_raw()),
    };
    let (channels, data) = if (channels == 2 || channels == 4) && !traits.alpha {
        (channels - 1, drop_alpha(&data, channels))
    } else {
        (channels, data)
    };
    DecodedImage {
        width,
        height,
        channels,
        data,
        sampling: if traits.nearest {
            SamplingRule::Nearest
        } else {
            SamplingRule::Filtered
        },
        format: Some(format),
    }
}

fn drop_alpha(data: &[u8], channels: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / channels * (channels - 1));
    for px in data.chunks_exact(channels) {
        out.extend_from_slice(&px[..channels - 1]);
    }
    out
}

/// Choice between the configured filter and nearest neighbour, which Pillow uses for palette and
/// bilevel images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SamplingRule {
    Filtered,
    Nearest,
}

impl SamplingRule {
    pub(crate) fn with_filter(self, filter: super::resize::Filter) -> Sampling {
        match self {
            SamplingRule::Filtered => Sampling::Filtered(filter),
            SamplingRule::Nearest => Sampling::Nearest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_completeness_skips_thumbnail_markers() {
        // SOI, APP1 segment containing an embedded FFD9, SOS with 2-byte header, data, no EOI.
        let mut b = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0x00, 0x00];
        b.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x02, 0x12, 0x34]);
        assert!(!jpeg_is_complete(&b));
        b.extend_from_slice(&[0xFF, 0xD9]);
        assert!(jpeg_is_complete(&b));
    }

    #[test]
    fn sniff_names_common_unsupported_formats() {
        let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic";
        match sniff(heic) {
            Err(PreprocessError::UnsupportedFormat { found }) => assert_eq!(found, "HEIF/HEIC"),
            other => panic!("{other:?}"),
        }
        match sniff(b"II*\0\x08\0\0\0") {
            Err(PreprocessError::UnsupportedFormat { found }) => assert_eq!(found, "TIFF"),
            other => panic!("{other:?}"),
        }
    }
}
