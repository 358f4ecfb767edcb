//! Image preprocessing against open_clip 3.3.0: every case in
//! tests/fixtures/preprocess/index.json (written by scripts/make_preprocess_fixtures.py) is
//! decoded and preprocessed here and compared with open_clip's tensor for the same file, plus
//! config parsing, error messages and robustness against damaged input.
//!
//! `cargo test --test preprocess -- --nocapture` prints the measured error of every case.

use std::path::{Path, PathBuf};

use coca_wgpu::preprocess::{
    decode_image, DecodeOptions, DecodedImage, ImageSize, Interpolation, PreprocessConfig,
    PreprocessError, Preprocessor, ResizeMode, OPENAI_DATASET_MEAN, OPENAI_DATASET_STD,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/preprocess")
}

fn read(rel: &str) -> Vec<u8> {
    let path = fixtures().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; regenerate with scripts/make_preprocess_fixtures.py",
            path.display()
        )
    })
}

fn read_f32(rel: &str) -> Vec<f32> {
    read(rel)
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// Largest allowed difference in 8-bit levels per tolerance class of the fixture index.
/// "lossless": the decoders agree bit for bit, so the resize must match Pillow exactly.
/// "jpeg" / "webp_lossy": zune-jpeg and image-webp round differently from libjpeg-turbo and
/// libwebp; "cmyk": PIL resizes CMYK and converts afterwards, this crate converts first.
fn allowed_levels(class: &str) -> f32 {
    match class {
        "lossless" => 0.0,
        "jpeg" => 5.0,
        "webp_lossy" => 2.0,
        "cmyk" => 2.0,
        other => panic!("unknown tolerance class {other}"),
    }
}

#[test]
fn matches_open_clip_on_fixtures() {
    let index: serde_json::Value = serde_json::from_slice(&read("index.json")).unwrap();
    let mut failures = Vec::new();
    println!(
        "{:<26} {:>14} {:>10} {:>10} {:>9}  class",
        "case", "max |diff|", "max lvls", "mean lvls", "differ"
    );
    for case in index["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let config: PreprocessConfig =
            serde_json::from_value(case["preprocess_cfg"].clone()).unwrap();
        let options = DecodeOptions {
            apply_exif_orientation: case["apply_exif_orientation"].as_bool().unwrap(),
            ..DecodeOptions::default()
        };
        let pre = Preprocessor::new(config.clone())
            .unwrap()
            .with_options(options);
        let got = pre
            .preprocess_bytes(&read(case["source"].as_str().unwrap()))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let shape: Vec<usize> = case["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(got.shape.to_vec(), shape, "{name}: shape");
        let expected = read_f32(case["expected"].as_str().unwrap());
        assert_eq!(got.data.len(), expected.len(), "{name}: length");

        // Differences in normalized units and in 8-bit levels (one level is 1/255/std).
        let plane = shape[1] * shape[2];
        let (mut max_abs, mut max_levels, mut sum_levels, mut differ) = (0f32, 0f32, 0f64, 0usize);
        for (i, (g, e)) in got.data.iter().zip(&expected).enumerate() {
            let d = (g - e).abs();
            let levels = d * config.std[i / plane] * 255.0;
            max_abs = max_abs.max(d);
            max_levels = max_levels.max(levels);
            sum_levels += f64::from(levels);
            if d > 1e-6 {
                differ += 1;
            }
        }
        let class = case["tolerance"].as_str().unwrap();
        println!(
            "{name:<26} {max_abs:>14.8} {max_levels:>10.3} {:>10.4} {differ:>9}  {class}",
            sum_levels / expected.len() as f64
        );
        // One level of slack is 1/255/min(std) in normalized units; 1e-5 absorbs float noise.
        let min_std = config.std.iter().cloned().fold(f32::INFINITY, f32::min);
        let bound = allowed_levels(class).max(0.0) / 255.0 / min_std + 1e-5;
        if max_abs > bound {
            failures.push(format!("{name}: max |diff| {max_abs} > {bound} ({class})"));
        }
    }
    assert!(
        failures.is_empty(),
        "cases off open_clip:\n{}",
        failures.join("\n")
    );
}

#[test]
fn config_defaults_match_open_clip() {
    let config: PreprocessConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(config, PreprocessConfig::default());
    assert_eq!(config.size, ImageSize::square(224));
    assert_eq!(config.mean, OPENAI_DATASET_MEAN);
    assert_eq!(config.std, OPENAI_DATASET_STD);
    assert_eq!(config.interpolation, Interpolation::Bicubic);
    assert_eq!(config.resize_mode, ResizeMode::Shortest);
    assert_eq!(config.fill_color, 0);
}

#[test]
fn config_parses_open_clip_preprocess_cfg() {
    let config: PreprocessConfig = serde_json::from_str(
        r#"{"size": [256, 320], "mode": "RGB", "mean": [0.5, 0.5, 0.5], "std": 0.5,
            "interpolation": "bilinear", "resize_mode": "squash", "fill_color": 128,
            "some_future_key": true}"#,
    )
    .unwrap();
    assert_eq!(
        config.size,
        ImageSize {
            height: 256,
            width: 320
        }
    );
    assert_eq!(config.mean, [0.5; 3]);
    assert_eq!(config.std, [0.5; 3]);
    assert_eq!(config.interpolation, Interpolation::Bilinear);
    assert_eq!(config.resize_mode, ResizeMode::Squash);
    assert_eq!(config.fill_color, 128);
    assert_eq!(config.output_shape(), [3, 256, 320]);

    // open_clip skips None values when merging, so null means "default".
    let config: PreprocessConfig =
        serde_json::from_str(r#"{"size": 336, "resize_mode": null, "interpolation": "random"}"#)
            .unwrap();
    assert_eq!(config.size, ImageSize::square(336));
    assert_eq!(config.resize_mode, ResizeMode::Shortest);
    assert_eq!(config.interpolation, Interpolation::Bicubic);
}

#[test]
fn config_errors_name_value_and_alternatives() {
    let err = |json: &str| {
        serde_json::from_str::<PreprocessConfig>(json)
            .unwrap_err()
            .to_string()
    };

    let msg = err(r#"{"resize_mode": "fit"}"#);
    assert!(msg.contains("\"fit\""), "{msg}");
    assert!(msg.contains("shortest"), "{msg}");
    assert!(msg.contains("squash"), "{msg}");

    let msg = err(r#"{"interpolation": "lanczos"}"#);
    assert!(msg.contains("lanczos"), "{msg}");
    assert!(msg.contains("bicubic"), "{msg}");
    assert!(msg.contains("bilinear"), "{msg}");

    let msg = err(r#"{"mode": "BGR"}"#);
    assert!(msg.contains("BGR"), "{msg}");
    assert!(msg.contains("RGB"), "{msg}");

    let msg = err(r#"{"fill_color": 300}"#);
    assert!(msg.contains("300"), "{msg}");
    assert!(msg.contains("0-255"), "{msg}");

    let msg = err(r#"{"mean": [0.5, 0.5]}"#);
    assert!(msg.contains("mean"), "{msg}");
    assert!(msg.contains("3"), "{msg}");

    let msg = err(r#"{"std": [0.5, 0.0, 0.5]}"#);
    assert!(msg.contains("std"), "{msg}");
    assert!(msg.contains("non-zero"), "{msg}");

    let msg = err(r#"{"size": 0}"#);
    assert!(msg.contains("size must be positive"), "{msg}");

    let msg = err(r#"{"size": [224, 2240000]}"#);
    assert!(msg.contains("224x2240000"), "{msg}");
    assert!(msg.contains("16384"), "{msg}");

    let msg = err(r#"{"size": [224, 224, 3]}"#);
    assert!(msg.contains("[height, width]"), "{msg}");
}

#[test]
fn decoded_image_reports_format_and_size() {
    let img = decode_image(&read("src/chelsea.jpg"), &DecodeOptions::default()).unwrap();
    assert_eq!((img.width(), img.height()), (451, 300));
    assert_eq!(img.format_name(), Some("JPEG"));
    assert!(!img.has_alpha());
    let rgba = decode_image(&read("src/rgba.png"), &DecodeOptions::default()).unwrap();
    assert!(rgba.has_alpha());
    assert_eq!(rgba.to_rgb8().len(), 160 * 120 * 3);

    // The EXIF tag of orient6.jpg rotates the 150x200 stored pixels to 200x150.
    let bytes = read("src/orient6.jpg");
    let upright = decode_image(&bytes, &DecodeOptions::default()).unwrap();
    assert_eq!((upright.width(), upright.height()), (200, 150));
    let raw = DecodeOptions {
        apply_exif_orientation: false,
        ..DecodeOptions::default()
    };
    let stored = decode_image(&bytes, &raw).unwrap();
    assert_eq!((stored.width(), stored.height()), (150, 200));
}

#[test]
fn raw_pixels_match_decoded_file() {
    let pre = Preprocessor::new(PreprocessConfig::square(64)).unwrap();
    let decoded = pre.decode(&read("src/coffee.png")).unwrap();
    let raw =
        DecodedImage::from_rgb8(decoded.width(), decoded.height(), decoded.to_rgb8()).unwrap();
    assert_eq!(pre.preprocess(&raw), pre.preprocess(&decoded));

    let err = DecodedImage::from_rgb8(10, 10, vec![0; 299])
        .unwrap_err()
        .to_string();
    assert!(err.contains("300"), "{err}");
    assert!(err.contains("299"), "{err}");
    let err = DecodedImage::from_rgba8(0, 10, Vec::new()).unwrap_err();
    assert!(matches!(err, PreprocessError::ZeroSize { .. }), "{err}");
}

#[test]
fn extreme_aspect_ratios_stay_cheap() {
    // A 5,000,000 x 1 strip: torchvision would resize it to 1.12e9 x 224 pixels. Only the
    // centre crop is computed here, so this takes milliseconds.
    let pre = Preprocessor::new(PreprocessConfig::square(224)).unwrap();
    let width = 5_000_000u32;
    let data: Vec<u8> = (0..width * 3).map(|i| (i % 251) as u8).collect();
    let strip = DecodedImage::from_rgb8(width, 1, data).unwrap();
    let out = pre.preprocess(&strip);
    assert_eq!(out.shape, [3, 224, 224]);
    assert!(out.data.iter().all(|v| v.is_finite()));
    // Every output row comes from the single source row, so all rows are equal.
    assert_eq!(out.data[..224], out.data[224 * 100..224 * 101]);
}

#[test]
fn batch_stacks_and_reports_failing_index() {
    let pre = Preprocessor::new(PreprocessConfig::square(64)).unwrap();
    let a = read("src/chelsea.jpg");
    let b = read("src/rgba.png");
    let batch = pre.preprocess_batch(&[&a, &b]).unwrap();
    assert_eq!(batch.shape, [2, 3, 64, 64]);
    let first = pre.preprocess_bytes(&a).unwrap();
    let second = pre.preprocess_bytes(&b).unwrap();
    assert_eq!(&batch.data[..first.data.len()], &first.data[..]);
    assert_eq!(&batch.data[first.data.len()..], &second.data[..]);
    let decoded = [pre.decode(&a).unwrap(), pre.decode(&b).unwrap()];
    assert_eq!(pre.preprocess_decoded_batch(&decoded), batch);

    let garbage = b"not an image at all".to_vec();
    let err = pre.preprocess_batch(&[a.clone(), garbage]).unwrap_err();
    assert!(
        matches!(err, PreprocessError::InBatch { index: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().starts_with("image 1 of the batch"), "{err}");

    let empty: [&[u8]; 0] = [];
    assert_eq!(pre.preprocess_batch(&empty).unwrap().shape, [0, 3, 64, 64]);
}

#[test]
fn file_errors_name_the_path() {
    let pre = Preprocessor::new(PreprocessConfig::square(64)).unwrap();
    let err = pre
        .preprocess_file("no/such/picture.jpg")
        .unwrap_err()
        .to_string();
    assert!(err.contains("no/such/picture.jpg"), "{err}");
    let ok = pre
        .preprocess_file(fixtures().join("src/tiny.png"))
        .unwrap();
    assert_eq!(ok.shape, [3, 64, 64]);
}

#[test]
fn format_errors_name_the_format() {
    let opts = DecodeOptions::default();
    let msg = decode_image(&[], &opts).unwrap_err().to_string();
    assert!(msg.contains("empty"), "{msg}");

    let tiff = b"II*\0\x08\0\0\0\0\0\0\0\0\0\0\0";
    let msg = decode_image(tiff, &opts).unwrap_err().to_string();
    assert!(msg.contains("TIFF"), "{msg}");
    assert!(msg.contains("PNG, JPEG, WebP"), "{msg}");

    let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic\0\0\0\0";
    let msg = decode_image(heic, &opts).unwrap_err().to_string();
    assert!(msg.contains("HEIF/HEIC"), "{msg}");

    let msg = decode_image(b"hello world", &opts).unwrap_err().to_string();
    assert!(msg.contains("unknown"), "{msg}");
    assert!(msg.contains("68 65 6c 6c"), "{msg}");
}

/// Builds a PNG that has a valid signature and IHDR chunk and nothing else.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn size_limits_are_enforced_before_decoding() {
    let opts = DecodeOptions::default();
    let err = decode_image(&png_header(20_000, 20_000), &opts).unwrap_err();
    assert!(
        matches!(
            err,
            PreprocessError::TooLarge {
                width: 20_000,
                height: 20_000,
                ..
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("400000000 pixels"), "{msg}");
    assert!(msg.contains("max_pixels"), "{msg}");

    let small = DecodeOptions {
        max_pixels: 10_000,
        ..DecodeOptions::default()
    };
    let err = decode_image(&read("src/chelsea.jpg"), &small).unwrap_err();
    assert!(
        matches!(
            err,
            PreprocessError::TooLarge {
                width: 451,
                height: 300,
                limit: 10_000
            }
        ),
        "{err}"
    );
}

#[test]
fn zero_size_images_are_reported() {
    // BMP with a zero width: 14-byte file header + 40-byte info header, 24 bits per pixel.
    let mut bmp = b"BM".to_vec();
    bmp.extend_from_slice(&54u32.to_le_bytes()); // file size
    bmp.extend_from_slice(&0u32.to_le_bytes()); // reserved
    bmp.extend_from_slice(&54u32.to_le_bytes()); // pixel data offset
    bmp.extend_from_slice(&40u32.to_le_bytes()); // info header size
    bmp.extend_from_slice(&0i32.to_le_bytes()); // width
    bmp.extend_from_slice(&1i32.to_le_bytes()); // height
    bmp.extend_from_slice(&1u16.to_le_bytes()); // planes
    bmp.extend_from_slice(&24u16.to_le_bytes()); // bits per pixel
    bmp.extend_from_slice(&[0; 24]);
    let png = png_header(0, 10);
    for bytes in [bmp, png] {
        let err = decode_image(&bytes, &DecodeOptions::default()).unwrap_err();
        assert!(matches!(err, PreprocessError::ZeroSize { .. }), "{err}");
        assert!(err.to_string().contains("zero size"), "{err}");
    }
}

#[test]
fn truncated_files_are_errors_not_panics() {
    let pre = Preprocessor::new(PreprocessConfig::square(32)).unwrap();
    let sources = [
        "src/chelsea.jpg",
        "src/astronaut_progressive.jpg",
        "src/coffee.png",
        "src/palette.png",
        "src/rgb16.png",
        "src/anim.gif",
        "src/rgb.bmp",
        "src/palette.bmp",
        "src/astronaut_lossy.webp",
        "src/astronaut_lossless.webp",
        "src/cmyk.jpg",
        "src/orient6.jpg",
    ];
    for source in sources {
        let bytes = read(source);
        // Every length in the header region, then about 60 cuts through the pixel data.
        let step = (bytes.len() / 60).max(1);
        let cuts = (0..bytes.len().min(300)).chain((300..bytes.len()).step_by(step));
        for len in cuts {
            match pre.preprocess_bytes(&bytes[..len]) {
                // GIF and BMP decoders accept some short files (a GIF without its trailer, a BMP
                // whose last rows are missing); PNG, JPEG and WebP must report the cut.
                Ok(_) => assert!(
                    source.ends_with(".gif") || source.ends_with(".bmp"),
                    "{source} cut to {len} of {} bytes decoded without error",
                    bytes.len()
                ),
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        }
        let full = pre.preprocess_bytes(&bytes);
        assert!(full.is_ok(), "{source}: {:?}", full.err());
    }
}

#[test]
fn random_bytes_are_errors_not_panics() {
    let pre = Preprocessor::new(PreprocessConfig::square(32)).unwrap();
    // xorshift64*: deterministic noise without a dev-dependency.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let signatures: [&[u8]; 7] = [
        b"",
        b"\x89PNG\r\n\x1a\n",
        &[0xFF, 0xD8, 0xFF],
        b"GIF89a",
        b"RIFF\x20\0\0\0WEBPVP8 ",
        b"BM",
        b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x10\0\0\0\x10\x08\x06\0\0\0",
    ];
    for round in 0..400 {
        let sig = signatures[round % signatures.len()];
        let len = (next() % 600) as usize;
        let mut bytes = sig.to_vec();
        bytes.extend((0..len).map(|_| next() as u8));
        if let Ok(img) = pre.preprocess_bytes(&bytes) {
            assert_eq!(img.shape, [3, 32, 32]);
        }
    }
    // Real files with bytes flipped in the middle.
    for source in [
        "src/chelsea.jpg",
        "src/coffee.png",
        "src/anim.gif",
        "src/astronaut_lossy.webp",
    ] {
        let original = read(source);
        for _ in 0..25 {
            let mut bytes = original.clone();
            for _ in 0..8 {
                let at = 20 + (next() as usize) % (bytes.len() - 20);
                bytes[at] = next() as u8;
            }
            let _ = pre.preprocess_bytes(&bytes);
        }
    }
}
