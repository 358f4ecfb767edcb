"""Write the image preprocessing fixtures under tests/fixtures/preprocess/.

tests/preprocess.rs decodes every source image with coca_wgpu::preprocess and compares the result
with the output of open_clip 3.3.0's eval transform for the same file:
image_transform_v2(PreprocessCfg(**cfg), is_train=False), i.e. torchvision Resize + CenterCrop on
a PIL image, then convert("RGB"), ToTensor and Normalize.

Layout:

* src/: the source images. Real photos are scikit-image's bundled chelsea, coffee and astronaut
  (public domain / CC0); the rest is synthesized here from them or from plain gradients.
* expected/<case>.bin: open_clip's output tensor for one case, float32 little-endian, CHW.
* index.json: one entry per case: source file, the open_clip preprocess_cfg used, whether EXIF
  orientation is applied, the tensor shape, the expected file and a tolerance class:
  "lossless" (PNG, GIF, BMP, lossless WebP: the decoders agree bit for bit, so only the resize
  counts), "jpeg" and "webp_lossy" (the Rust decoders differ slightly from libjpeg-turbo and
  libwebp), "cmyk" (PIL resizes in CMYK and converts afterwards; the image crate converts to RGB
  while decoding).

Two cases do not use PIL's plain behaviour, on purpose:

* gray16: PIL opens a 16-bit grayscale PNG as mode "I;16" and convert("RGB") clips every value
  above 255, so nearly every photo turns white. coca_wgpu keeps the high byte instead (as PIL does
  for 16-bit RGB PNGs), so the expected tensor is open_clip's transform of the image reduced to
  8 bits that way.
* the *_exif cases: open_clip ignores the EXIF orientation tag; coca_wgpu applies it by default,
  so the expected tensor comes from ImageOps.exif_transpose() followed by the same transform.
  The matching *_noexif cases check the switch that turns it off.

The reference environment is open_clip 3.3.0 with torch, torchvision, Pillow and numpy, plus
scikit-image for the sample photos. Rerun from the repository root (a few seconds):

    eval "$(bash /work/shared/tools/reference-env.sh)"
    pip install scikit-image
    python scripts/make_preprocess_fixtures.py
"""

import io
import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import open_clip
import skimage.data
import torch
from open_clip.transform import PreprocessCfg, image_transform_v2
from PIL import Image, ImageOps

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "preprocess"
SRC = OUT / "src"
EXPECTED = OUT / "expected"


