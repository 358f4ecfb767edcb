//! GPU ops as graph builders. Each op checks its operands' shapes, works out the uniform
//! parameters and the dispatch size, and records its nodes. Its WGSL kernel lives in `shaders/`,
//! and the kernel tests compare it with the plain CPU version in [`reference`](mod@reference).
//!
//! The shape checks here are what make the unchecked ("trusted") kernels safe: every index a
//! kernel computes is bounded by the sizes validated below.

pub mod reference;

use crate::error::{Error, Result};
use crate::gpu::Kernel;
pub use crate::gpu::Activation;

/// The sizes of one linear dispatch: y[.., offset + j] for j < n, rows of stride `ldy`.
#[derive(Clone, Copy)]
struct LinearColumns {
    m: usize,
    n: usize,
    k: usize,
    ldy: usize,
    offset: usize,
}
use crate::graph::{DType, Graph, Tensor};

/// Layout of one attention op's queries, keys and values (see `shaders/attention.wgsl`).
///
/// Offsets and strides count f32 elements and must be multiples of 4.
#[derive(Clone, Debug)]
pub struct AttentionSpec {
    /// Number of query sequences.
    pub batch: usize,
    /// Queries per sequence.
    pub lq: usize,
    /// Number of keys, or the cache capacity when `dynamic_len` is set.
    pub lk: usize,
    /// Number of attention heads.
    pub heads: usize,
    /// Width of one head, a multiple of 4 and at most 1024.
    pub head_dim: usize,
    /// Offset of the first query in the `q` tensor.
    pub q_offset: usize,
    /// Distance between query sequences in `q`, or 0 when all sequences share the queries.
    pub q_batch_stride: usize,
    /// Distance between consecutive queries in `q`.
    pub q_row_stride: usize,
    /// Distance between key/value sequences in the `kv` tensor.
    pub kv_batch_stride: usize,
    /// Distance between consecutive positions in `kv`.
    pub kv_row_stride: usize,
    /// Offset of the keys within `kv`.
    pub k_offset: usize,
    /// Offset of the values within `kv`.
    pub v_offset: usize,
    /// Query batch b reads keys of batch b / kv_div (beams sharing an image).
    pub kv_div: usize,
    /// Whether a query attends only to keys at or before its own position.
    pub causal: bool,
    /// Decode step: the number of keys is the step's pos + 1 and the query sits at position pos.
    pub dynamic_len: bool,
    /// `[batch, table_stride]` u32 map from (row, key position) to the cache row holding that key.
    pub table: Option<(Tensor, usize)>,
    /// `[batch, token_stride]` u32 token ids; key j >= 1 is masked where token j - 1 is `pad_id`.
    pub key_pad_mask: Option<(Tensor, usize, u32)>,
}

const MAX_KEYS: usize = 1 << 16;
const MAX_HEAD_DIM: usize = 1024;
/// The largest k of [`Graph::top_k`].
pub const MAX_TOP_K: usize = 16;

/// Linear layers with at most this many rows use `linear_small_m`, which reads the weight once
/// per block of 8 rows; larger ones use `linear_tiled`. This covers decode steps of up to 64
/// sequences, such as 8 images x 6 beams. On lavapipe (Mesa 22.3, `examples/op_timing.rs`) the
/// row blocks were 1.6 to 2.9 times faster than the tiles from 9 to 128 rows.
/// NOTE: real GPUs were not measured.
const ROW_BLOCKS_MAX_M: usize = 64;

fn rows_of(shape: &[usize]) -> usize {
    shape[..shape.len() - 1].iter().product()
}

fn last_dim(shape: &[usize]) -> usize {
    *shape.last().unwrap_or(&0)
}

fn u32_of(op: &'static str, value: usize) -> Result<u32> {
    u32::try_from(value).map_err(|_| Error::shape(op, format!("size {value} does not fit in 32 bits")))
}

