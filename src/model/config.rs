//! open_clip CoCa model configs: the `model_cfg` of an `open_clip_config.json` (as published on
//! the Hugging Face Hub) or a bare model config such as open_clip's `model_configs/coca_*.json`.
//! Field names and defaults follow open_clip 3.3.0's `CLIPVisionCfg`, `CLIPTextCfg` and
//! `MultimodalCfg`.

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// Built-in architectures, by open_clip's config name.
pub const BUILTIN_CONFIGS: &[(&str, &str)] = &[
    ("coca_ViT-B-32", include_str!("../../assets/model_configs/coca_ViT-B-32.json")),
    ("coca_ViT-L-14", include_str!("../../assets/model_configs/coca_ViT-L-14.json")),
];

/// A size that open_clip accepts as one int or as a two-element list.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum SizeOrPair {
    /// The same size on both sides.
    One(usize),
    /// Two sides, which [`CocaConfig::dims`] accepts only when they are equal.
    Pair([usize; 2]),
}

impl SizeOrPair {
    fn square(&self, what: &str) -> Result<usize> {
        match self {
            SizeOrPair::One(n) => Ok(*n),
            SizeOrPair::Pair([a, b]) if a == b => Ok(*a),
            SizeOrPair::Pair(pair) => Err(Error::Config(format!("{what} {pair:?} is not square; only square sizes are supported"))),
        }
    }
}

/// The vision tower's config, open_clip's `vision_cfg` (`CLIPVisionCfg`).
#[derive(Clone, Debug, Deserialize)]
pub struct VisionConfig {
    /// `image_size`: input side in pixels. Required here, and it must be square.
    pub image_size: SizeOrPair,
    /// `patch_size`: patch side in pixels. Required here, and it must be square and divide
    /// `image_size`.
    pub patch_size: SizeOrPair,
    /// `width`: the vision transformer's width.
    pub width: usize,
    /// `layers`: number of vision transformer blocks.
    pub layers: usize,
    /// `head_width`: width of one attention head (default 64), so the head count is
    /// `width / head_width`.
    #[serde(default = "default_head_width")]
    pub head_width: usize,
    /// `mlp_ratio`: MLP hidden width as a multiple of `width` (default 4).
    #[serde(default = "default_mlp_ratio")]
    pub mlp_ratio: f64,
    /// `ls_init_value`: layer scale. Must be absent or null, because layer scale is not implemented.
    #[serde(default)]
    pub ls_init_value: Option<f64>,
    /// `attentional_pool`: must be `true`, CoCa's attentional pooler. It is kept as raw JSON so
    /// that the error can show any other value, including a missing key.
    #[serde(default)]
    pub attentional_pool: Value,
    /// `attn_pooler_queries`: number of learned pooler queries (default 256). The first pooled
    /// token gives the image embedding and the others are the image tokens (`image_embs`) that the
    /// decoder attends to.
    #[serde(default = "default_pooler_queries")]
    pub attn_pooler_queries: usize,
    /// `attn_pooler_heads`: attention heads of the pooler (default 8).
    #[serde(default = "default_pooler_heads")]
    pub attn_pooler_heads: usize,
    /// `no_ln_pre`: skip the LayerNorm before the transformer. Must be false.
    #[serde(default)]
    pub no_ln_pre: bool,
    /// `pool_type` (default "tok"). Only "tok" is supported.
    #[serde(default = "default_pool_type_tok")]
    pub pool_type: String,
    /// `timm_model_name`: a timm vision tower. Must be absent, because timm towers are not supported.
    #[serde(default)]
    pub timm_model_name: Option<String>,
}

