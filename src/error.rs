//! The crate's error type. Every variant's message names what failed and, where there is one, the fix.

use std::path::PathBuf;

/// Errors returned by coca-wgpu.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// wgpu found no adapter on any backend, and no backend was requested.
    #[error(
        "no GPU adapter found. On Linux without a GPU, install Mesa's software Vulkan driver \
         (Debian/Ubuntu: `apt-get install mesa-vulkan-drivers libvulkan1`); in a browser, enable WebGPU"
    )]
    NoAdapter,

    /// wgpu found no adapter on the backends requested through
    /// [`GpuOptions::backends`](crate::gpu::GpuOptions::backends) or `WGPU_BACKEND`.
    #[error("no GPU adapter found for the requested backend(s) {backends}; choose another backend or leave it unset (--backend, WGPU_BACKEND)")]
    NoAdapterForBackend {
        /// Lower-case names of the requested backends, comma separated (e.g. "vulkan, metal").
        backends: String,
    },

    /// The adapter rejected the device request.
    #[error("failed to create the GPU device on adapter `{adapter}`: {reason}")]
    DeviceCreation {
        /// Name of the adapter.
        adapter: String,
        /// wgpu's error message.
        reason: String,
    },

    /// A GPU operation failed at run time, e.g. waiting for the device or mapping a readback buffer.
    #[error("GPU operation failed: {0}")]
    Gpu(String),

    /// A buffer or dispatch exceeds a limit of the device.
    #[error(
        "{what} needs a {bytes}-byte GPU buffer, but this device allows at most {limit} bytes per \
         {limit_name}; use a smaller batch or model, or a GPU with larger limits"
    )]
    BufferTooLarge {
        /// The buffer or dispatch, e.g. a weight name with its shape.
        what: String,
        /// Requested size in bytes, or the largest workgroup count for a dispatch.
        bytes: u64,
        /// The device's limit, in the same unit as `bytes`.
        limit: u64,
        /// Description of the limit with its `wgpu::Limits` field name.
        limit_name: &'static str,
    },

    /// The model config is malformed or describes an architecture this crate does not implement.
    #[error("invalid model config: {0}")]
    Config(String),

    /// The checkpoint cannot be read or does not match the config.
    #[error("invalid weights in {file}: {reason}")]
    Weights {
        /// Source of the weights, usually a file name.
        file: String,
        /// Description of the problem, e.g. a missing tensor with its expected shape.
        reason: String,
    },

    /// A caller-supplied argument is out of range or inconsistent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Operand shapes do not fit a GPU op, or a graph is built inconsistently.
    #[error("shape mismatch in {op}: {reason}")]
    Shape {
        /// Name of the op, e.g. `linear` or `attention`.
        op: &'static str,
        /// The mismatching tensors and shapes.
        reason: String,
    },

    /// Reading or writing a file or stream failed.
    #[error("failed to read or write {path}: {source}")]
    Io {
        /// The file, or a label such as "standard output".
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// Loading the tokenizer, tokenizing or decoding failed.
    #[error(transparent)]
    Tokenizer(#[from] crate::tokenizer::TokenizerError),

    /// Decoding or preprocessing an image failed.
    #[error(transparent)]
    Preprocess(#[from] crate::preprocess::PreprocessError),

    /// Decoding or preprocessing a named image failed.
    #[error("{path}: {source}")]
    Image {
        /// Path or other name of the image, as shown in the message.
        path: String,
        /// The preprocessing error.
        source: crate::preprocess::PreprocessError,
    },

    #[cfg(all(feature = "hub", not(target_arch = "wasm32")))]
    #[error(transparent)]
    /// A Hugging Face Hub download failed.
    Hub(#[from] crate::hub::HubError),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with the path (or stream label) it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn shape(op: &'static str, reason: impl Into<String>) -> Self {
        Error::Shape { op, reason: reason.into() }
    }
}
