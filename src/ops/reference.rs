//! Plain CPU versions of the GPU ops, written for clarity, used by the kernel tests.

/// `y[m, n] = sum_k x[m, k] w[n, k] + bias[n]`, with `w` in nn.Linear's [out, in] layout. It
/// applies no activation and adds no residual, so the tests apply those themselves.
pub fn linear(x: &[f32], w: &[f32], bias: Option<&[f32]>, m: usize, n: usize, k: usize) -> Vec<f32> {
    let mut y = vec![0.0f32; m * n];
    for row in 0..m {
        for col in 0..n {
            let mut sum = 0.0f64;
            for i in 0..k {
                sum += x[row * k + i] as f64 * w[col * k + i] as f64;
            }
            y[row * n + col] = sum as f32 + bias.map_or(0.0, |b| b[col]);
        }
    }
    y
}

/// GELU with the exact error function, as torch.nn.GELU().
pub fn gelu(x: f32) -> f32 {
    let x = x as f64;
    (0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))) as f32
}

/// open_clip's QuickGELU: x * sigmoid(1.702 x).
pub fn quick_gelu(x: f32) -> f32 {
    x / (1.0 + (-1.702 * x).exp())
}

/// erf in f64: ±1 for |x| >= 6, otherwise the series below, summed until a term falls below
/// 1e-17 of the sum.
pub fn erf(x: f64) -> f64 {
    if x.abs() >= 6.0 {
        return x.signum();
    }
    // erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n (2^n x^(2n+1)) / (1*3*...*(2n+1)), converges for all x.
    let mut term = x;
    let mut sum = x;
    let x2 = x * x;
    let mut n = 0.0;
    while term.abs() > 1e-17 * sum.abs() {
        n += 1.0;
        term *= 2.0 * x2 / (2.0 * n + 1.0);
        sum += term;
    }
    2.0 / std::f64::consts::PI.sqrt() * (-x2).exp() * sum
}

/// Layer normalization over rows of length `dim`.
pub fn layer_norm(x: &[f32], gamma: &[f32], beta: &[f32], dim: usize, eps: f32) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    for (row_in, row_out) in x.chunks(dim).zip(y.chunks_mut(dim)) {
        let mean = row_in.iter().map(|&v| v as f64).sum::<f64>() / dim as f64;
        let var = row_in.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / dim as f64;
        let inv = 1.0 / (var + eps as f64).sqrt();
        for i in 0..dim {
            row_out[i] = ((row_in[i] as f64 - mean) * inv * gamma[i] as f64 + beta[i] as f64) as f32;
        }
    }
    y
}

/// Multi-head attention on contiguous tensors: q [B, Lq, H*D], k and v [B, Lk, H*D].
/// `visible(b, i, j)` returns whether query i of batch b may attend to key j.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    batch: usize,
    lq: usize,
    lk: usize,
    heads: usize,
    head_dim: usize,
    visible: impl Fn(usize, usize, usize) -> bool,
) -> Vec<f32> {
    let width = heads * head_dim;
    let scale = 1.0 / (head_dim as f64).sqrt();
    let mut out = vec![0.0f32; batch * lq * width];
    for b in 0..batch {
        for h in 0..heads {
            for i in 0..lq {
                let q_row = &q[(b * lq + i) * width + h * head_dim..][..head_dim];
                let scores: Vec<Option<f64>> = (0..lk)
                    .map(|j| {
                        visible(b, i, j).then(|| {
                            let k_row = &k[(b * lk + j) * width + h * head_dim..][..head_dim];
                            q_row.iter().zip(k_row).map(|(a, c)| *a as f64 * *c as f64).sum::<f64>() * scale
                        })
                    })
                    .collect();
                let max = scores.iter().flatten().cloned().fold(f64::NEG_INFINITY, f64::max);
                let weights: Vec<f64> = scores.iter().map(|s| s.map_or(0.0, |s| (s - max).exp())).collect();
                let total: f64 = weights.iter().sum();
                for d in 0..head_dim {
                    let mut acc = 0.0;
                    for j in 0..lk {
                        acc += weights[j] * v[(b * lk + j) * width + h * head_dim + d] as f64;
                    }
                    out[(b * lq + i) * width + h * head_dim + d] = (acc / total) as f32;
                }
            }
        }
    }
    out
}

/// x / max(||x||, 1e-12) per row.
pub fn l2_normalize(x: &[f32], dim: usize) -> Vec<f32> {
    x.chunks(dim)
        .flat_map(|row| {
            let norm = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt().max(1e-12);
            row.iter().map(move |&v| (v as f64 / norm) as f32)
        })
        .collect()
}

/// Computes a stride-`patch` convolution without bias: image [B, 3, S, S], weight [W, 3, P, P] -> [B, (S/P)^2, W].
pub fn patch_embed(image: &[f32], weight: &[f32], batch: usize, size: usize, patch: usize, width: usize) -> Vec<f32> {
    let grid = size / patch;
    let mut out = vec![0.0f32; batch * grid * grid * width];
    for b in 0..batch {
        for gy in 0..grid {
            for gx in 0..grid {
                for o in 0..width {
                    let mut sum = 0.0f64;
                    for c in 0..3 {
                        for ky in 0..patch {
                            for kx in 0..patch {
                                let pixel = image[((b * 3 + c) * size + gy * patch + ky) * size + gx * patch + kx];
                                let w = weight[((o * 3 + c) * patch + ky) * patch + kx];
                                sum += pixel as f64 * w as f64;
                            }
                        }
                    }
                    out[((b * grid * grid) + gy * grid + gx) * width + o] = sum as f32;
                }
            }
        }
    }
    out
}

/// Returns the `k` largest values of each row with their indices, lower index first on ties.
pub fn top_k(logits: &[f32], vocab: usize, k: usize) -> Vec<Vec<(f32, u32)>> {
    logits
        .chunks(vocab)
        .map(|row| {
            let mut indexed: Vec<(f32, u32)> = row.iter().enumerate().map(|(i, &v)| (v, i as u32)).collect();
            indexed.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            indexed.truncate(k);
            indexed
        })
        .collect()
}
