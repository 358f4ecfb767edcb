//! The WGSL kernels: which file and entry point each one is, its bind group layout and its
//! pipeline-overridable constants.

/// One binding of a kernel's bind group 0, in binding order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// A uniform buffer. A kernel's first one contains the op's parameters, and a second one
    /// contains the step uniform (the decode position).
    Uniform,
    /// A read-only storage buffer.
    Read,
    /// A read-write storage buffer, which the kernel writes.
    ReadWrite,
}

/// Activation fused into a linear layer's epilogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    /// The identity.
    None,
    /// GELU with the exact erf, as torch.nn.GELU().
    Gelu,
    /// x * sigmoid(1.702 x), as open_clip's QuickGELU.
    QuickGelu,
}

/// A compute pipeline: the entry point plus the override constants that specialize it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `linear_tiled`: a linear layer computed in 32 x 32 output tiles, for more than 8 rows.
    LinearTiled {
        /// Activation applied before the residual is added.
        activation: Activation,
        /// Whether a bias is added.
        bias: bool,
        /// Whether a residual tensor is added.
        residual: bool,
    },
    /// `linear_small_m`: a linear layer in blocks of 8 rows (up to 64 rows), which reads each
    /// weight once per block.
    LinearSmallM {
        /// Activation applied before the residual is added.
        activation: Activation,
        /// Whether a bias is added.
        bias: bool,
        /// Whether a residual tensor is added.
        residual: bool,
    },
    /// `layer_norm`: LayerNorm over the last dimension, one thread per row.
    LayerNorm,
    /// `attention_scores`: scaled q.k scores of every query and key, with masks applied.
    AttentionScores,
    /// `attention_output`: softmax of a row of scores and the weighted sum of the values.
    AttentionOutput,
    /// `embed_tokens`: token plus positional embedding, optionally with the class token appended.
    EmbedTokens,
    /// `im2col`: splits images into rows of patch pixels for the patch embedding.
    Im2col,
    /// `add_class_and_position`: prepends the class embedding and adds positional embeddings.
    AddClassAndPosition,
    /// `slice_rows`: copies a range of sequence positions.
    SliceRows,
    /// `kv_append`: writes one decode step's keys and values into a KV cache.
    KvAppend,
    /// `l2_normalize`: divides each row by its L2 norm, clamped to at least 1e-12.
    L2Normalize,
    /// `top_k`: the k best tokens of each row of logits, after the minimum-length mask and the
    /// repetition penalty.
    TopK,
}

use Binding::{Read, ReadWrite, Uniform};

impl Kernel {
    /// Returns the name of the WGSL file in `shaders/` that contains the kernel.
    pub fn shader_file(&self) -> &'static str {
        match self {
            Kernel::LinearTiled { .. } | Kernel::LinearSmallM { .. } => "linear.wgsl",
            Kernel::LayerNorm => "layer_norm.wgsl",
            Kernel::AttentionScores | Kernel::AttentionOutput => "attention.wgsl",
            Kernel::EmbedTokens | Kernel::Im2col | Kernel::AddClassAndPosition => "embedding.wgsl",
            Kernel::SliceRows | Kernel::KvAppend | Kernel::L2Normalize => "rows.wgsl",
            Kernel::TopK => "top_k.wgsl",
        }
    }

    /// Returns the WGSL source of [`Kernel::shader_file`], compiled into the crate.
    pub fn shader_source(&self) -> &'static str {
        match self.shader_file() {
            "linear.wgsl" => include_str!("../../shaders/linear.wgsl"),
            "layer_norm.wgsl" => include_str!("../../shaders/layer_norm.wgsl"),
            "attention.wgsl" => include_str!("../../shaders/attention.wgsl"),
            "embedding.wgsl" => include_str!("../../shaders/embedding.wgsl"),
            "rows.wgsl" => include_str!("../../shaders/rows.wgsl"),
            "top_k.wgsl" => include_str!("../../shaders/top_k.wgsl"),
            other => unreachable!("no shader source for {other}"),
        }
    }

    /// Returns the name of the kernel's entry point, also used as its pipeline label.
    pub fn entry_point(&self) -> &'static str {
        match self {
            Kernel::LinearTiled { .. } => "linear_tiled",
            Kernel::LinearSmallM { .. } => "linear_small_m",
            Kernel::LayerNorm => "layer_norm",
            Kernel::AttentionScores => "attention_scores",
            Kernel::AttentionOutput => "attention_output",
            Kernel::EmbedTokens => "embed_tokens",
            Kernel::Im2col => "im2col",
            Kernel::AddClassAndPosition => "add_class_and_position",
            Kernel::SliceRows => "slice_rows",
            Kernel::KvAppend => "kv_append",
            Kernel::L2Normalize => "l2_normalize",
            Kernel::TopK => "top_k",
        }
    }

    /// Returns the bind group layout: binding i of group 0 is `bindings()[i]`.
    pub fn bindings(&self) -> &'static [Binding] {
        match self {
            Kernel::LinearTiled { .. } | Kernel::LinearSmallM { .. } => &[Uniform, Read, Read, Read, Read, ReadWrite],
            Kernel::LayerNorm => &[Uniform, Read, Read, Read, ReadWrite],
            Kernel::AttentionScores => &[Uniform, Uniform, Read, Read, Read, Read, ReadWrite],
            Kernel::AttentionOutput => &[Uniform, Uniform, Read, Read, Read, ReadWrite],
            Kernel::EmbedTokens => &[Uniform, Uniform, Read, Read, Read, Read, ReadWrite],
            Kernel::Im2col => &[Uniform, Read, ReadWrite],
            Kernel::AddClassAndPosition => &[Uniform, Read, Read, Read, ReadWrite],
            Kernel::SliceRows => &[Uniform, Read, ReadWrite],
            Kernel::KvAppend => &[Uniform, Uniform, Read, ReadWrite],
            Kernel::L2Normalize => &[Uniform, Read, ReadWrite],
            Kernel::TopK => &[Uniform, Uniform, Read, Read, ReadWrite],
        }
    }

    /// Returns the pipeline-overridable constants that specialize the kernel. The linear kernels
    /// get `ACT` (0 none, 1 GELU, 2 QuickGELU), `HAS_BIAS` and `HAS_RESIDUAL` (0 or 1). The other
    /// kernels have none.
    pub fn constants(&self) -> Vec<(&'static str, f64)> {
        match *self {
            Kernel::LinearTiled { activation, bias, residual } | Kernel::LinearSmallM { activation, bias, residual } => {
                let act = match activation {
                    Activation::None => 0.0,
                    Activation::Gelu => 1.0,
                    Activation::QuickGelu => 2.0,
                };
                vec![
                    ("ACT", act),
                    ("HAS_BIAS", if bias { 1.0 } else { 0.0 }),
                    ("HAS_RESIDUAL", if residual { 1.0 } else { 0.0 }),
                ]
            }
            _ => Vec::new(),
        }
    }
}

/// Lists every shader file with its source, for validation tests.
pub fn all_shaders() -> Vec<(&'static str, &'static str)> {
    let kernels = [
        Kernel::LinearTiled { activation: Activation::None, bias: false, residual: false },
        Kernel::LayerNorm,
        Kernel::AttentionScores,
        Kernel::EmbedTokens,
        Kernel::SliceRows,
        Kernel::TopK,
    ];
    kernels.iter().map(|k| (k.shader_file(), k.shader_source())).collect()
}