/// The text tower's config, open_clip's `text_cfg` (`CLIPTextCfg`).
#[derive(Clone, Debug, Deserialize)]
pub struct TextConfig {
    /// `context_length`: maximum number of text tokens (default 77, and open_clip's CoCa configs
    /// set 76). The class token takes one more position.
    #[serde(default = "default_context_length")]
    pub context_length: usize,
    /// `vocab_size` (default 49408). Must equal `multimodal_cfg.vocab_size`.
    #[serde(default = "default_vocab_size")]
    pub vocab_size: usize,
    /// `width`: the text transformer's width (default 512). Must equal `multimodal_cfg.width`.
    #[serde(default = "default_width")]
    pub width: usize,
    /// `heads`: attention heads (default 8).
    #[serde(default = "default_heads")]
    pub heads: usize,
    /// `layers`: number of text transformer blocks (default 12).
    #[serde(default = "default_layers")]
    pub layers: usize,
    /// `mlp_ratio`: MLP hidden width as a multiple of `width` (default 4).
    #[serde(default = "default_mlp_ratio")]
    pub mlp_ratio: f64,
    /// `ls_init_value`: layer scale. Must be absent or null, because layer scale is not implemented.
    #[serde(default)]
    pub ls_init_value: Option<f64>,
    /// `embed_cls`: append a learned class token (`text.cls_emb`) whose output becomes the text
    /// embedding. Must be true, as in every CoCa config.
    #[serde(default)]
    pub embed_cls: bool,
    /// `pad_id`: token id that the text tower's attention mask treats as padding (default 0).
    #[serde(default)]
    pub pad_id: u32,
    /// `no_causal_mask`: turn off the causal mask. Must be false.
    #[serde(default)]
    pub no_causal_mask: bool,
    /// `correct_cls_mask`: put the class token's padding-mask entry at its real position. Must be
    /// false, because published CoCa weights use the legacy mask (shifted by one), which this crate
    /// reproduces.
    #[serde(default)]
    pub correct_cls_mask: bool,
    /// `proj_bias`: bias on the text projection. Must be false.
    #[serde(default)]
    pub proj_bias: bool,
    /// `hf_model_name`: a Hugging Face text tower. Must be absent, because such towers are not
    /// supported.
    #[serde(default)]
    pub hf_model_name: Option<String>,
}

/// The multimodal text decoder's config, open_clip's `multimodal_cfg` (`MultimodalCfg`).
#[derive(Clone, Debug, Deserialize)]
pub struct MultimodalConfig {
    /// `context_length` (default 77). Read but not used, because the decoder's sequence length
    /// comes from `text_cfg.context_length`.
    #[serde(default = "default_context_length")]
    pub context_length: usize,
    /// `vocab_size`: number of output logits per position (default 49408). Must equal
    /// `text_cfg.vocab_size`.
    #[serde(default = "default_vocab_size")]
    pub vocab_size: usize,
    /// `width`: the decoder's width (default 512). Must equal `text_cfg.width`.
    #[serde(default = "default_width")]
    pub width: usize,
    /// `heads`: attention heads of the self- and cross-attention (default 8).
    #[serde(default = "default_heads")]
    pub heads: usize,
    /// `layers`: number of decoder layers, each a self-attention and a cross-attention block
    /// (default 12).
    #[serde(default = "default_layers")]
    pub layers: usize,
    /// `mlp_ratio`: MLP hidden width as a multiple of `width` (default 4).
    #[serde(default = "default_mlp_ratio")]
    pub mlp_ratio: f64,
    /// `ls_init_value`: layer scale. Must be absent or null, because layer scale is not implemented.
    #[serde(default)]
    pub ls_init_value: Option<f64>,
}

/// A CoCa model config, open_clip's `model_cfg`. [`CocaConfig::from_json`] and
/// [`CocaConfig::builtin`] check it for the architecture this crate implements.
///
/// NOTE: keys that this crate does not read (for example `qk_norm` or `final_ln_after_pool`)
/// are ignored, not rejected, so a config that sets them is computed as if they had open_clip's
/// defaults.
#[derive(Clone, Debug, Deserialize)]
pub struct CocaConfig {
    /// `embed_dim`: size of the image and text embeddings, and the attentional pooler's width.
    pub embed_dim: usize,
    /// `vision_cfg`: the vision tower.
    pub vision_cfg: VisionConfig,
    /// `text_cfg`: the text tower.
    pub text_cfg: TextConfig,
    /// `multimodal_cfg`: the text decoder.
    pub multimodal_cfg: MultimodalConfig,
    /// `quick_gelu`: use QuickGELU, x * sigmoid(1.702 x), instead of the exact GELU in every MLP
    /// (default false).
    #[serde(default)]
    pub quick_gelu: bool,
    /// `init_logit_bias`: with a value, open_clip creates a `logit_bias` parameter. This crate
    /// ignores it, and a `logit_bias` tensor in the weights decides whether the model has a bias.
    #[serde(default)]
    pub init_logit_bias: Option<f64>,
}

