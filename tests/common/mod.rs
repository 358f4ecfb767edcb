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
