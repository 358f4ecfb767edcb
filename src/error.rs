//! The crate's error type. Every variant's message names what failed and, where there is one, the fix.

use std::path::PathBuf;

/// Errors returned by coca-wgpu.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no GPU adapter found. On Linux without a GPU, install Mesa's software Vulkan driver \
         (Debian/Ubuntu: `apt-get install mesa-vulkan-drivers libvulkan1`); in a browser, enable WebGPU"
    )]
    NoAdapter,

    #[error("no GPU adapter found for the requested backend(s) {backends}; choose another backend or leave it unset (--backend, WGPU_BACKEND)")]
    NoAdapterForBackend { backends: String },

    #[error("failed to create the GPU device on adapter `{adapter}`: {reason}")]
    DeviceCreation { adapter: String, reason: String },

    #[error("GPU operation failed: {0}")]
    Gpu(String),

    #[error(
        "{what} needs a {bytes}-byte GPU buffer, but this device allows at most {limit} bytes per \
         {limit_name}; use a smaller batch or model, or a GPU with larger limits"
    )]
    BufferTooLarge { what: String, bytes: u64, limit: u64, limit_name: &'static str },

    #[error("invalid model config: {0}")]
    Config(String),

    #[error("invalid weights in {file}: {reason}")]
    Weights { file: String, reason: String },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    #[error("shape mismatch in {op}: {reason}")]
    Shape { op: &'static str, reason: String },

    #[error("failed to read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error(transparent)]
    Tokenizer(#[from] crate::tokenizer::TokenizerError),

    #[error(transparent)]
    Preprocess(#[from] crate::preprocess::PreprocessError),

    #[error("{path}: {source}")]
    Image { path: String, source: crate::preprocess::PreprocessError },

    #[cfg(all(feature = "hub", not(target_arch = "wasm32")))]
    #[error(transparent)]
    Hub(#[from] crate::hub::HubError),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn shape(op: &'static str, reason: impl Into<String>) -> Self {
        Error::Shape { op, reason: reason.into() }
    }
}