fn default_head_width() -> usize {
    64
}
fn default_mlp_ratio() -> f64 {
    4.0
}
fn default_pooler_queries() -> usize {
    256
}
fn default_pooler_heads() -> usize {
    8
}
fn default_pool_type_tok() -> String {
    "tok".into()
}
fn default_context_length() -> usize {
    77
}
fn default_vocab_size() -> usize {
    49408
}
fn default_width() -> usize {
    512
}
fn default_heads() -> usize {
    8
}
fn default_layers() -> usize {
    12
}

/// Derived sizes used to build the graphs.
#[derive(Clone, Debug)]
pub struct Dims {
    /// Input image side in pixels.
    pub image_size: usize,
    /// Patch side in pixels.
    pub patch_size: usize,
    /// Patches per image side, `image_size / patch_size`.
    pub grid: usize,
    /// Vision transformer width.
    pub vision_width: usize,
    /// Vision attention heads, `width / head_width`.
    pub vision_heads: usize,
    /// Number of vision transformer blocks.
    pub vision_layers: usize,
    /// Hidden width of the vision MLPs.
    pub vision_mlp: usize,
    /// Number of attentional pooler queries, one for the image embedding and the rest for image
    /// tokens.
    pub pooler_queries: usize,
    /// Attention heads of the attentional pooler.
    pub pooler_heads: usize,
    /// Size of the image and text embeddings.
    pub embed_dim: usize,
    /// Text transformer width.
    pub text_width: usize,
    /// Text attention heads.
    pub text_heads: usize,
    /// Number of text transformer blocks.
    pub text_layers: usize,
    /// Hidden width of the text MLPs.
    pub text_mlp: usize,
    /// Maximum number of text tokens without the class token (`text_cfg.context_length`), also
    /// the length of a decode step's KV caches.
    pub context_length: usize,
    /// Vocabulary size: rows of the token embedding and logits per position.
    pub vocab_size: usize,
    /// Token id masked as padding in the text tower.
    pub pad_id: u32,
    /// Decoder width.
    pub decoder_width: usize,
    /// Decoder attention heads.
    pub decoder_heads: usize,
    /// Number of decoder layers.
    pub decoder_layers: usize,
    /// Hidden width of the decoder MLPs.
    pub decoder_mlp: usize,
}

impl CocaConfig {
    /// Parses either `{"model_cfg": {...}, "preprocess_cfg": {...}}` or a bare model config.
    pub fn from_json(text: &str) -> Result<(CocaConfig, Option<Value>)> {
        let value: Value = serde_json::from_str(text).map_err(|e| Error::Config(format!("not valid JSON: {e}")))?;
        let (model, preprocess) = match value.get("model_cfg") {
            Some(model) => (model.clone(), value.get("preprocess_cfg").cloned()),
            None => (value, None),
        };
        if model.get("multimodal_cfg").is_none() {
            return Err(Error::Config(
                "the config has no `multimodal_cfg`, so it does not describe a CoCa model (open_clip CoCa configs have \
                 `embed_dim`, `vision_cfg`, `text_cfg` and `multimodal_cfg`)"
                    .into(),
            ));
        }
        let config: CocaConfig =
            serde_json::from_value(model).map_err(|e| Error::Config(format!("the CoCa model config does not parse: {e}")))?;
        config.dims()?;
        Ok((config, preprocess))
    }

