//! Resize, crop and pad with the arithmetic of Pillow's `Image.resize` and torchvision's
//! `Resize` / `CenterCrop` on PIL images, so that the pixels equal what open_clip feeds its model.
//!
//! Pillow's filtered resize is separable: a horizontal pass over every source row that the
//! vertical pass will read, then a vertical pass. Each output sample is a weighted sum over a
//! window of source samples. The window is the filter's support stretched by the downscale
//! factor, which is the antialiasing. The weights are normalized to sum to one and then turned
//! into 22-bit fixed-point integers. Both passes round to 8 bits and clip, so the horizontal
//! result is stored as `u8` before the vertical pass reads it. Everything below reproduces that
//! integer arithmetic, which makes the output equal to Pillow's bit for bit.
//!
//! Images in Pillow's palette ("P") and bilevel ("1") modes are always resized with nearest
//! neighbour, whatever filter is asked for, and images with an alpha channel are resized with
//! premultiplied alpha. Both rules are reproduced as well.
//!
//! Only the pixels that survive the centre crop are computed. An output pixel depends on its own
//! window of source pixels only, so a sub-rectangle of the resized image has the same values as
//! a crop of the full resize. The full resized image is never allocated, which matters for a
//! 1500x12 banner: with a shortest side of 224 it would be 28000x224 pixels.

/// Fixed-point fraction bits of Pillow's 8-bit resampling coefficients (32 - 8 - 2: 8 bits for
/// the sample, 2 spare bits for filters whose partial sums leave [0, 1]).
const PRECISION_BITS: u32 = 22;

/// Resampling filter for filtered (non-palette) images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Filter {
    /// Keys cubic convolution with a = -0.5, support 2 (Pillow's `BICUBIC`).
    Bicubic,
    /// Triangle filter, support 1 (Pillow's `BILINEAR`).
    Bilinear,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Bicubic => 2.0,
            Filter::Bilinear => 1.0,
        }
    }

    /// Evaluates the kernel with the same operation order as Pillow's C code, so that the
    /// double-precision weights (and therefore the rounded fixed-point ones) agree exactly.
    fn eval(self, x: f64) -> f64 {
        let x = if x < 0.0 { -x } else { x };
        match self {
            Filter::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Filter::Bilinear => {
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
        }
    }
}

/// Method that turns source pixels into resized pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sampling {
    /// Separable convolution with the given filter.
    Filtered(Filter),
    /// Nearest neighbour (Pillow's rule for palette and bilevel images).
    Nearest,
}

/// An interleaved 8-bit image with 1 to 4 channels (L, LA, RGB, RGBA).
pub(crate) struct Pixels<'a> {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub data: &'a [u8],
}

/// A rectangle of the resized image: columns `x0..x1`, rows `y0..y1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub x0: usize,
    pub x1: usize,
    pub y0: usize,
    pub y1: usize,
}

impl Window {
    fn width(&self) -> usize {
        self.x1 - self.x0
    }
    fn height(&self) -> usize {
        self.y1 - self.y0
    }
}

/// Computes Python's `round(n / 2)` (half to even) for a non-negative integer `n`, the crop
/// offset of torchvision's `CenterCrop`: `int(round((h - th) / 2.0))`.
pub(crate) fn half_round_even(n: u64) -> u64 {
    let q = n / 2;
    if n % 2 == 1 && q % 2 == 1 {
        q + 1
    } else {
        q
    }
}

/// Computes Python's `round()` (half to even) of a non-negative float, as open_clip's
/// `ResizeKeepRatio` does for the resized size.
pub(crate) fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (r - x).abs() == 0.5 && r % 2.0 != 0.0 {
        r - (r - x).signum()
    } else {
        r
    }
}

/// One output sample's window of source samples and its fixed-point weights.
struct Taps {
    start: usize,
    weights: Vec<i32>,
}

/// Computes Pillow's coefficients for one axis, for the output indices in `range` only.
fn taps(
    in_size: usize,
    out_size: usize,
    filter: Filter,
    range: std::ops::Range<usize>,
) -> Vec<Taps> {
    // Pillow receives the source box as C floats and subtracts them in float precision.
    let scale = f64::from(in_size as f32) / out_size as f64;
    let filterscale = if scale < 1.0 { 1.0 } else { scale };
    let support = filter.support() * filterscale;
    let ss = 1.0 / filterscale;
    let mut out = Vec::with_capacity(range.len());
    let mut weights_f = Vec::new();
    for xx in range {
        let center = (xx as f64 + 0.5) * scale;
        // C casts truncate toward zero; the clamp makes the sign of that truncation irrelevant.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).clamp(0, in_size as i64) as usize;
        let count = xmax.saturating_sub(xmin);
        weights_f.clear();
        let mut ww = 0.0;
        for x in 0..count {
            let w = filter.eval((((x + xmin) as f64) - center + 0.5) * ss);
            weights_f.push(w);
            ww += w;
        }
        let unit = f64::from(1u32 << PRECISION_BITS);
        let weights = weights_f
            .iter()
            .map(|&w| {
                let k = if ww != 0.0 { w / ww } else { w };
                if k < 0.0 {
                    (-0.5 + k * unit) as i32
                } else {
                    (0.5 + k * unit) as i32
                }
            })
            .collect();
        out.push(Taps {
            start: xmin,
            weights,
        });
    }
    out
}

