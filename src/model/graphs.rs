//! Graph builders for CoCa's towers. Shapes are [batch, length, width] row-major throughout.

use std::collections::HashMap;
use std::rc::Rc;

use super::CocaModel;
use crate::error::Result;
use crate::gpu::Activation;
use crate::graph::{DType, Graph, Tensor};
use crate::ops::AttentionSpec;

const LN_EPS: f32 = 1e-5;

/// Binds the model's weights into one graph, each weight once.
pub(crate) struct Binder<'m> {
    pub model: &'m CocaModel,
    bound: HashMap<String, Tensor>,
}

impl<'m> Binder<'m> {
    pub fn new(model: &'m CocaModel) -> Self {
        Binder { model, bound: HashMap::new() }
    }

    pub fn w(&mut self, graph: &mut Graph, name: &str) -> Result<Tensor> {
        if let Some(t) = self.bound.get(name) {
            return Ok(*t);
        }
        let weight = self.model.weight(name)?;
        let t = graph.external(name, weight.buffer.clone(), &weight.shape, DType::F32)?;
        self.bound.insert(name.to_string(), t);
        Ok(t)
    }

    /// Returns a weight's parts of consecutive rows (one part when it fits one binding).
    pub fn w_parts(&mut self, graph: &mut Graph, name: &str) -> Result<Vec<Tensor>> {
        match self.model.parts.get(name) {
            Some(&count) => (0..count).map(|part| self.w(graph, &format!("{name}#{part}"))).collect(),
            None => Ok(vec![self.w(graph, name)?]),
        }
    }

    fn activation(&self) -> Activation {
        if self.model.config.quick_gelu {
            Activation::QuickGelu
        } else {
            Activation::Gelu
        }
    }

    fn ln(&mut self, g: &mut Graph, prefix: &str, x: Tensor) -> Result<Tensor> {
        let gamma = self.w(g, &format!("{prefix}.weight"))?;
        let beta = self.w(g, &format!("{prefix}.bias"))?;
        g.layer_norm(prefix, x, gamma, beta, LN_EPS)
    }

    fn linear(&mut self, g: &mut Graph, prefix: &str, x: Tensor, act: Activation, residual: Option<Tensor>) -> Result<Tensor> {
        let w = self.w(g, &format!("{prefix}.weight"))?;
        let b = self.w(g, &format!("{prefix}.bias"))?;
        g.linear(prefix, x, w, Some(b), act, residual)
    }

    /// ln_2 -> c_fc -> activation -> c_proj, added to `x`.
    fn mlp(&mut self, g: &mut Graph, prefix: &str, x: Tensor) -> Result<Tensor> {
        let act = self.activation();
        let h = self.ln(g, &format!("{prefix}.ln_2"), x)?;
        let h = self.linear(g, &format!("{prefix}.mlp.c_fc"), h, act, None)?;
        self.linear(g, &format!("{prefix}.mlp.c_proj"), h, Activation::None, Some(x))
    }

    /// Adds a pre-norm residual self-attention block over a whole sequence [batch, len, width].
    fn self_attention_block(
        &mut self,
        g: &mut Graph,
        prefix: &str,
        x: Tensor,
        heads: usize,
        causal: bool,
        key_pad_mask: Option<(Tensor, usize, u32)>,
    ) -> Result<Tensor> {
        let shape = g.shape(x).to_vec();
        let (batch, len, width) = (shape[0], shape[1], shape[2]);
        let h = self.ln(g, &format!("{prefix}.ln_1"), x)?;
        let w = self.w(g, &format!("{prefix}.attn.in_proj_weight"))?;
        let b = self.w(g, &format!("{prefix}.attn.in_proj_bias"))?;
        let qkv = g.linear(&format!("{prefix}.attn.qkv"), h, w, Some(b), Activation::None, None)?;
        let spec = AttentionSpec {
            batch,
            lq: len,
            lk: len,
            heads,
            head_dim: width / heads,
            q_offset: 0,
            q_batch_stride: len * 3 * width,
            q_row_stride: 3 * width,
            kv_batch_stride: len * 3 * width,
            kv_row_stride: 3 * width,
            k_offset: width,
            v_offset: 2 * width,
            kv_div: 1,
            causal,
            dynamic_len: false,
            table: None,
            key_pad_mask,
        };
        let a = g.attention(&format!("{prefix}.attn"), qkv, qkv, &spec)?;
        let x = self.linear(g, &format!("{prefix}.attn.out_proj"), a, Activation::None, Some(x))?;
        self.mlp(g, prefix, x)
    }

