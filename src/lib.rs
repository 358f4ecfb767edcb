//! coca-wgpu: CoCa (Contrastive Captioner) from open_clip, computed by WGSL kernels on wgpu.
//!
//! The crate loads open_clip CoCa checkpoints (`open_clip_config.json` plus safetensors weights
//! with open_clip's tensor names) and reproduces open_clip 3.3.0's image and text features,
//! decoder logits and generated captions. See `ARCHITECTURE.md` for how the pieces fit.

pub mod api;
pub mod coca;
pub mod error;
pub mod generate;
pub mod gpu;
pub mod graph;
pub mod model;
pub mod ops;
pub mod preprocess;
pub mod synth;
mod timing;
pub mod tokenizer;

pub use api::Caption;
pub use coca::{Coca, ForwardOutput, Generation, GenerationStats};
pub use error::{Error, Result};
pub use generate::{GenerationConfig, GenerationType};
pub use model::{CocaConfig, CocaModel};
pub use gpu::{GpuContext, GpuOptions};
