//! The CoCa model of open_clip 3.3.0 on the GPU: weights uploaded once, and graph builders for
//! the vision tower, the text tower, the multimodal decoder and one cached decode step.
//!
//! Module and tensor names follow open_clip's state dict (`visual.transformer.resblocks.3.attn`,
//! `text_decoder.cross_attn.0.ln_1_kv`), so a reader can map checkpoint names to code.

pub mod config;
mod graphs;
mod pytorch;
pub mod weights;

use std::collections::HashMap;
use std::rc::Rc;

use wgpu::util::DeviceExt;

pub use config::{CocaConfig, Dims};
pub use graphs::{DecodeStep, ImageOutputs};
pub(crate) use graphs::Binder;
use weights::{transpose, HostWeights};

use crate::error::{Error, Result};
use crate::gpu::GpuContext;

/// A weight tensor on the GPU.
pub(crate) struct GpuTensor {
    pub buffer: Rc<wgpu::Buffer>,
    pub shape: Vec<usize>,
}

/// CoCa weights on the GPU plus the sizes of its towers.
pub struct CocaModel {
    /// The config the model was built from.
    pub config: CocaConfig,
    /// Sizes derived from `config`.
    pub dims: Dims,
    /// exp(logit_scale), the temperature of the contrastive logits.
    pub logit_scale: f32,
    /// The contrastive logit bias, for checkpoints that have one.
    pub logit_bias: Option<f32>,
    pub(crate) weights: HashMap<String, GpuTensor>,
    /// Weights stored in parts because they exceed the binding size limit: name -> part count.
    /// Part i is stored under `{name}#i` and contains consecutive rows.
    pub parts: HashMap<String, usize>,
    /// Bytes of weights on the GPU.
    pub weight_bytes: u64,
}

impl CocaModel {
    /// Validates `host` against the config and uploads it, rearranged for the kernels.
    pub fn upload(ctx: &GpuContext, config: CocaConfig, host: HostWeights) -> Result<CocaModel> {
        let dims = config.dims()?;
        let has_bias = host.validate(&dims)?;
        let mut model = CocaModel {
            logit_scale: host.get("logit_scale")?.data[0].exp(),
            logit_bias: if has_bias { Some(host.get("logit_bias")?.data[0]) } else { None },
            config,
            dims,
            weights: HashMap::new(),
            parts: HashMap::new(),
            weight_bytes: 0,
        };
        let d = model.dims.clone();
        let mut host = host;

        // Rearrangements: the conv as a [out, 3*P*P] linear weight, [in, out] projections
        // transposed to nn.Linear's [out, in], and fused in-projections split where queries and
        // keys come from different inputs.
        let conv = host.tensors.remove("visual.conv1.weight").expect("validated");
        model.put(ctx, "visual.conv1.weight", &conv.data, &[d.vision_width, 3 * d.patch_size * d.patch_size])?;
        for (name, rows, cols) in [
            ("visual.proj", d.embed_dim, d.embed_dim),
            ("text.text_projection", d.text_width, d.embed_dim),
        ] {
            let tensor = host.tensors.remove(name).expect("validated");
            model.put(ctx, name, &transpose(&tensor.data, rows, cols), &[cols, rows])?;
        }
        // The vocabulary-sized tables (ViT-L-14's are 152 MB in f32) may exceed the binding size
        // limit, so the kernels that read them accept them in parts of whole rows.
        let projection = host.tensors.remove("text_decoder.text_projection").expect("validated");
        let projection = transpose(&projection.data, d.decoder_width, d.vocab_size);
        model.put_rows(ctx, "text_decoder.text_projection", &projection, d.vocab_size, d.decoder_width)?;
        let table = host.tensors.remove("text.token_embedding.weight").expect("validated");
        model.put_rows(ctx, "text.token_embedding.weight", &table.data, d.vocab_size, d.text_width)?;

        let e = d.embed_dim;
        let pool_bias = host.tensors.remove("visual.attn_pool.attn.in_proj_bias").expect("validated");
        let (q_weight, kv_weight) = if let Some(fused) = host.tensors.remove("visual.attn_pool.attn.in_proj_weight") {
            (fused.data[..e * e].to_vec(), fused.data[e * e..].to_vec())
        } else {
            let q = host.tensors.remove("visual.attn_pool.attn.q_proj_weight").expect("validated");
            let k = host.tensors.remove("visual.attn_pool.attn.k_proj_weight").expect("validated");
            let v = host.tensors.remove("visual.attn_pool.attn.v_proj_weight").expect("validated");
            (q.data, [k.data, v.data].concat())
        };
        model.put(ctx, "visual.attn_pool.attn.q.weight", &q_weight, &[e, e])?;
        model.put(ctx, "visual.attn_pool.attn.q.bias", &pool_bias.data[..e], &[e])?;
        model.put(ctx, "visual.attn_pool.attn.kv.weight", &kv_weight, &[2 * e, d.vision_width])?;
        model.put(ctx, "visual.attn_pool.attn.kv.bias", &pool_bias.data[e..], &[2 * e])?;
        let query = host.tensors.remove("visual.attn_pool.query").expect("validated");
        model.put(ctx, "visual.attn_pool.query", &query.data, &[1, d.pooler_queries, e])?;

        let w = d.decoder_width;
        for i in 0..d.decoder_layers {
            let prefix = format!("text_decoder.cross_attn.{i}.attn");
            let weight = host.tensors.remove(&format!("{prefix}.in_proj_weight")).expect("validated");
            let bias = host.tensors.remove(&format!("{prefix}.in_proj_bias")).expect("validated");
            model.put(ctx, &format!("{prefix}.q.weight"), &weight.data[..w * w], &[w, w])?;
            model.put(ctx, &format!("{prefix}.q.bias"), &bias.data[..w], &[w])?;
            model.put(ctx, &format!("{prefix}.kv.weight"), &weight.data[w * w..], &[2 * w, w])?;
            model.put(ctx, &format!("{prefix}.kv.bias"), &bias.data[w..], &[2 * w])?;
        }

        host.tensors.remove("logit_scale");
        host.tensors.remove("logit_bias");
        let mut names: Vec<String> = host.tensors.keys().cloned().collect();
        names.sort();
        for name in names {
            let tensor = host.tensors.remove(&name).expect("listed");
            model.put(ctx, &name, &tensor.data, &tensor.shape)?;
        }
        Ok(model)
    }

