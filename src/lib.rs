//! coca-wgpu: CoCa (Contrastive Captioner) from open_clip, computed by WGSL kernels on wgpu.
//!
//! The crate loads open_clip CoCa checkpoints (`open_clip_config.json` plus safetensors weights
//! with open_clip's tensor names) and reproduces open_clip 3.3.0's image and text features,
//! decoder logits and generated captions. See `ARCHITECTURE.md` for how the pieces fit.
//!
//! ```no_run
//! use coca_wgpu::{Coca, GenerationConfig, GpuContext, GpuOptions};
//!
//! fn main() -> coca_wgpu::Result<()> {
//!     let ctx = pollster::block_on(GpuContext::new(&GpuOptions::default()))?;
//!     let config = std::fs::read_to_string("model/open_clip_config.json").unwrap();
//!     let weights = std::fs::read("model/open_clip_model.safetensors").unwrap();
//!     let mut coca = Coca::from_bytes(ctx, &config, &weights, "open_clip_model.safetensors")?;
//!
//!     let image = std::fs::read("photo.jpg").unwrap();
//!     let captions = pollster::block_on(coca.caption(&[image], &GenerationConfig::default()))?;
//!     println!("{}", captions[0].text);
//!     Ok(())
//! }
//! ```

#![warn(missing_docs)]

pub mod api;
pub mod coca;
pub mod error;
pub mod generate;
pub mod gpu;
pub mod graph;
#[cfg(all(feature = "hub", not(target_arch = "wasm32")))]
pub mod hub;
pub mod model;
pub mod ops;
pub mod preprocess;
pub mod synth;
mod timing;
pub mod tokenizer;

pub use api::Caption;
pub use coca::{Coca, ForwardOutput, Generation, GenerationStats};
pub use error::{Error, Result};
pub use generate::{BeamScoring, EarlyStopping, GenerationConfig, GenerationType};
pub use model::{CocaConfig, CocaModel};
pub use gpu::{GpuContext, GpuOptions};

#[cfg(target_arch = "wasm32")]
pub mod wasm;