    /// Cross-attention block of the decoder: queries from `x` [rows, len, width], keys and values
    /// from `kv` [images, keys, 2 * width]; `rows_per_image` query rows share one image.
    fn cross_attention_block(&mut self, g: &mut Graph, layer: usize, x: Tensor, kv: Tensor, rows_per_image: usize) -> Result<Tensor> {
        let prefix = format!("text_decoder.cross_attn.{layer}");
        let shape = g.shape(x).to_vec();
        let (rows, len, width) = (shape[0], shape[1], shape[2]);
        let keys = g.shape(kv)[1];
        let heads = self.model.dims.decoder_heads;
        let h = self.ln(g, &format!("{prefix}.ln_1"), x)?;
        let q = self.linear(g, &format!("{prefix}.attn.q"), h, Activation::None, None)?;
        let spec = AttentionSpec {
            batch: rows,
            lq: len,
            lk: keys,
            heads,
            head_dim: width / heads,
            q_offset: 0,
            q_batch_stride: len * width,
            q_row_stride: width,
            kv_batch_stride: keys * 2 * width,
            kv_row_stride: 2 * width,
            k_offset: 0,
            v_offset: width,
            kv_div: rows_per_image,
            causal: false,
            dynamic_len: false,
            table: None,
            key_pad_mask: None,
        };
        let a = g.attention(&format!("{prefix}.attn"), q, kv, &spec)?;
        let x = self.linear(g, &format!("{prefix}.attn.out_proj"), a, Activation::None, Some(x))?;
        self.mlp(g, &prefix, x)
    }

    /// Keys and values of decoder layer `layer`'s cross-attention for image tokens [B, N, width]:
    /// ln_1_kv, then the key and value rows of its in-projection -> [B, N, 2 * width].
    pub fn cross_kv(&mut self, g: &mut Graph, layer: usize, image_embs: Tensor) -> Result<Tensor> {
        let prefix = format!("text_decoder.cross_attn.{layer}");
        let h = self.ln(g, &format!("{prefix}.ln_1_kv"), image_embs)?;
        self.linear(g, &format!("{prefix}.attn.kv"), h, Activation::None, None)
    }