    fn put(&mut self, ctx: &GpuContext, name: &str, data: &[f32], shape: &[usize]) -> Result<()> {
        let bytes = (data.len() * 4) as u64;
        ctx.check_buffer_size(&format!("weight `{name}` {shape:?}"), bytes)?;
        let buffer = ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(name),
            contents: bytemuck::cast_slice(data),
            usage: wgpu::BufferUsages::STORAGE,
        });
        self.weight_bytes += bytes;
        self.weights.insert(name.to_string(), GpuTensor { buffer: Rc::new(buffer), shape: shape.to_vec() });
        Ok(())
    }

    /// Uploads a [rows, cols] weight whole, or in parts of consecutive rows when it is larger
    /// than the device's storage binding limit.
    fn put_rows(&mut self, ctx: &GpuContext, name: &str, data: &[f32], rows: usize, cols: usize) -> Result<()> {
        let bytes = (data.len() * 4) as u64;
        let limit = ctx.limits.max_storage_buffer_binding_size.min(ctx.limits.max_buffer_size);
        if bytes <= limit {
            return self.put(ctx, name, data, &[rows, cols]);
        }
        // Whole rows per part, a multiple of 4 for the kernels' vector loads.
        let rows_per_part = ((limit / (cols as u64 * 4)) as usize) / 4 * 4;
        if rows_per_part == 0 {
            return ctx.check_buffer_size(&format!("one row of weight `{name}` [{rows}, {cols}]"), cols as u64 * 4 * 4);
        }
        let count = rows.div_ceil(rows_per_part);
        for part in 0..count {
            let start = part * rows_per_part;
            let end = (start + rows_per_part).min(rows);
            self.put(ctx, &format!("{name}#{part}"), &data[start * cols..end * cols], &[end - start, cols])?;
        }
        self.parts.insert(name.to_string(), count);
        Ok(())
    }

    pub(crate) fn weight(&self, name: &str) -> Result<&GpuTensor> {
        self.weights.get(name).ok_or_else(|| Error::Weights { file: "model".into(), reason: format!("missing tensor `{name}`") })
    }
}