    /// Returns a built-in architecture by open_clip name, e.g. `coca_ViT-B-32`.
    pub fn builtin(name: &str) -> Result<CocaConfig> {
        let text = BUILTIN_CONFIGS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t).ok_or_else(|| {
            let names: Vec<&str> = BUILTIN_CONFIGS.iter().map(|(n, _)| *n).collect();
            Error::Config(format!("unknown built-in config `{name}`; built-in configs are {}", names.join(", ")))
        })?;
        Ok(Self::from_json(text)?.0)
    }

    /// Checks the config against what this crate implements and derives the sizes.
    pub fn dims(&self) -> Result<Dims> {
        let v = &self.vision_cfg;
        let t = &self.text_cfg;
        let m = &self.multimodal_cfg;
        let unsupported = |what: &str| Err(Error::Config(format!("{what} is not supported by coca-wgpu")));
        if v.timm_model_name.is_some() {
            return unsupported("a timm vision tower (`timm_model_name`)");
        }
        if t.hf_model_name.is_some() {
            return unsupported("a Hugging Face text tower (`hf_model_name`)");
        }
        if v.ls_init_value.is_some() || t.ls_init_value.is_some() || m.ls_init_value.is_some() {
            return unsupported("layer scale (`ls_init_value`)");
        }
        if v.attentional_pool != Value::Bool(true) {
            return Err(Error::Config(format!(
                "vision_cfg.attentional_pool is {}, but CoCa's vision tower needs `true`",
                v.attentional_pool
            )));
        }
        if v.pool_type != "tok" || v.no_ln_pre {
            return unsupported("a vision pool_type other than `tok`, or `no_ln_pre`");
        }
        if !t.embed_cls || t.no_causal_mask || t.correct_cls_mask || t.proj_bias {
            return Err(Error::Config(
                "text_cfg must have `embed_cls: true` (CoCa's class token), a causal mask, the legacy class-token \
                 mask and no projection bias"
                    .into(),
            ));
        }
        let image_size = v.image_size.square("vision_cfg.image_size")?;
        let patch_size = v.patch_size.square("vision_cfg.patch_size")?;
        let positive = [
            ("embed_dim", self.embed_dim),
            ("vision_cfg.width", v.width),
            ("vision_cfg.layers", v.layers),
            ("vision_cfg.head_width", v.head_width),
            ("vision_cfg.patch_size", patch_size),
            ("text_cfg.width", t.width),
            ("text_cfg.heads", t.heads),
            ("multimodal_cfg.width", m.width),
            ("multimodal_cfg.heads", m.heads),
            ("vision_cfg.attn_pooler_heads", v.attn_pooler_heads),
            ("vision_cfg.attn_pooler_queries", v.attn_pooler_queries),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(Error::Config(format!("{name} must be positive")));
            }
        }
        if image_size % patch_size != 0 {
            return Err(Error::Config(format!("image_size {image_size} is not a multiple of patch_size {patch_size}")));
        }
        let divides = [
            ("vision_cfg.width", v.width, "vision_cfg.head_width", v.head_width),
            ("text_cfg.width", t.width, "text_cfg.heads", t.heads),
            ("multimodal_cfg.width", m.width, "multimodal_cfg.heads", m.heads),
            ("embed_dim", self.embed_dim, "vision_cfg.attn_pooler_heads", v.attn_pooler_heads),
        ];
        for (a, x, b, y) in divides {
            if x % y != 0 {
                return Err(Error::Config(format!("{a} ({x}) must be divisible by {b} ({y})")));
            }
        }
        if t.width != m.width {
            return Err(Error::Config(format!(
                "text_cfg.width ({}) must equal multimodal_cfg.width ({}): the decoder reads the text tower's tokens",
                t.width, m.width
            )));
        }
        if v.attn_pooler_queries < 2 {
            return Err(Error::Config("vision_cfg.attn_pooler_queries must be at least 2 (one pooled, one image token)".into()));
        }
        if t.vocab_size != m.vocab_size {
            return Err(Error::Config(format!(
                "text_cfg.vocab_size ({}) differs from multimodal_cfg.vocab_size ({})",
                t.vocab_size, m.vocab_size
            )));
        }
        let mlp = |width: usize, ratio: f64| (width as f64 * ratio) as usize;
        let grid = image_size / patch_size;
        Ok(Dims {
            image_size,
            patch_size,
            grid,
            vision_width: v.width,
            vision_heads: v.width / v.head_width,
            vision_layers: v.layers,
            vision_mlp: mlp(v.width, v.mlp_ratio),
            pooler_queries: v.attn_pooler_queries,
            pooler_heads: v.attn_pooler_heads,
            embed_dim: self.embed_dim,
            text_width: t.width,
            text_heads: t.heads,
            text_layers: t.layers,
            text_mlp: mlp(t.width, t.mlp_ratio),
            context_length: t.context_length,
            vocab_size: t.vocab_size,
            pad_id: t.pad_id,
            decoder_width: m.width,
            decoder_heads: m.heads,
            decoder_layers: m.layers,
            decoder_mlp: mlp(m.width, m.mlp_ratio),
        })
    }
}

