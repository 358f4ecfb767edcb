//! Checkpoint tensors on the host: reading safetensors files and torch.save archives (f32, f16 or
//! bf16), synthesizing weights for tests, and checking names and shapes against the architecture.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::model::config::Dims;

/// A tensor in f32 on the host.
#[derive(Clone, Debug)]
pub struct HostTensor {
    /// Dimensions, outermost first, and empty for a scalar.
    pub shape: Vec<usize>,
    /// Elements in row-major order.
    pub data: Vec<f32>,
}

/// A checkpoint's tensors by open_clip name.
#[derive(Default)]
pub struct HostWeights {
    /// Tensors by state-dict name, e.g. `visual.transformer.resblocks.0.attn.in_proj_weight`.
    pub tensors: HashMap<String, HostTensor>,
    /// Source of the tensors (a file name), for error messages.
    pub source: String,
}

impl HostWeights {
    /// Reads a safetensors file's bytes; f16 and bf16 tensors are widened to f32.
    pub fn from_safetensors(bytes: &[u8], source: &str) -> Result<HostWeights> {
        let invalid = |reason: String| Error::Weights { file: source.to_string(), reason };
        let file = safetensors::SafeTensors::deserialize(bytes).map_err(|e| {
            invalid(format!("not a readable safetensors file ({e}); the file may be truncated or of another format"))
        })?;
        let mut tensors = HashMap::new();
        for (name, view) in file.tensors() {
            let data = view.data();
            let values: Vec<f32> = match view.dtype() {
                safetensors::Dtype::F32 => data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
                safetensors::Dtype::F16 => {
                    data.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
                }
                safetensors::Dtype::BF16 => {
                    data.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
                }
                other => {
                    return Err(invalid(format!("tensor `{name}` has dtype {other:?}; only F32, F16 and BF16 are supported")))
                }
            };
            tensors.insert(name.to_string(), HostTensor { shape: view.shape().to_vec(), data: values });
        }
        Ok(HostWeights { tensors, source: source.to_string() })
    }

    /// Reads a `torch.save` archive's bytes, such as open_clip's `open_clip_pytorch_model.bin`,
    /// without running its pickle: only dictionaries of tensors are accepted, unwrapped from a
    /// `state_dict` entry and stripped of `module.` prefixes as open_clip does. f16 and bf16
    /// tensors are widened to f32.
    pub fn from_pytorch(bytes: &[u8], source: &str) -> Result<HostWeights> {
        let tensors = crate::model::pytorch::read_state_dict(bytes)
            .map_err(|reason| Error::Weights { file: source.to_string(), reason })?;
        Ok(HostWeights { tensors: tensors.into_iter().collect(), source: source.to_string() })
    }

    /// Synthetic weights from [`crate::synth`] for every tensor of the architecture.
    pub fn synthesized(dims: &Dims, logit_bias: bool) -> HostWeights {
        let tensors = dims
            .expected_tensors(logit_bias)
            .into_iter()
            .map(|(name, shape)| {
                let data = crate::synth::tensor(&name, &shape);
                (name, HostTensor { shape, data })
            })
            .collect();
        HostWeights { tensors, source: "synthesized weights".into() }
    }

    /// Checks that every tensor of the architecture is present with its shape and that nothing
    /// else is. Returns whether the checkpoint has a `logit_bias`.
    pub fn validate(&self, dims: &Dims) -> Result<bool> {
        let has_bias = self.tensors.contains_key("logit_bias");
        let expected = dims.expected_tensors(has_bias);
        let invalid = |reason: String| Error::Weights { file: self.source.clone(), reason };
        for (name, shape) in &expected {
            let Some(tensor) = self.tensors.get(name) else {
                return Err(invalid(format!(
                    "missing tensor `{name}` (expected shape {shape:?}); the file does not match this config"
                )));
            };
            let scalar_ok = shape.is_empty() && tensor.shape.iter().product::<usize>() == 1;
            if &tensor.shape != shape && !scalar_ok {
                return Err(invalid(format!(
                    "tensor `{name}` has shape {:?}, the config expects {shape:?}; check that the config matches the weights",
                    tensor.shape
                )));
            }
        }
        if self.tensors.len() > expected.len() {
            let known: std::collections::HashSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
            let mut extra: Vec<&str> = self.tensors.keys().map(|k| k.as_str()).filter(|k| !known.contains(k)).collect();
            extra.sort();
            return Err(invalid(format!(
                "unexpected tensor(s) {} not in the CoCa architecture of this config; check that the config matches the weights",
                extra.iter().take(5).map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(has_bias)
    }

    /// Returns the tensor `name`, or an [`Error::Weights`] that names it when it is missing.
    pub fn get(&self, name: &str) -> Result<&HostTensor> {
        self.tensors.get(name).ok_or_else(|| Error::Weights { file: self.source.clone(), reason: format!("missing tensor `{name}`") })
    }
}

/// Transposes a row-major [rows, cols] matrix.
pub fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}
