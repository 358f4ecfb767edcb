//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use coca_wgpu::{GpuContext, GpuOptions};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn context() -> GpuContext {
    pollster::block_on(GpuContext::new(&GpuOptions::default())).expect("a GPU adapter (install mesa-vulkan-drivers)")
}

/// A tensor of an expected-values file, with f32 or i64 data widened to f64.
pub struct Expected {
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
}

impl Expected {
    pub fn f32(&self) -> Vec<f32> {
        self.values.iter().map(|v| *v as f32).collect()
    }

    pub fn rows_u32(&self) -> Vec<Vec<u32>> {
        let width = *self.shape.last().unwrap();
        self.values.chunks(width).map(|r| r.iter().map(|v| *v as u32).collect()).collect()
    }
}

pub fn load_expected(path: &Path) -> HashMap<String, Expected> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            let data = view.data();
            let values: Vec<f64> = match view.dtype() {
                safetensors::Dtype::F32 => data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect(),
                safetensors::Dtype::I64 => data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64).collect(),
                other => panic!("{name}: unexpected dtype {other:?}"),
            };
            (name.to_string(), Expected { shape: view.shape().to_vec(), values })
        })
        .collect()
}

/// Asserts that the largest absolute difference is at most `tolerance`, naming where it is.
pub fn assert_close(label: &str, got: &[f32], expected: &[f32], tolerance: f32) {
    assert_eq!(got.len(), expected.len(), "{label}: length");
    let mut worst = (0usize, 0.0f32);
    for (i, (a, b)) in got.iter().zip(expected).enumerate() {
        let error = (a - b).abs();
        if error > worst.1 || error.is_nan() {
            worst = (i, error);
        }
    }
    assert!(
        worst.1 <= tolerance,
        "{label}: max abs error {} at index {} (got {}, expected {})",
        worst.1,
        worst.0,
        got[worst.0],
        expected[worst.0]
    );
}

/// Builds the generation options that a fixture recorded as `generate` arguments. Fixtures
/// without `beam_scoring` come from open_clip 3.3.0's `generate`, which sums raw logits.
pub fn generation_config(args: &serde_json::Value) -> coca_wgpu::GenerationConfig {
    use coca_wgpu::generate::{BeamScoring, EarlyStopping, GenerationType};
    let number = |key: &str| args[key].as_u64().map(|v| v as usize);
    let mut config = coca_wgpu::GenerationConfig { beam_scoring: BeamScoring::RawLogits, ..Default::default() };
    config.generation_type = args["generation_type"].as_str().unwrap_or("beam_search").parse::<GenerationType>().unwrap();
    config.seq_len = number("seq_len").unwrap_or(config.seq_len);
    config.min_seq_len = number("min_seq_len").unwrap_or(config.min_seq_len);
    config.max_seq_len = number("max_seq_len").unwrap_or(config.max_seq_len);
    config.top_k = number("top_k").unwrap_or(config.top_k);
    config.num_beams = number("num_beams").unwrap_or(config.num_beams);
    config.num_beam_groups = number("num_beam_groups").unwrap_or(config.num_beam_groups);
    config.num_return_sequences = number("num_return_sequences").unwrap_or(1);
    if let Some(v) = args["top_p"].as_f64() {
        config.top_p = v as f32;
    }
    if let Some(v) = args["repetition_penalty"].as_f64() {
        config.repetition_penalty = v as f32;
    }
    if let Some(v) = args["diversity_penalty"].as_f64() {
        config.diversity_penalty = v as f32;
    }
    if let Some(v) = args["length_penalty"].as_f64() {
        config.length_penalty = v;
    }
    if let Some(v) = args["fixed_output_length"].as_bool() {
        config.fixed_output_length = v;
    }
    if let Some(v) = args["beam_scoring"].as_str() {
        config.beam_scoring = v.parse().unwrap();
    }
    config.early_stopping = match &args["early_stopping"] {
        serde_json::Value::Bool(true) => EarlyStopping::Immediate,
        serde_json::Value::String(s) => s.parse().unwrap(),
        _ => EarlyStopping::Heuristic,
    };
    config
}

/// Returns the `prefix` token ids of a fixture's arguments (after the start token), if any.
pub fn prefix(args: &serde_json::Value) -> Option<Vec<u32>> {
    args["prefix"].as_array().map(|p| p.iter().map(|t| t.as_u64().unwrap() as u32).collect())
}

pub fn token_rows(value: &serde_json::Value) -> Vec<Vec<u32>> {
    value.as_array().unwrap().iter().map(|row| row.as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect()).collect()
}

/// Runs the `coca` command line; returns (success, standard output, standard error).
pub fn run_coca(args: &[&str]) -> (bool, String, String) {
    let binary = option_env!("CARGO_BIN_EXE_coca").expect("the coca binary (build the tests with the `cli` feature)");
    // Mesa's Vulkan loader complains on standard error when XDG_RUNTIME_DIR is unset.
    let output = std::process::Command::new(binary)
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("run coca");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