impl Dims {
    /// Lists every tensor of open_clip's CoCa state dict with its shape, in a stable order.
    pub fn expected_tensors(&self, logit_bias: bool) -> Vec<(String, Vec<usize>)> {
        let mut t: Vec<(String, Vec<usize>)> = Vec::new();
        let mut push = |name: String, shape: &[usize]| t.push((name, shape.to_vec()));
        let (w, p) = (self.vision_width, self.patch_size);
        push("visual.conv1.weight".into(), &[w, 3, p, p]);
        push("visual.class_embedding".into(), &[w]);
        push("visual.positional_embedding".into(), &[self.grid * self.grid + 1, w]);
        push("visual.ln_pre.weight".into(), &[w]);
        push("visual.ln_pre.bias".into(), &[w]);
        for i in 0..self.vision_layers {
            block_tensors(&mut push, &format!("visual.transformer.resblocks.{i}"), w, self.vision_mlp, false);
        }
        let e = self.embed_dim;
        push("visual.attn_pool.query".into(), &[self.pooler_queries, e]);
        if w == e {
            push("visual.attn_pool.attn.in_proj_weight".into(), &[3 * e, e]);
        } else {
            push("visual.attn_pool.attn.q_proj_weight".into(), &[e, e]);
            push("visual.attn_pool.attn.k_proj_weight".into(), &[e, w]);
            push("visual.attn_pool.attn.v_proj_weight".into(), &[e, w]);
        }
        push("visual.attn_pool.attn.in_proj_bias".into(), &[3 * e]);
        push("visual.attn_pool.attn.out_proj.weight".into(), &[e, e]);
        push("visual.attn_pool.attn.out_proj.bias".into(), &[e]);
        push("visual.attn_pool.ln_q.weight".into(), &[e]);
        push("visual.attn_pool.ln_q.bias".into(), &[e]);
        push("visual.attn_pool.ln_k.weight".into(), &[w]);
        push("visual.attn_pool.ln_k.bias".into(), &[w]);
        push("visual.ln_post.weight".into(), &[e]);
        push("visual.ln_post.bias".into(), &[e]);
        push("visual.proj".into(), &[e, e]);

        let tw = self.text_width;
        push("text.token_embedding.weight".into(), &[self.vocab_size, tw]);
        push("text.positional_embedding".into(), &[self.context_length + 1, tw]);
        push("text.cls_emb".into(), &[tw]);
        for i in 0..self.text_layers {
            block_tensors(&mut push, &format!("text.transformer.resblocks.{i}"), tw, self.text_mlp, false);
        }
        push("text.ln_final.weight".into(), &[tw]);
        push("text.ln_final.bias".into(), &[tw]);
        push("text.text_projection".into(), &[tw, e]);

        let dw = self.decoder_width;
        for i in 0..self.decoder_layers {
            block_tensors(&mut push, &format!("text_decoder.resblocks.{i}"), dw, self.decoder_mlp, false);
        }
        for i in 0..self.decoder_layers {
            block_tensors(&mut push, &format!("text_decoder.cross_attn.{i}"), dw, self.decoder_mlp, true);
        }
        push("text_decoder.ln_final.weight".into(), &[dw]);
        push("text_decoder.ln_final.bias".into(), &[dw]);
        push("text_decoder.text_projection".into(), &[dw, self.vocab_size]);
        push("logit_scale".into(), &[]);
        if logit_bias {
            push("logit_bias".into(), &[]);
        }
        t
    }
}

fn block_tensors(push: &mut impl FnMut(String, &[usize]), prefix: &str, width: usize, mlp: usize, cross: bool) {
    push(format!("{prefix}.ln_1.weight"), &[width]);
    push(format!("{prefix}.ln_1.bias"), &[width]);
    if cross {
        push(format!("{prefix}.ln_1_kv.weight"), &[width]);
        push(format!("{prefix}.ln_1_kv.bias"), &[width]);
    }
    push(format!("{prefix}.attn.in_proj_weight"), &[3 * width, width]);
    push(format!("{prefix}.attn.in_proj_bias"), &[3 * width]);
    push(format!("{prefix}.attn.out_proj.weight"), &[width, width]);
    push(format!("{prefix}.attn.out_proj.bias"), &[width]);
    push(format!("{prefix}.ln_2.weight"), &[width]);
    push(format!("{prefix}.ln_2.bias"), &[width]);
    push(format!("{prefix}.mlp.c_fc.weight"), &[mlp, width]);
    push(format!("{prefix}.mlp.c_fc.bias"), &[mlp]);
    push(format!("{prefix}.mlp.c_proj.weight"), &[width, mlp]);
    push(format!("{prefix}.mlp.c_proj.bias"), &[width]);
}
