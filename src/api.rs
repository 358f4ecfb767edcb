//! The user-facing layer: load a checkpoint, then caption, embed and classify encoded images and
//! plain text. It wraps [`Coca`]'s tensor API with decoding, preprocessing and tokenization.

use crate::coca::Coca;
use crate::error::{Error, Result};
use crate::generate::GenerationConfig;
use crate::gpu::GpuContext;
use crate::model::weights::HostWeights;
use crate::model::CocaConfig;
use crate::preprocess::PreprocessConfig;

/// Parses an `open_clip_config.json`'s `preprocess_cfg`. As in open_clip, a missing `size`
/// is the vision tower's image size.
pub fn preprocess_config(value: Option<serde_json::Value>, config: &CocaConfig) -> Result<Option<PreprocessConfig>> {
    let Some(mut value) = value else {
        return Ok(None);
    };
    if let Some(map) = value.as_object_mut() {
        if map.get("size").is_none_or(|v| v.is_null()) {
            map.insert("size".into(), serde_json::json!(config.dims()?.image_size));
        }
    }
    let parsed = serde_json::from_value::<PreprocessConfig>(value).map_err(|e| Error::Config(format!("invalid preprocess_cfg: {e}")))?;
    Ok(Some(parsed))
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f32 = exps.iter().sum();
    exps.iter().map(|e| e / total).collect()
}

/// A caption with its tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct Caption {
    /// The decoded caption, without start and end tokens.
    pub text: String,
    /// Token ids as open_clip's `generate` returns them, start token first.
    pub tokens: Vec<u32>,
    /// The beam search score of this caption (its summed scores divided by
    /// length^length_penalty); `None` for sampling.
    pub score: Option<f64>,
}

impl Coca {
    /// Loads a model from an `open_clip_config.json` (or a bare model config) and the bytes of a
    /// safetensors file or of open_clip's `open_clip_pytorch_model.bin` (a PyTorch zip archive,
    /// read without running its pickle). `source` names the weights in error messages.
    pub fn from_bytes(ctx: GpuContext, config_json: &str, weights: &[u8], source: &str) -> Result<Coca> {
        let (config, preprocess) = CocaConfig::from_json(config_json)?;
        let preprocess = preprocess_config(preprocess, &config)?;
        // PyTorch checkpoints are zip archives; safetensors files start with a header length.
        let host = if weights.starts_with(b"PK\x03\x04") {
            HostWeights::from_pytorch(weights, source)?
        } else {
            HostWeights::from_safetensors(weights, source)?
        };
        Coca::with_preprocess(ctx, config, host, preprocess)
    }

    /// Decodes and preprocesses encoded images (PNG, JPEG, WebP, GIF, BMP) into one batch.
    pub fn preprocess_images<B: AsRef<[u8]>>(&self, images: &[B]) -> Result<Vec<f32>> {
        Ok(self.preprocessor.preprocess_batch(images)?.data)
    }

    /// Captions encoded images, one caption each.
    pub async fn caption<B: AsRef<[u8]>>(&mut self, images: &[B], config: &GenerationConfig) -> Result<Vec<Caption>> {
        let pixels = self.preprocess_images(images)?;
        self.caption_pixels(&pixels, images.len(), config, None).await
    }

    /// Captions preprocessed pixels; `prefix` is text the caption continues (sampling only).
    pub async fn caption_pixels(
        &mut self,
        pixels: &[f32],
        batch: usize,
        config: &GenerationConfig,
        prefix: Option<&str>,
    ) -> Result<Vec<Caption>> {
        let prefix_ids = match prefix {
            Some(text) if !text.is_empty() => Some(self.tokenizer.encode(text)?),
            _ => None,
        };
        let generated = self.generate(pixels, batch, config, prefix_ids.as_deref()).await?;
        generated
            .into_iter()
            .map(|g| Ok(Caption { text: self.tokenizer.decode_caption(&g.tokens)?, tokens: g.tokens, score: g.score }))
            .collect()
    }

    /// Image embeddings of encoded images.
    pub async fn embed_images<B: AsRef<[u8]>>(&mut self, images: &[B], normalize: bool) -> Result<Vec<Vec<f32>>> {
        let pixels = self.preprocess_images(images)?;
        self.encode_image(&pixels, images.len(), normalize).await
    }