/// Rounds a fixed-point sum (which already includes the +0.5 bias) to a clipped 8-bit value, as
/// Pillow's `clip8` does: an arithmetic shift (floor), then a clamp to 0..=255.
#[inline]
fn clip8(sum: i32) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Computes Pillow's `MULDIV255(a, b)`: a * b / 255 rounded, with shifts.
#[inline]
fn muldiv255(a: u8, b: u8) -> u8 {
    let t = u32::from(a) * u32::from(b) + 128;
    (((t >> 8) + t) >> 8) as u8
}

/// Applies Pillow's RGBA -> RGBa (and LA -> La) conversion: colour channels times alpha.
fn premultiply_row(row: &[u8], channels: usize, out: &mut [u8]) {
    for (src, dst) in row
        .chunks_exact(channels)
        .zip(out.chunks_exact_mut(channels))
    {
        let alpha = src[channels - 1];
        for c in 0..channels - 1 {
            dst[c] = muldiv255(src[c], alpha);
        }
        dst[channels - 1] = alpha;
    }
}

/// Applies Pillow's RGBa -> RGBA (and La -> LA) conversion: colour channels divided by alpha,
/// truncated and clipped. Pixels with alpha 0 or 255 keep their values.
pub(crate) fn unpremultiply_in_place(data: &mut [u8], channels: usize) {
    for px in data.chunks_exact_mut(channels) {
        let alpha = u32::from(px[channels - 1]);
        if alpha == 0 || alpha == 255 {
            continue;
        }
        for v in &mut px[..channels - 1] {
            *v = ((255 * u32::from(*v)) / alpha).min(255) as u8;
        }
    }
}

/// Resizes `src` to `out_w` x `out_h` and returns only the pixels of `window`, which must lie
/// inside the resized image, interleaved with `src.channels` channels.
///
/// `premultiply` selects Pillow's alpha handling: the last channel is alpha, colour is multiplied
/// by it before filtering, and the result is returned still premultiplied. The caller undoes that
/// once, after cropping, with [`unpremultiply_in_place`]. [`Sampling::Nearest`] ignores the flag,
/// as Pillow never premultiplies for nearest neighbour.
///
/// When both output sizes equal the source sizes the caller must not call this: Pillow skips such
/// a resize, including the premultiplication round trip, which loses precision.
pub(crate) fn resize_window(
    src: &Pixels<'_>,
    out_w: usize,
    out_h: usize,
    window: Window,
    sampling: Sampling,
    premultiply: bool,
) -> Vec<u8> {
    match sampling {
        Sampling::Nearest => nearest_window(src, out_w, out_h, window),
        Sampling::Filtered(filter) => {
            filtered_window(src, out_w, out_h, window, filter, premultiply)
        }
    }
}