def png16(path: Path, array: np.ndarray) -> None:
    """Write a 16-bit PNG (gray if 2-D, RGB if HxWx3); PIL cannot save 16-bit RGB."""
    array = np.asarray(array, dtype=">u2")
    height, width = array.shape[:2]
    color_type = 0 if array.ndim == 2 else 2
    rows = array.reshape(height, -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def with_orientation(img: Image.Image, orientation: int) -> Image.Image:
    """Return pixels stored so that a viewer applying EXIF `orientation` shows `img` upright."""
    inverse = {
        2: [Image.Transpose.FLIP_LEFT_RIGHT],
        3: [Image.Transpose.ROTATE_180],
        4: [Image.Transpose.FLIP_TOP_BOTTOM],
        5: [Image.Transpose.TRANSPOSE],
        6: [Image.Transpose.ROTATE_90],
        7: [Image.Transpose.TRANSVERSE],
        8: [Image.Transpose.ROTATE_270],
    }[orientation]
    for op in inverse:
        img = img.transpose(op)
    return img


def make_sources() -> dict:
    """Write the source images; return {file name: note}."""
    if SRC.exists():
        shutil.rmtree(SRC)
    SRC.mkdir(parents=True)
    notes = {}

    chelsea = Image.fromarray(skimage.data.chelsea())  # 451x300 RGB
    coffee = Image.fromarray(skimage.data.coffee())  # 600x400 RGB
    astronaut = Image.fromarray(skimage.data.astronaut())  # 512x512 RGB

    chelsea.save(SRC / "chelsea.jpg", quality=90)
    notes["chelsea.jpg"] = "real photo, baseline JPEG, 4:2:0"
    coffee.save(SRC / "coffee.png", optimize=True)
    notes["coffee.png"] = "real photo, 8-bit RGB PNG, 600x400"
    astro_small = astronaut.resize((200, 200), Image.BICUBIC)
    astro_small.save(SRC / "astronaut_444.jpg", quality=95, subsampling=0)
    notes["astronaut_444.jpg"] = "real photo, JPEG without chroma subsampling"
    astro_small.save(SRC / "astronaut_progressive.jpg", quality=85, progressive=True)
    notes["astronaut_progressive.jpg"] = "progressive JPEG"
    astronaut.resize((256, 256), Image.BICUBIC).save(SRC / "astronaut_lossy.webp", quality=80)
    notes["astronaut_lossy.webp"] = "lossy WebP"
    astronaut.resize((128, 128), Image.BICUBIC).save(
        SRC / "astronaut_lossless.webp", lossless=True
    )
    notes["astronaut_lossless.webp"] = "lossless WebP"

    chelsea.convert("L").resize((226, 150), Image.BICUBIC).save(SRC / "gray.png")
    notes["gray.png"] = "8-bit grayscale PNG"
    chelsea.convert("L").save(SRC / "gray.jpg", quality=90)
    notes["gray.jpg"] = "grayscale JPEG"

    # RGBA: colour under fully transparent pixels is bright red, so a resize that ignores
    # premultiplication (PIL premultiplies) would bleed red into the picture.
    base = np.asarray(coffee.resize((160, 120), Image.BICUBIC)).copy()
    yy, xx = np.mgrid[0:120, 0:160]
    alpha = np.clip((xx * 255) // 159, 0, 255).astype(np.uint8)
    alpha[:, :24] = 0
    base[:, :24] = (255, 0, 0)
    alpha[40:60, 60:100] = 128
    Image.fromarray(np.dstack([base, alpha]), "RGBA").save(SRC / "rgba.png")
    notes["rgba.png"] = "RGBA PNG with an alpha ramp and red under transparent pixels"
    gray_base = np.asarray(chelsea.convert("L").resize((90, 60), Image.BICUBIC))
    la_alpha = np.clip((yy[:60, :90] * 255) // 59, 0, 255).astype(np.uint8)
    Image.fromarray(np.dstack([gray_base, la_alpha]), "LA").save(SRC / "la.png")
    notes["la.png"] = "gray + alpha PNG"

    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 65535, 90 * 70 * 3).reshape(70, 90, 3)
    rgb16 = np.clip(ramp + rng.normal(0, 3000, ramp.shape), 0, 65535).astype(np.uint16)
    png16(SRC / "rgb16.png", rgb16)
    notes["rgb16.png"] = "16-bit RGB PNG"
    gray16 = np.clip(
        np.asarray(chelsea.convert("L").resize((80, 53)), dtype=np.float64) * 257
        + rng.normal(0, 100, (53, 80)),
        0,
        65535,
    ).astype(np.uint16)
    png16(SRC / "gray16.png", gray16)
    notes["gray16.png"] = "16-bit grayscale PNG"

    coffee.resize((150, 100), Image.BICUBIC).quantize(64).save(SRC / "palette.png")
    notes["palette.png"] = "palette PNG (PIL mode P: resized with nearest neighbour)"
    chelsea.convert("L").resize((97, 61), Image.BICUBIC).convert("1").save(SRC / "bilevel.png")
    notes["bilevel.png"] = "1-bit PNG (PIL mode 1: resized with nearest neighbour)"

    frame0 = chelsea.resize((120, 80), Image.BICUBIC).quantize(128)
    frame1 = coffee.resize((120, 80), Image.BICUBIC).quantize(128)
    frame0.save(SRC / "anim.gif", save_all=True, append_images=[frame1], duration=100, loop=0)
    notes["anim.gif"] = "two-frame GIF; the first frame is used"
    # optimize=False keeps the identity gray palette, which PIL opens as mode "L".
    chelsea.convert("L").resize((100, 66), Image.BICUBIC).save(SRC / "gray.gif", optimize=False)
    notes["gray.gif"] = "grayscale GIF (PIL mode L: resized with bicubic)"

    coffee.resize((133, 89), Image.BICUBIC).save(SRC / "rgb.bmp")
    notes["rgb.bmp"] = "24-bit BMP"
    coffee.resize((133, 89), Image.BICUBIC).quantize(200).save(SRC / "palette.bmp")
    notes["palette.bmp"] = "8-bit palette BMP"

    coffee.resize((150, 100), Image.BICUBIC).convert("CMYK").save(SRC / "cmyk.jpg", quality=95)
    notes["cmyk.jpg"] = "CMYK JPEG (Adobe)"

    Image.new("RGB", (1, 1), (200, 30, 90)).save(SRC / "tiny.png")
    notes["tiny.png"] = "1x1 pixel"
    wide = np.asarray(coffee.resize((1500, 12), Image.BICUBIC))
    Image.fromarray(wide).save(SRC / "wide.png")
    notes["wide.png"] = "1500x12, aspect ratio 125:1"
    line = rng.integers(0, 255, (1, 20000, 3), dtype=np.uint8)
    Image.fromarray(line).quantize(16).save(SRC / "line_palette.png")
    notes["line_palette.png"] = "20000x1 palette PNG (nearest neighbour, extreme aspect ratio)"
    tall = np.asarray(chelsea.resize((13, 300), Image.BICUBIC))
    Image.fromarray(tall).save(SRC / "tall.png")
    notes["tall.png"] = "13x300"
    crop_src = np.asarray(coffee.resize((71, 64), Image.BICUBIC))
    Image.fromarray(crop_src[:, :69]).save(SRC / "crop_69x64.png")
    notes["crop_69x64.png"] = "no resize at size 64; crop offset round(2.5) = 2"
    Image.fromarray(crop_src).save(SRC / "crop_71x64.png")
    notes["crop_71x64.png"] = "no resize at size 64; crop offset round(3.5) = 4"

    upright = coffee.resize((48, 32), Image.BICUBIC)
    for orientation in range(1, 9):
        stored = upright if orientation == 1 else with_orientation(upright, orientation)
        exif = Image.Exif()
        exif[0x0112] = orientation
        stored.save(SRC / f"orient{orientation}.png", exif=exif.tobytes())
        notes[f"orient{orientation}.png"] = f"PNG with eXIf orientation {orientation}"
    stored = with_orientation(astro_small.crop((0, 20, 200, 170)), 6)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(SRC / "orient6.jpg", quality=95, subsampling=0, exif=exif.tobytes())
    notes["orient6.jpg"] = "JPEG stored sideways with EXIF orientation 6 (rotate 90 clockwise)"
    return notes


def load_for_reference(path: Path, exif: bool) -> Image.Image:
    img = Image.open(path)
    if path.name == "gray16.png":
        img.load()
        assert img.mode == "I;16", img.mode
        high = (np.asarray(img, dtype=np.uint16) >> 8).astype(np.uint8)
        img = Image.fromarray(high, "L")
    if exif:
        img = ImageOps.exif_transpose(img)
    return img


def tolerance_class(name: str) -> str:
    if name == "cmyk.jpg":
        return "cmyk"
    if name.endswith(".jpg"):
        return "jpeg"
    if name.endswith("_lossy.webp"):
        return "webp_lossy"
    return "lossless"


def main() -> None:
    notes = make_sources()
    if EXPECTED.exists():
        shutil.rmtree(EXPECTED)
    EXPECTED.mkdir(parents=True)

    s64 = {"size": 64}
    cases = [
        ("chelsea_224", "chelsea.jpg", {"size": 224}, True),
        ("chelsea_64", "chelsea.jpg", s64, True),
        ("coffee_224", "coffee.png", {"size": 224}, True),
        ("coffee_64", "coffee.png", s64, True),
        ("coffee_squash", "coffee.png", {"size": 64, "resize_mode": "squash"}, True),
        (
            "coffee_longest_fill",
            "coffee.png",
            {"size": 64, "resize_mode": "longest", "fill_color": 128},
            True,
        ),
        ("coffee_rect", "coffee.png", {"size": [64, 48]}, True),
        ("coffee_rect_wide", "coffee.png", {"size": [40, 96]}, True),
        ("coffee_bilinear", "coffee.png", {"size": 64, "interpolation": "bilinear"}, True),
        (
            "coffee_siglip_norm",
            "coffee.png",
            {"size": 64, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
            True,
        ),
        ("astronaut_444", "astronaut_444.jpg", s64, True),
        ("astronaut_progressive", "astronaut_progressive.jpg", s64, True),
        ("astronaut_lossy_webp", "astronaut_lossy.webp", s64, True),
        ("astronaut_lossless_webp", "astronaut_lossless.webp", s64, True),
        ("gray_png", "gray.png", s64, True),
        ("gray_jpg", "gray.jpg", s64, True),
        ("rgba", "rgba.png", s64, True),
        ("rgba_longest", "rgba.png", {"size": 64, "resize_mode": "longest"}, True),
        ("la", "la.png", s64, True),
        ("rgb16", "rgb16.png", s64, True),
        ("gray16", "gray16.png", s64, True),
        ("palette_png", "palette.png", s64, True),
        ("bilevel_png", "bilevel.png", s64, True),
        ("anim_gif", "anim.gif", s64, True),
        ("gray_gif", "gray.gif", s64, True),
        ("rgb_bmp", "rgb.bmp", s64, True),
        ("palette_bmp", "palette.bmp", s64, True),
        ("cmyk", "cmyk.jpg", s64, True),
        ("tiny", "tiny.png", s64, True),
        ("tiny_longest", "tiny.png", {"size": 64, "resize_mode": "longest"}, True),
        ("wide", "wide.png", s64, True),
        ("wide_longest", "wide.png", {"size": 64, "resize_mode": "longest"}, True),
        ("line_palette", "line_palette.png", s64, True),
        ("tall", "tall.png", s64, True),
        ("crop_69x64", "crop_69x64.png", s64, True),
        ("crop_71x64", "crop_71x64.png", s64, True),
    ]
    for orientation in range(1, 9):
        cases.append((f"orient{orientation}_exif", f"orient{orientation}.png", s64, True))
    cases.append(("orient6_noexif", "orient6.png", s64, False))
    cases.append(("orient6_jpg_exif", "orient6.jpg", s64, True))
    cases.append(("orient6_jpg_noexif", "orient6.jpg", s64, False))

    index = {
        "generator": "scripts/make_preprocess_fixtures.py",
        "versions": {
            "open_clip": open_clip.__version__,
            "torch": torch.__version__,
            "pillow": Image.__version__,
        },
        "sources": notes,
        "cases": [],
    }
    for name, source, cfg, exif in cases:
        transform = image_transform_v2(PreprocessCfg(**cfg), is_train=False)
        tensor = transform(load_for_reference(SRC / source, exif))
        array = tensor.numpy().astype("<f4")
        (EXPECTED / f"{name}.bin").write_bytes(array.tobytes())
        index["cases"].append(
            {
                "name": name,
                "source": f"src/{source}",
                "preprocess_cfg": cfg,
                "apply_exif_orientation": exif,
                "shape": list(array.shape),
                "expected": f"expected/{name}.bin",
                "tolerance": tolerance_class(source),
            }
        )
    (OUT / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {len(index['cases'])} cases, {total / 1e6:.2f} MB under {OUT}")


if __name__ == "__main__":
    main()