    /// Zero-shot classification: the probability of each label for each image, a softmax over
    /// `logit_scale * cosine similarity (+ logit_bias)` as open_clip users compute it. Each
    /// label is embedded as given; prompt templates are the caller's choice.
    pub async fn classify<B: AsRef<[u8]>, S: AsRef<str>>(&mut self, images: &[B], labels: &[S]) -> Result<Vec<Vec<f32>>> {
        let pixels = self.preprocess_images(images)?;
        self.classify_pixels(&pixels, images.len(), labels).await
    }

    /// Classifies preprocessed pixels of `batch` images, as [`Coca::classify`].
    pub async fn classify_pixels<S: AsRef<str>>(&mut self, pixels: &[f32], batch: usize, labels: &[S]) -> Result<Vec<Vec<f32>>> {
        self.classify_pixels_with_templates(pixels, batch, labels, &[] as &[&str]).await
    }

    /// Zero-shot classification with prompt templates, as open_clip's zero-shot classifier builds
    /// its class embeddings: each label fills the `{}` of every template ("a photo of {}."), the
    /// normalized text features of a label's prompts are averaged and normalized again. Without
    /// templates each label is embedded as given.
    pub async fn classify_pixels_with_templates<S: AsRef<str>, T: AsRef<str>>(
        &mut self,
        pixels: &[f32],
        batch: usize,
        labels: &[S],
        templates: &[T],
    ) -> Result<Vec<Vec<f32>>> {
        if labels.is_empty() {
            return Err(Error::InvalidArgument("no labels given; pass at least one label".into()));
        }
        if let Some(bad) = templates.iter().find(|t| !t.as_ref().contains("{}")) {
            return Err(Error::InvalidArgument(format!(
                "prompt template `{}` has no `{{}}` for the label; write it like \"a photo of {{}}.\"",
                bad.as_ref()
            )));
        }
        let image_features = self.encode_image(pixels, batch, true).await?;
        let text_features = if templates.is_empty() {
            self.embed_texts(labels, true).await?
        } else {
            let mut classes = Vec::with_capacity(labels.len());
            for label in labels {
                let prompts: Vec<String> = templates.iter().map(|t| t.as_ref().replace("{}", label.as_ref())).collect();
                let features = self.embed_texts(&prompts, true).await?;
                let mut mean = vec![0f32; features[0].len()];
                for row in &features {
                    for (m, v) in mean.iter_mut().zip(row) {
                        *m += v / features.len() as f32;
                    }
                }
                let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                classes.push(mean.into_iter().map(|v| v / norm).collect::<Vec<f32>>());
            }
            classes
        };
        Ok(image_features
            .iter()
            .map(|image| {
                let logits: Vec<f32> = text_features
                    .iter()
                    .map(|text| {
                        let cosine: f32 = image.iter().zip(text).map(|(a, b)| a * b).sum();
                        self.model.logit_scale * cosine + self.model.logit_bias.unwrap_or(0.0)
                    })
                    .collect();
                softmax(&logits)
            })
            .collect())
    }

    /// Scores captions of preprocessed images: for each (image, text) pair, the decoder's
    /// log-probability of every text token after the start token, up to and including the end
    /// token, with the text fed to the decoder as in training (teacher forcing).
    pub async fn score_pixels<S: AsRef<str>>(&mut self, pixels: &[f32], texts: &[S]) -> Result<Vec<Vec<(u32, f32)>>> {
        if texts.is_empty() {
            return Err(Error::InvalidArgument("no texts given".into()));
        }
        let eos = self.tokenizer.end_of_text_id();
        let ids = self.tokenizer.tokenize_strict(texts, self.context_length())?;
        let output = self.forward(pixels, &ids, true).await?;
        let labels = output.labels.expect("forward with labels returns them");
        let mut scores = Vec::with_capacity(texts.len());
        for (logits, labels) in output.logits.iter().zip(&labels) {
            let mut tokens = Vec::new();
            for (row, &label) in logits.iter().zip(labels) {
                let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
                let log_total = row.iter().map(|v| (*v as f64 - max).exp()).sum::<f64>().ln() + max;
                tokens.push((label, (row[label as usize] as f64 - log_total) as f32));
                if label == eos {
                    break;
                }
            }
            scores.push(tokens);
        }
        Ok(scores)
    }

    /// Text embeddings; a text longer than the context is an error rather than truncated.
    pub async fn embed_texts<S: AsRef<str>>(&mut self, texts: &[S], normalize: bool) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Err(Error::InvalidArgument("no texts given".into()));
        }
        let ids = self.tokenizer.tokenize_strict(texts, self.context_length())?;
        self.encode_text(&ids, normalize).await
    }
}