fn filtered_window(
    src: &Pixels<'_>,
    out_w: usize,
    out_h: usize,
    window: Window,
    filter: Filter,
    premultiply: bool,
) -> Vec<u8> {
    let ch = src.channels;
    let need_horizontal = out_w != src.width;
    let need_vertical = out_h != src.height;
    let win_w = window.width();

    // Vertical taps decide which source rows the horizontal pass must produce.
    let vtaps = if need_vertical {
        taps(src.height, out_h, filter, window.y0..window.y1)
    } else {
        Vec::new()
    };
    let (row_first, row_last) = if need_vertical {
        let first = vtaps.iter().map(|t| t.start).min().unwrap_or(0);
        let last = vtaps
            .iter()
            .map(|t| t.start + t.weights.len())
            .max()
            .unwrap_or(0);
        (first, last)
    } else {
        (window.y0, window.y1)
    };

    // Horizontal pass (or a plain column copy when the width does not change) over the needed
    // rows, with premultiplication applied to each source row on the way in.
    let htaps = if need_horizontal {
        taps(src.width, out_w, filter, window.x0..window.x1)
    } else {
        Vec::new()
    };
    let src_stride = src.width * ch;
    let mut temp = vec![0u8; (row_last - row_first) * win_w * ch];
    let mut premul_row = if premultiply {
        vec![0u8; src_stride]
    } else {
        Vec::new()
    };
    for (y, temp_row) in (row_first..row_last).zip(temp.chunks_exact_mut(win_w * ch)) {
        let mut row = &src.data[y * src_stride..(y + 1) * src_stride];
        if premultiply {
            premultiply_row(row, ch, &mut premul_row);
            row = &premul_row;
        }
        if need_horizontal {
            match ch {
                1 => horizontal_row::<1>(row, &htaps, temp_row),
                2 => horizontal_row::<2>(row, &htaps, temp_row),
                3 => horizontal_row::<3>(row, &htaps, temp_row),
                _ => horizontal_row::<4>(row, &htaps, temp_row),
            }
        } else {
            temp_row.copy_from_slice(&row[window.x0 * ch..window.x1 * ch]);
        }
    }
    if !need_vertical {
        return temp;
    }

    // Vertical pass over the horizontally resampled rows.
    let stride = win_w * ch;
    let mut out = vec![0u8; window.height() * stride];
    let mut acc = vec![0i32; stride];
    for (t, out_row) in vtaps.iter().zip(out.chunks_exact_mut(stride)) {
        acc.fill(1 << (PRECISION_BITS - 1));
        for (i, &k) in t.weights.iter().enumerate() {
            let r = t.start + i - row_first;
            let row = &temp[r * stride..(r + 1) * stride];
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += i32::from(v) * k;
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    out
}

/// Computes one row of the horizontal pass for `C` interleaved channels. Sums fit in `i32` as in
/// Pillow: the absolute bicubic weights of a tap set add up to about 1.27 at most (measured over
/// all sizes up to 60 -> 120, edges included), and 1.27 x 255 x 2^22 is 63% of `i32::MAX`.
fn horizontal_row<const C: usize>(row: &[u8], taps: &[Taps], out: &mut [u8]) {
    for (t, out_px) in taps.iter().zip(out.chunks_exact_mut(C)) {
        let mut sums = [1i32 << (PRECISION_BITS - 1); C];
        let src = &row[t.start * C..(t.start + t.weights.len()) * C];
        for (px, &k) in src.chunks_exact(C).zip(&t.weights) {
            for c in 0..C {
                sums[c] += i32::from(px[c]) * k;
            }
        }
        for c in 0..C {
            out_px[c] = clip8(sums[c]);
        }
    }
}

/// Returns the source index of each output index in `range` for nearest-neighbour scaling, as
/// Pillow's affine scaling computes it. It starts at half a step, adds the step once per output
/// pixel in double precision (so rounding follows Pillow's) and truncates. `None` means outside
/// the source, which Pillow fills with zeros.
///
/// NOTE: past 2^24 output pixels, reachable only with absurd aspect ratios, the position is
/// computed directly instead of by accumulation. It may then differ from Pillow by one source
/// pixel where a position lands within rounding error of an integer.
fn nearest_indices(
    in_size: usize,
    out_size: usize,
    range: std::ops::Range<usize>,
) -> Vec<Option<usize>> {
    let step = f64::from(in_size as f32) / out_size as f64;
    let to_index = |pos: f64| {
        let i = if pos < 0.0 { -1 } else { pos as i64 };
        if i >= 0 && (i as usize) < in_size {
            Some(i as usize)
        } else {
            None
        }
    };
    if range.end > 1 << 24 {
        return range
            .map(|x| to_index(step * 0.5 + x as f64 * step))
            .collect();
    }
    let mut pos = step * 0.5;
    let mut idx = Vec::with_capacity(range.len());
    for x in 0..range.end {
        if x >= range.start {
            idx.push(to_index(pos));
        }
        pos += step;
    }
    idx
}

fn nearest_window(src: &Pixels<'_>, out_w: usize, out_h: usize, window: Window) -> Vec<u8> {
    let ch = src.channels;
    let xs = nearest_indices(src.width, out_w, window.x0..window.x1);
    let ys = nearest_indices(src.height, out_h, window.y0..window.y1);
    let stride = window.width() * ch;
    let mut out = vec![0u8; window.height() * stride];
    for (out_row, sy) in out.chunks_exact_mut(stride).zip(&ys) {
        let Some(sy) = sy else { continue };
        let row = &src.data[sy * src.width * ch..(sy + 1) * src.width * ch];
        for (out_px, sx) in out_row.chunks_exact_mut(ch).zip(&xs) {
            if let Some(sx) = sx {
                out_px.copy_from_slice(&row[sx * ch..(sx + 1) * ch]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_rounding() {
        assert_eq!(half_round_even(5), 2); // round(2.5) == 2
        assert_eq!(half_round_even(7), 4); // round(3.5) == 4
        assert_eq!(half_round_even(6), 3);
        assert_eq!(round_half_even(0.5), 0.0);
        assert_eq!(round_half_even(1.5), 2.0);
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(2.4999), 2.0);
        assert_eq!(round_half_even(63.7), 64.0);
    }

    #[test]
    fn same_size_filter_is_identity() {
        // Pillow skips a pass whose size does not change; the taps would be the identity anyway.
        let t = taps(10, 10, Filter::Bicubic, 0..10);
        for (i, t) in t.iter().enumerate() {
            let total: i32 = t.weights.iter().sum();
            assert_eq!(total, 1 << PRECISION_BITS);
            assert_eq!(t.weights[i - t.start], 1 << PRECISION_BITS);
        }
    }

    #[test]
    fn premultiply_round_trip_matches_pillow_rules() {
        let mut px = [200u8, 100, 50, 128];
        let mut pre = [0u8; 4];
        premultiply_row(&px, 4, &mut pre);
        assert_eq!(pre, [100, 50, 25, 128]);
        px = pre;
        unpremultiply_in_place(&mut px, 4);
        assert_eq!(px, [199, 99, 49, 128]);
    }
}