    /// The vision tower on [B, 3, S, S] pixels: returns the pooled latent [B, 1, E] (before
    /// normalization) and the image token embeddings `image_embs` [B, Q - 1, E].
    pub fn vision(&mut self, g: &mut Graph, image: Tensor) -> Result<(Tensor, Tensor)> {
        let d = self.model.dims.clone();
        let batch = g.shape(image)[0];
        let cols = g.im2col("visual.patches", image, d.patch_size)?;
        let conv = self.w(g, "visual.conv1.weight")?;
        let x = g.linear("visual.conv1", cols, conv, None, Activation::None, None)?;
        let class = self.w(g, "visual.class_embedding")?;
        let pos = self.w(g, "visual.positional_embedding")?;
        let x = g.add_class_and_position("visual.embeddings", x, class, pos)?;
        let mut x = self.ln(g, "visual.ln_pre", x)?;
        for i in 0..d.vision_layers {
            x = self.self_attention_block(g, &format!("visual.transformer.resblocks.{i}"), x, d.vision_heads, false, None)?;
        }

        // Attentional pooler: learned queries attend over ln_k(tokens). The queries are the same
        // for every image, so they are projected once and read with batch stride 0.
        let e = d.embed_dim;
        let len = d.grid * d.grid + 1;
        let keys = self.ln(g, "visual.attn_pool.ln_k", x)?;
        let kv = self.linear(g, "visual.attn_pool.attn.kv", keys, Activation::None, None)?;
        let query = self.w(g, "visual.attn_pool.query")?;
        let q = self.ln(g, "visual.attn_pool.ln_q", query)?;
        let q = self.linear(g, "visual.attn_pool.attn.q", q, Activation::None, None)?;
        let spec = AttentionSpec {
            batch,
            lq: d.pooler_queries,
            lk: len,
            heads: d.pooler_heads,
            head_dim: e / d.pooler_heads,
            q_offset: 0,
            q_batch_stride: 0,
            q_row_stride: e,
            kv_batch_stride: len * 2 * e,
            kv_row_stride: 2 * e,
            k_offset: 0,
            v_offset: e,
            kv_div: 1,
            causal: false,
            dynamic_len: false,
            table: None,
            key_pad_mask: None,
        };
        let pooled = g.attention("visual.attn_pool.attn", q, kv, &spec)?;
        let pooled = self.linear(g, "visual.attn_pool.attn.out_proj", pooled, Activation::None, None)?;
        let pooled = self.ln(g, "visual.ln_post", pooled)?;

        let first = g.slice_rows("visual.pooled", pooled, 0, 1)?;
        let proj = self.w(g, "visual.proj")?;
        let latent = g.linear("image_latent", first, proj, None, Activation::None, None)?;
        let image_embs = g.slice_rows("image_embs", pooled, 1, d.pooler_queries - 1)?;
        Ok((latent, image_embs))
    }

    /// The text tower on token ids [B, L] (u32): returns the latent [B, 1, E] (before
    /// normalization) and the token embeddings [B, L, width] that feed the decoder.
    ///
    /// open_clip appends a class token at position L. Its legacy padding mask is shifted by one:
    /// key j >= 1 is hidden from every query when token j - 1 is the pad id, and key 0 never is.
    pub fn text(&mut self, g: &mut Graph, ids: Tensor) -> Result<(Tensor, Tensor)> {
        let d = self.model.dims.clone();
        let len = g.shape(ids)[1];
        let table = self.w_parts(g, "text.token_embedding.weight")?;
        let pos = self.w(g, "text.positional_embedding")?;
        let cls = self.w(g, "text.cls_emb")?;
        let mut x = g.embed_token_parts("text.embeddings", ids, &table, pos, Some(cls), false)?;
        for i in 0..d.text_layers {
            let mask = Some((ids, len, d.pad_id));
            x = self.self_attention_block(g, &format!("text.transformer.resblocks.{i}"), x, d.text_heads, true, mask)?;
        }
        let pooled = g.slice_rows("text.pooled", x, len, 1)?;
        let pooled = self.ln(g, "text.ln_final", pooled)?;
        let proj = self.w(g, "text.text_projection")?;
        let latent = g.linear("text_latent", pooled, proj, None, Activation::None, None)?;
        let tokens = g.slice_rows("token_embs", x, 0, len)?;
        Ok((latent, tokens))
    }

    /// Builds the multimodal decoder over whole sequences: token embeddings [B, T, width] and
    /// image token embeddings [B, N, width] -> logits [B, T, vocab].
    pub fn decoder(&mut self, g: &mut Graph, image_embs: Tensor, tokens: Tensor) -> Result<Tensor> {
        let d = self.model.dims.clone();
        let mut x = tokens;
        for i in 0..d.decoder_layers {
            x = self.self_attention_block(g, &format!("text_decoder.resblocks.{i}"), x, d.decoder_heads, true, None)?;
            let kv = self.cross_kv(g, i, image_embs)?;
            x = self.cross_attention_block(g, i, x, kv, 1)?;
        }
        let x = self.ln(g, "text_decoder.ln_final", x)?;
        let proj = self.w_parts(g, "text_decoder.text_projection")?;
        g.linear_parts("logits", x, &proj)
    }
}