impl Graph<'_> {
    fn expect_shape(&self, op: &'static str, tensor: Tensor, expected: &[usize]) -> Result<()> {
        if self.shape(tensor) != expected {
            return Err(Error::shape(
                op,
                format!("`{}` has shape {:?}, expected {:?}", self.name(tensor), self.shape(tensor), expected),
            ));
        }
        Ok(())
    }

    fn expect_len(&self, op: &'static str, tensor: Tensor, min_elements: usize) -> Result<()> {
        let elements: usize = self.shape(tensor).iter().product();
        if elements < min_elements {
            return Err(Error::shape(
                op,
                format!("`{}` has {elements} elements, the op reads up to {min_elements}", self.name(tensor)),
            ));
        }
        Ok(())
    }

    /// y = act(x w^T + bias) + residual, with `w` in nn.Linear's [out, in] layout.
    pub fn linear(
        &mut self,
        name: &str,
        x: Tensor,
        w: Tensor,
        bias: Option<Tensor>,
        activation: Activation,
        residual: Option<Tensor>,
    ) -> Result<Tensor> {
        const OP: &str = "linear";
        let x_shape = self.shape(x).to_vec();
        let w_shape = self.shape(w).to_vec();
        if w_shape.len() != 2 || x_shape.is_empty() {
            return Err(Error::shape(OP, format!("`{name}`: weight {w_shape:?} must be 2-D and x {x_shape:?} at least 1-D")));
        }
        let (n, k) = (w_shape[0], w_shape[1]);
        if last_dim(&x_shape) != k {
            return Err(Error::shape(OP, format!("`{name}`: x {x_shape:?} does not match weight {w_shape:?}")));
        }
        if k % 4 != 0 {
            return Err(Error::shape(OP, format!("`{name}`: in_features {k} must be a multiple of 4")));
        }
        let m = rows_of(&x_shape);
        let mut out_shape = x_shape.clone();
        *out_shape.last_mut().unwrap() = n;
        if let Some(b) = bias {
            self.expect_shape(OP, b, &[n])?;
        }
        if let Some(r) = residual {
            self.expect_shape(OP, r, &out_shape)?;
        }
        let y = self.temp(name, &out_shape, DType::F32)?;
        let columns = LinearColumns { m, n, k, ldy: n, offset: 0 };
        self.push_linear(x, w, bias, activation, residual, y, columns)?;
        Ok(y)
    }

    /// Records one linear dispatch writing columns `offset .. offset + n` of `y` (row stride
    /// `ldy`): the row-block kernel up to `ROW_BLOCKS_MAX_M` rows, the tiled one otherwise.
    #[allow(clippy::too_many_arguments)]
    fn push_linear(
        &mut self,
        x: Tensor,
        w: Tensor,
        bias: Option<Tensor>,
        activation: Activation,
        residual: Option<Tensor>,
        y: Tensor,
        c: LinearColumns,
    ) -> Result<()> {
        const OP: &str = "linear";
        let dummy = self.dummy();
        let small = c.m <= ROW_BLOCKS_MAX_M;
        let (has_bias, has_residual) = (bias.is_some(), residual.is_some());
        let kernel = if small {
            Kernel::LinearSmallM { activation, bias: has_bias, residual: has_residual }
        } else {
            Kernel::LinearTiled { activation, bias: has_bias, residual: has_residual }
        };
        let workgroups = if small {
            [u32_of(OP, c.n.div_ceil(4 * 64))?, u32_of(OP, c.m.div_ceil(8))?, 1]
        } else {
            [u32_of(OP, c.n.div_ceil(32))?, u32_of(OP, c.m.div_ceil(32))?, 1]
        };
        let params =
            vec![u32_of(OP, c.m)?, u32_of(OP, c.n)?, u32_of(OP, c.k)?, u32_of(OP, c.ldy)?, u32_of(OP, c.offset)?, 0, 0, 0];
        let args = vec![x, w, bias.unwrap_or(dummy), residual.unwrap_or(dummy), y];
        self.push_node(kernel, params, args, workgroups)
    }

    /// Adds a linear layer without bias whose weight is split by rows into `parts` (each [n_i, k],
    /// in order): the parts fill consecutive columns of one output [.., sum n_i]. Weights over
    /// the device's binding size limit are stored this way.
    pub fn linear_parts(&mut self, name: &str, x: Tensor, parts: &[Tensor]) -> Result<Tensor> {
        const OP: &str = "linear";
        match parts {
            [] => return Err(Error::shape(OP, format!("`{name}`: no weight parts"))),
            [whole] => return self.linear(name, x, *whole, None, Activation::None, None),
            _ => {}
        }
        let x_shape = self.shape(x).to_vec();
        let k = last_dim(&x_shape);
        let mut n_total = 0;
        for part in parts {
            let shape = self.shape(*part).to_vec();
            if shape.len() != 2 || shape[1] != k {
                return Err(Error::shape(OP, format!("`{name}`: weight part {shape:?} does not match x {x_shape:?}")));
            }
            n_total += shape[0];
        }
        if k % 4 != 0 {
            return Err(Error::shape(OP, format!("`{name}`: in_features {k} must be a multiple of 4")));
        }
        let m = rows_of(&x_shape);
        let mut out_shape = x_shape.clone();
        *out_shape.last_mut().unwrap() = n_total;
        let y = self.temp(name, &out_shape, DType::F32)?;
        let mut offset = 0;
        for part in parts {
            let n = self.shape(*part)[0];
            let columns = LinearColumns { m, n, k, ldy: n_total, offset };
            self.push_linear(x, *part, None, Activation::None, None, y, columns)?;
            offset += n;
        }
        Ok(y)
    }

    /// Layer normalization over the last dimension.
    pub fn layer_norm(&mut self, name: &str, x: Tensor, gamma: Tensor, beta: Tensor, eps: f32) -> Result<Tensor> {
        const OP: &str = "layer_norm";
        let shape = self.shape(x).to_vec();
        let dim = last_dim(&shape);
        self.expect_shape(OP, gamma, &[dim])?;
        self.expect_shape(OP, beta, &[dim])?;
        if dim % 4 != 0 {
            return Err(Error::shape(OP, format!("`{name}`: dimension {dim} must be a multiple of 4")));
        }
        let rows = rows_of(&shape);
        let y = self.temp(name, &shape, DType::F32)?;
        let groups = rows.div_ceil(64);
        let groups_x = groups.min(65535);
        let groups_y = groups.div_ceil(groups_x);
        let params = vec![u32_of(OP, rows)?, u32_of(OP, dim / 4)?, eps.to_bits(), u32_of(OP, groups_x)?];
        self.push_node(Kernel::LayerNorm, params, vec![x, gamma, beta, y], [groups_x as u32, u32_of(OP, groups_y)?, 1])?;
        Ok(y)
    }

    /// Multi-head attention; returns [batch, lq, heads * head_dim].
    pub fn attention(&mut self, name: &str, q: Tensor, kv: Tensor, spec: &AttentionSpec) -> Result<Tensor> {
        const OP: &str = "attention";
        let s = spec;
        if s.lk > MAX_KEYS || s.head_dim > MAX_HEAD_DIM || s.kv_div == 0 || s.lk == 0 {
            return Err(Error::shape(
                OP,
                format!(
                    "`{name}`: {} keys and head size {} (at most {MAX_KEYS} keys and head size {MAX_HEAD_DIM}, kv_div >= 1)",
                    s.lk, s.head_dim
                ),
            ));
        }
        let width = s.heads * s.head_dim;
        let q_end = s.q_offset + (s.batch - 1) * s.q_batch_stride + (s.lq - 1) * s.q_row_stride + width;
        self.expect_len(OP, q, q_end)?;
        let kv_batches = match s.table {
            Some((table, stride)) => {
                if stride < s.lk {
                    return Err(Error::shape(OP, format!("`{name}`: table stride {stride} below {} keys", s.lk)));
                }
                self.expect_len(OP, table, s.batch * stride)?;
                // Table entries are physical cache rows; the decoder writes only indices below
                // the cache's row count, which is the query batch.
                s.batch
            }
            None => s.batch.div_ceil(s.kv_div),
        };
        let kv_end = (kv_batches - 1) * s.kv_batch_stride + (s.lk - 1) * s.kv_row_stride + s.k_offset.max(s.v_offset) + width;
        self.expect_len(OP, kv, kv_end)?;
        if let Some((tokens, stride, _)) = s.key_pad_mask {
            if stride + 1 < s.lk {
                return Err(Error::shape(OP, format!("`{name}`: token stride {stride} too short for {} keys", s.lk)));
            }
            self.expect_len(OP, tokens, s.batch * stride)?;
        }

        let vec4_aligned = [s.head_dim, s.q_offset, s.q_batch_stride, s.q_row_stride, s.kv_batch_stride, s.kv_row_stride, s.k_offset, s.v_offset]
            .iter()
            .all(|v| v % 4 == 0);
        if !vec4_aligned {
            return Err(Error::shape(OP, format!("`{name}`: head size, offsets and strides must be multiples of 4")));
        }

        let scores = self.temp(&format!("{name}.scores"), &[s.batch * s.heads, s.lq, s.lk], DType::F32)?;
        let out = self.temp(name, &[s.batch, s.lq, width], DType::F32)?;
        let dummy = self.dummy();
        let (table, table_stride) = s.table.unwrap_or((dummy, 0));
        let (tokens, token_stride, pad_id) = s.key_pad_mask.unwrap_or((dummy, 0, 0));
        let scale = 1.0 / (s.head_dim as f32).sqrt();
        let params = [
            s.lq,
            s.lk,
            s.heads,
            s.head_dim / 4,
            s.q_offset / 4,
            s.q_batch_stride / 4,
            s.q_row_stride / 4,
            scale.to_bits() as usize,
            s.kv_batch_stride / 4,
            s.kv_row_stride / 4,
            s.k_offset / 4,
            s.v_offset / 4,
            s.kv_div,
            s.causal as usize,
            s.dynamic_len as usize,
            s.table.is_some() as usize,
            table_stride,
            s.key_pad_mask.is_some() as usize,
            pad_id as usize,
            token_stride,
            s.batch,
        ]
        .iter()
        .map(|&v| u32_of(OP, v))
        .collect::<Result<Vec<u32>>>()?;
        // Both kernels run one thread per work item, numbered over a flattened 2-D grid.
        let grid = |items: usize| -> Result<[u32; 3]> {
            let groups = items.div_ceil(64);
            let x = groups.min(65535);
            Ok([u32_of(OP, x)?, u32_of(OP, groups.div_ceil(x))?, 1])
        };
        let score_items = s.lk.div_ceil(4) * s.lq * s.batch * s.heads;
        self.push_node(Kernel::AttentionScores, params.clone(), vec![q, kv, table, tokens, scores], grid(score_items)?)?;
        let output_items = (s.head_dim / 4) * s.lq * s.batch * s.heads;
        self.push_node(Kernel::AttentionOutput, params, vec![scores, kv, table, out], grid(output_items)?)?;
        Ok(out)
    }

    /// Token embedding plus positional embedding; with `cls`, the class embedding is appended as
    /// the last position. With `dynamic_pos`, token i sits at position step.pos + i.
    pub fn embed_tokens(
        &mut self,
        name: &str,
        ids: Tensor,
        token_table: Tensor,
        pos_table: Tensor,
        cls: Option<Tensor>,
        dynamic_pos: bool,
    ) -> Result<Tensor> {
        self.embed_token_parts(name, ids, &[token_table], pos_table, cls, dynamic_pos)
    }

    /// [`Graph::embed_tokens`] with the token table split by rows into `parts` (in id order),
    /// as tables over the device's binding size limit are stored: one dispatch per part writes
    /// the tokens whose ids it holds.
    pub fn embed_token_parts(
        &mut self,
        name: &str,
        ids: Tensor,
        parts: &[Tensor],
        pos_table: Tensor,
        cls: Option<Tensor>,
        dynamic_pos: bool,
    ) -> Result<Tensor> {
        const OP: &str = "embed_tokens";
        let ids_shape = self.shape(ids).to_vec();
        let Some(first) = parts.first() else {
            return Err(Error::shape(OP, format!("`{name}`: no token table")));
        };
        let mut table_shape = self.shape(*first).to_vec();
        for part in &parts[1..] {
            let shape = self.shape(*part).to_vec();
            if shape.len() != 2 || table_shape.len() != 2 || shape[1] != table_shape[1] {
                return Err(Error::shape(OP, format!("`{name}`: table parts {table_shape:?} and {shape:?} differ in width")));
            }
            table_shape[0] += shape[0];
        }
        let pos_shape = self.shape(pos_table).to_vec();
        if ids_shape.len() != 2 || table_shape.len() != 2 || pos_shape.len() != 2 || self.dtype(ids) != DType::U32 {
            return Err(Error::shape(OP, format!("`{name}`: ids {ids_shape:?} must be u32 [batch, len], tables 2-D")));
        }
        let (batch, len) = (ids_shape[0], ids_shape[1]);
        let (vocab, width) = (table_shape[0], table_shape[1]);
        let out_len = len + cls.is_some() as usize;
        if pos_shape[1] != width || (!dynamic_pos && out_len > pos_shape[0]) {
            return Err(Error::shape(
                OP,
                format!("`{name}`: positional embedding {pos_shape:?} does not cover {out_len} positions of width {width}"),
            ));
        }
        if let Some(cls) = cls {
            self.expect_shape(OP, cls, &[width])?;
        }
        let out = self.temp(name, &[batch, out_len, width], DType::F32)?;
        let dummy = self.dummy();
        let workgroups = [u32_of(OP, out_len)?, u32_of(OP, batch)?, 1];
        let mut first_id = 0;
        for part in parts {
            let rows = self.shape(*part)[0];
            let params = [batch, len, width, cls.is_some() as usize, dynamic_pos as usize, vocab, first_id, rows]
                .iter()
                .map(|&v| u32_of(OP, v))
                .collect::<Result<Vec<u32>>>()?;
            let args = vec![ids, *part, pos_table, cls.unwrap_or(dummy), out];
            self.push_node(Kernel::EmbedTokens, params, args, workgroups)?;
            first_id += rows;
        }
        Ok(out)
    }

    /// Splits [B, 3, S, S] images into [B, (S/P)^2, 3*P*P] patch rows.
    pub fn im2col(&mut self, name: &str, image: Tensor, patch: usize) -> Result<Tensor> {
        const OP: &str = "im2col";
        let shape = self.shape(image).to_vec();
        if shape.len() != 4 || shape[1] != 3 || shape[2] != shape[3] || patch == 0 || shape[2] % patch != 0 {
            return Err(Error::shape(OP, format!("`{name}`: image {shape:?} must be [B, 3, S, S] with S a multiple of {patch}")));
        }
        let (batch, size) = (shape[0], shape[2]);
        let grid = size / patch;
        let out = self.temp(name, &[batch, grid * grid, 3 * patch * patch], DType::F32)?;
        let params = vec![u32_of(OP, batch)?, u32_of(OP, size)?, u32_of(OP, patch)?, u32_of(OP, grid)?];
        self.push_node(Kernel::Im2col, params, vec![image, out], [u32_of(OP, grid * grid)?, u32_of(OP, batch)?, 1])?;
        Ok(out)
    }

    /// Prepends the class embedding and adds the positional embedding: [B, N, W] -> [B, N + 1, W].
    pub fn add_class_and_position(&mut self, name: &str, patches: Tensor, class: Tensor, pos: Tensor) -> Result<Tensor> {
        const OP: &str = "add_class_and_position";
        let shape = self.shape(patches).to_vec();
        if shape.len() != 3 {
            return Err(Error::shape(OP, format!("`{name}`: patches {shape:?} must be [B, N, W]")));
        }
        let (batch, count, width) = (shape[0], shape[1], shape[2]);
        self.expect_shape(OP, class, &[width])?;
        self.expect_shape(OP, pos, &[count + 1, width])?;
        let out = self.temp(name, &[batch, count + 1, width], DType::F32)?;
        let params = vec![u32_of(OP, batch)?, u32_of(OP, count)?, u32_of(OP, width)?, 0];
        self.push_node(Kernel::AddClassAndPosition, params, vec![patches, class, pos, out], [u32_of(OP, count + 1)?, u32_of(OP, batch)?, 1])?;
        Ok(out)
    }

    /// out[b, i] = x[b, start + i] for i < count, for x of shape [B, L, W].
    pub fn slice_rows(&mut self, name: &str, x: Tensor, start: usize, count: usize) -> Result<Tensor> {
        const OP: &str = "slice_rows";
        let shape = self.shape(x).to_vec();
        if shape.len() != 3 || start + count > shape[1] || count == 0 {
            return Err(Error::shape(OP, format!("`{name}`: rows {start}..{} of {shape:?}", start + count)));
        }
        let (batch, len, width) = (shape[0], shape[1], shape[2]);
        let out = self.temp(name, &[batch, count, width], DType::F32)?;
        let params = [batch, len, start, count, width, 0, 0, 0].iter().map(|&v| u32_of(OP, v)).collect::<Result<Vec<u32>>>()?;
        self.push_node(Kernel::SliceRows, params, vec![x, out], [u32_of(OP, count)?, u32_of(OP, batch)?, 1])?;
        Ok(out)
    }

    /// Writes keys and values of one decode step (the last two thirds of `qkv` [rows, 3W]) into
    /// position step.pos of a [rows, max_len, 2W] cache that starts at element `cache_offset`.
    /// The caller keeps pos below `max_len`.
    pub fn kv_append(&mut self, qkv: Tensor, cache: Tensor, cache_offset: usize, max_len: usize) -> Result<()> {
        const OP: &str = "kv_append";
        let shape = self.shape(qkv).to_vec();
        if shape.is_empty() || last_dim(&shape) % 3 != 0 {
            return Err(Error::shape(OP, format!("qkv {shape:?} must be [rows, 3 * width]")));
        }
        let (rows, width) = (rows_of(&shape), last_dim(&shape) / 3);
        self.expect_len(OP, cache, cache_offset + rows * max_len * 2 * width)?;
        let params = vec![u32_of(OP, rows)?, u32_of(OP, width)?, u32_of(OP, max_len)?, u32_of(OP, cache_offset)?];
        self.push_node(Kernel::KvAppend, params, vec![qkv, cache], [u32_of(OP, rows)?, 1, 1])
    }

    /// x / max(||x||, 1e-12) over the last dimension.
    pub fn l2_normalize(&mut self, name: &str, x: Tensor) -> Result<Tensor> {
        const OP: &str = "l2_normalize";
        let shape = self.shape(x).to_vec();
        let rows = rows_of(&shape);
        let out = self.temp(name, &shape, DType::F32)?;
        let params = vec![u32_of(OP, rows)?, u32_of(OP, last_dim(&shape))?, 0, 0];
        self.push_node(Kernel::L2Normalize, params, vec![x, out], [u32_of(OP, rows)?, 1, 1])?;
        Ok(out)
    }

    /// Selects the `k` best (value, token id) pairs of each row of [rows, vocab] logits, as u32
    /// [rows, k + 1, 2] (value bits, id). The last pair of each row contains its logsumexp.
    /// `eos_id` is excluded while step.pos + 1 < `min_len`. With a `history` ([rows, stride] u32
    /// tokens) and a penalty other than 1, the logits of the first step.pos + 1 history tokens are
    /// penalized before selection, so the caller must keep step.pos below the stride. With
    /// `log_softmax`, each row is first turned into log-probabilities of the raw logits, and the
    /// penalty and the mask apply to those (transformers' beam search order).
    #[allow(clippy::too_many_arguments)]
    pub fn top_k(
        &mut self,
        name: &str,
        logits: Tensor,
        k: usize,
        eos_id: u32,
        min_len: usize,
        history: Option<(Tensor, usize)>,
        repetition_penalty: f32,
        log_softmax: bool,
    ) -> Result<Tensor> {
        const OP: &str = "top_k";
        let shape = self.shape(logits).to_vec();
        if shape.is_empty() || k == 0 || k > MAX_TOP_K || k > last_dim(&shape) {
            return Err(Error::shape(OP, format!("`{name}`: k = {k} of logits {shape:?} (1 <= k <= {MAX_TOP_K})")));
        }
        let (rows, vocab) = (rows_of(&shape), last_dim(&shape));
        let penalty = if history.is_some() { repetition_penalty } else { 1.0 };
        if !(penalty > 0.0) {
            return Err(Error::shape(OP, format!("`{name}`: repetition penalty {penalty} must be positive")));
        }
        if let Some((tokens, stride)) = history {
            self.expect_len(OP, tokens, rows * stride)?;
        }
        let out = self.temp(name, &[rows, k + 1, 2], DType::U32)?;
        let dummy = self.dummy();
        let (tokens, stride) = history.unwrap_or((dummy, 0));
        let params = vec![
            u32_of(OP, rows)?,
            u32_of(OP, vocab)?,
            k as u32,
            eos_id,
            u32_of(OP, min_len)?,
            penalty.to_bits(),
            u32_of(OP, stride)?,
            log_softmax as u32,
        ];
        self.push_node(Kernel::TopK, params, vec![logits, tokens, out], [u32_of(OP, rows)?, 1, 1])?;
        Ok(out)
    }
}
