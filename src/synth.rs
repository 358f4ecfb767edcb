//! Deterministic synthetic weights, generated identically by `scripts/synth_weights.py`, so that
//! parity tests can run full-size architectures such as `coca_ViT-B-32` against open_clip without
//! shipping a gigabyte of weights.
//!
//! Element i (row-major) of tensor `name` is `center + scale * v` rounded once to f32, where
//! `v = 2 * (splitmix64(fnv1a64(name) + i) >> 40) / 2^24 - 1` lies in [-1, 1) and the center and
//! scale depend on the tensor's name and shape (see [`init_for`]).

/// FNV-1a, 64-bit.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf29ce484222325;
    for &b in bytes {
        hash ^= b as u64;
        hash = hash.wrapping_mul(0x100000001b3);
    }
    hash
}

/// SplitMix64's output function applied to `x`.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
    z ^ (z >> 31)
}

/// Value distribution of a tensor: a constant, or `center + scale * v` with v in [-1, 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Every element is this value.
    Constant(f64),
    /// `center + scale * v`, with v drawn from the name-seeded sequence in [-1, 1).
    Uniform {
        /// Middle of the value range.
        center: f64,
        /// Half-width of the value range.
        scale: f64,
    },
}

/// Returns the initialization rule for a tensor of open_clip's state dict.
pub fn init_for(name: &str, shape: &[usize]) -> Init {
    if name == "logit_scale" {
        return Init::Constant((1.0f64 / 0.07).ln());
    }
    if name == "logit_bias" {
        return Init::Constant(-10.0);
    }
    let parts: Vec<&str> = name.split('.').collect();
    let is_norm = parts.len() >= 2 && parts[parts.len() - 2].starts_with("ln_");
    if is_norm {
        return if name.ends_with(".weight") {
            Init::Uniform { center: 1.0, scale: 0.1 }
        } else {
            Init::Uniform { center: 0.0, scale: 0.05 }
        };
    }
    if shape.len() <= 1 {
        return Init::Uniform { center: 0.0, scale: 0.05 };
    }
    let fan_in = if matches!(name, "visual.proj" | "text.text_projection" | "text_decoder.text_projection") {
        shape[0]
    } else {
        shape[1..].iter().product()
    };
    Init::Uniform { center: 0.0, scale: 3.0f64.sqrt() / (fan_in as f64).sqrt() }
}

/// Generates `count` values of tensor `name` under the rule `init`.
pub fn generate(name: &str, count: usize, init: Init) -> Vec<f32> {
    match init {
        Init::Constant(value) => vec![value as f32; count],
        Init::Uniform { center, scale } => {
            let seed = fnv1a64(name.as_bytes());
            (0..count as u64)
                .map(|i| {
                    let z = splitmix64(seed.wrapping_add(i));
                    let u = (z >> 40) as f64 / (1u64 << 24) as f64;
                    (center + scale * (2.0 * u - 1.0)) as f32
                })
                .collect()
        }
    }
}

/// Generates the synthetic tensor `name` of `shape` under open_clip's naming rules.
pub fn tensor(name: &str, shape: &[usize]) -> Vec<f32> {
    generate(name, shape.iter().product(), init_for(name, shape))
}