/// Outputs of the image stage of captioning: what the decode steps read.
pub struct ImageOutputs {
    /// Image embedding [B, 1, E], projected by `visual.proj` but not normalized.
    pub latent: Tensor,
    /// Image tokens [B, Q - 1, E] from the attentional pooler, read by the decoder.
    pub image_embs: Tensor,
    /// Per decoder layer, cross-attention keys and values [B, N, 2 * width].
    pub cross_kv: Vec<Tensor>,
}

/// Tensors of one cached decode step.
pub struct DecodeStep {
    /// u32 [rows, 1]: the token at the step's position.
    pub ids: Tensor,
    /// u32 [rows, max_len]: the cache row that contains each earlier position of each row.
    pub table: Tensor,
    /// u32 [rows, max_len]: each row's tokens so far, for the text tower's padding mask.
    pub history: Tensor,
    /// u32 [rows, k + 1, 2]: the k best (value bits, token id) pairs of each row from
    /// [`Graph::top_k`](crate::graph::Graph::top_k), then one pair that contains the row's logsumexp.
    pub best: Tensor,
    /// Sequences decoded together: images times beams.
    pub rows: usize,
    /// Capacity of the KV caches in positions (`context_length`).
    pub max_len: usize,
    /// Vocabulary size, the number of logits per row.
    pub vocab: usize,
    /// f32 [rows, vocab]: the raw logits, kept as an output when the host may read whole rows.
    pub logits: Option<Tensor>,
}

impl Binder<'_> {
    /// Builds the image stage: the vision tower and, with `with_cross_kv`, every decoder layer's
    /// cross-attention keys and values, all kept as outputs so the decode plan can bind them.
    pub fn image_stage(&mut self, g: &mut Graph, image: Tensor, with_cross_kv: bool) -> Result<ImageOutputs> {
        let (latent, image_embs) = self.vision(g, image)?;
        g.output(latent);
        g.output(image_embs);
        let mut cross_kv = Vec::new();
        let layers = if with_cross_kv { self.model.dims.decoder_layers } else { 0 };
        for layer in 0..layers {
            let kv = self.cross_kv(g, layer, image_embs)?;
            g.output(kv);
            cross_kv.push(kv);
        }
        Ok(ImageOutputs { latent, image_embs, cross_kv })
    }

    /// Builds one decode step for `rows` sequences (images x beams) at position step.pos. It reads
    /// and extends per-layer KV caches and attends over the image stage's `cross_kv` buffers.
    #[allow(clippy::too_many_arguments)]
    pub fn decode_step(
        &mut self,
        g: &mut Graph,
        rows: usize,
        rows_per_image: usize,
        cross_kv: &[(Rc<wgpu::Buffer>, Vec<usize>)],
        k: usize,
        eos_id: u32,
        min_len: usize,
        repetition_penalty: f32,
        log_softmax: bool,
        keep_logits: bool,
    ) -> Result<DecodeStep> {
        let d = self.model.dims.clone();
        let max_len = d.context_length;
        let ids = g.input("ids", &[rows, 1], DType::U32)?;
        let table = g.input("cache rows", &[rows, max_len], DType::U32)?;
        let history = g.input("history", &[rows, max_len], DType::U32)?;

        let tw = d.text_width;
        // One cache per layer keeps each buffer small: batches of beams on wide models would
        // pass the binding size limit with all layers in one buffer.
        let text_caches = (0..d.text_layers)
            .map(|i| g.input(&format!("text KV cache {i}"), &[1, rows, max_len, 2 * tw], DType::F32))
            .collect::<Result<Vec<_>>>()?;
        let table_ = self.w_parts(g, "text.token_embedding.weight")?;
        let pos = self.w(g, "text.positional_embedding")?;
        let mut x = g.embed_token_parts("text.embeddings", ids, &table_, pos, None, true)?;
        for i in 0..d.text_layers {
            let mask = Some((history, max_len, d.pad_id));
            x = self.cached_block(g, &format!("text.transformer.resblocks.{i}"), x, text_caches[i], 0, d.text_heads, table, mask)?;
        }

        let dw = d.decoder_width;
        let decoder_caches = (0..d.decoder_layers)
            .map(|i| g.input(&format!("decoder KV cache {i}"), &[1, rows, max_len, 2 * dw], DType::F32))
            .collect::<Result<Vec<_>>>()?;
        for i in 0..d.decoder_layers {
            x = self.cached_block(g, &format!("text_decoder.resblocks.{i}"), x, decoder_caches[i], 0, d.decoder_heads, table, None)?;
            let (buffer, shape) = &cross_kv[i];
            let kv = g.external(&format!("cross kv {i}"), buffer.clone(), shape, DType::F32)?;
            x = self.cross_attention_block(g, i, x, kv, rows_per_image)?;
        }
        let x = self.ln(g, "text_decoder.ln_final", x)?;
        let proj = self.w_parts(g, "text_decoder.text_projection")?;
        let logits = g.linear_parts("logits", x, &proj)?;
        let best = g.top_k("best tokens", logits, k, eos_id, min_len, Some((history, max_len)), repetition_penalty, log_softmax)?;
        g.output(best);
        if keep_logits {
            g.output(logits);
        }
        let logits = keep_logits.then_some(logits);
        Ok(DecodeStep { ids, table, history, best, rows, max_len, vocab: d.vocab_size, logits })
    }

    /// Adds a self-attention block for one new token per row [rows, 1, width], appending its key
    /// and value to layer `layer` of `cache` [layers, rows, max_len, 2 * width] at step.pos (the
    /// decode step passes one cache per layer, so `layer` is 0).
    #[allow(clippy::too_many_arguments)]
    fn cached_block(
        &mut self,
        g: &mut Graph,
        prefix: &str,
        x: Tensor,
        cache: Tensor,
        layer: usize,
        heads: usize,
        table: Tensor,
        key_pad_mask: Option<(Tensor, usize, u32)>,
    ) -> Result<Tensor> {
        let cache_shape = g.shape(cache).to_vec();
        let (rows, max_len, width) = (cache_shape[1], cache_shape[2], cache_shape[3] / 2);
        let layer_offset = layer * rows * max_len * 2 * width;
        let h = self.ln(g, &format!("{prefix}.ln_1"), x)?;
        let w = self.w(g, &format!("{prefix}.attn.in_proj_weight"))?;
        let b = self.w(g, &format!("{prefix}.attn.in_proj_bias"))?;
        let qkv = g.linear(&format!("{prefix}.attn.qkv"), h, w, Some(b), Activation::None, None)?;
        g.kv_append(qkv, cache, layer_offset, max_len)?;
        let spec = AttentionSpec {
            batch: rows,
            lq: 1,
            lk: max_len,
            heads,
            head_dim: width / heads,
            q_offset: 0,
            q_batch_stride: 3 * width,
            q_row_stride: 3 * width,
            kv_batch_stride: max_len * 2 * width,
            kv_row_stride: 2 * width,
            k_offset: layer_offset,
            v_offset: layer_offset + width,
            kv_div: 1,
            causal: true,
            dynamic_len: true,
            table: Some((table, max_len)),
            key_pad_mask,
        };
        let a = g.attention(&format!("{prefix}.attn"), qkv, cache, &spec)?;
        let x = self.linear(g, &format!("{prefix}.attn.out_proj"), a, Activation::None, Some(x))?;
        self.mlp(g, prefix, x)
    }
}
