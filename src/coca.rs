//! The public model API, after open_clip's `CoCa`: `encode_image`, `encode_text`, `forward` and
//! `generate`, on preprocessed pixels and token ids. Plans are built on first use for each batch
//! shape and replayed afterwards.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::generate::{process_full_row, sample, top_k_with_ties, top_p_nucleus, BeamScoring, BeamSearch, GenerationConfig, GenerationType, SampleRng};
use crate::gpu::GpuContext;
use crate::graph::{DType, Graph, Plan, Tensor};
use crate::model::weights::HostWeights;
use crate::model::{Binder, CocaConfig, CocaModel, DecodeStep};
use crate::preprocess::{PreprocessConfig, Preprocessor};
use crate::tokenizer::Tokenizer;
use crate::timing::Stopwatch;

struct ImagePlan {
    plan: Plan,
    image: Tensor,
    latent: Tensor,
    latent_normalized: Tensor,
    image_embs: Tensor,
    cross_kv: Vec<Tensor>,
}

struct TextPlan {
    plan: Plan,
    ids: Tensor,
    latent: Tensor,
    latent_normalized: Tensor,
}

/// The image input of a forward pass: pixels, or image token embeddings computed before.
enum ForwardImage<'a> {
    Pixels(&'a [f32]),
    Embeddings(&'a [f32]),
}

struct ForwardPlan {
    plan: Plan,
    /// Pixels, or image token embeddings for a plan without the vision tower.
    image: Tensor,
    ids: Tensor,
    image_latent: Option<Tensor>,
    text_latent: Tensor,
    logits: Tensor,
}

struct CaptionPlan {
    image: ImagePlan,
    decode: Plan,
    step: DecodeStep,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct CaptionKey {
    batch: usize,
    rows_per_image: usize,
    k: usize,
    eos: u32,
    min_len: usize,
    repetition_penalty_bits: u32,
    log_softmax: bool,
    full_rows: bool,
}

/// Output of `forward`, as open_clip's output dict.
#[derive(Clone, Debug)]
pub struct ForwardOutput {
    /// Normalized image features `[B][embed_dim]`.
    pub image_features: Vec<Vec<f32>>,
    /// Normalized text features `[B][embed_dim]`.
    pub text_features: Vec<Vec<f32>>,
    /// Decoder logits `[B][T][vocab]`, T = text length - 1 with labels, else the text length.
    pub logits: Vec<Vec<Vec<f32>>>,
    /// The text shifted by one (`text[:, 1:]`), when labels were requested.
    pub labels: Option<Vec<Vec<u32>>>,
    /// `logit_scale.exp()`: the temperature of the contrastive logits.
    pub logit_scale: f32,
    /// The contrastive logit bias, for checkpoints that have one (SigLIP-style `init_logit_bias`).
    pub logit_bias: Option<f32>,
}

/// One generated sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    /// Token ids as open_clip's `generate` returns them: start token first.
    pub tokens: Vec<u32>,
    /// The beam score of the chosen hypothesis (beam search only).
    pub score: Option<f64>,
}

/// Timings of the last `generate` call, in milliseconds.
#[derive(Clone, Debug, Default)]
pub struct GenerationStats {
    /// Recording and planning the graphs; zero when the plans for this batch shape exist.
    pub plan_ms: f64,
    /// The image stage: vision tower, pooler and cross-attention keys and values.
    pub encode_ms: f64,
    /// All decode steps with their readback and the host-side search.
    pub decode_ms: f64,
    /// Decode steps run (a prefix and a moved `max_seq_len` window add steps).
    pub steps: usize,
    /// Kernel dispatches in one decode step, all in one submission.
    pub dispatches_per_step: usize,
    /// Bytes read back from the GPU per decode step.
    pub bytes_read_per_step: usize,
}

/// A CoCa model on a GPU, with the tokenizer and image preprocessing that go with it.
pub struct Coca {
    /// The GPU device, queue, limits and compiled kernels.
    pub ctx: GpuContext,
    /// The weights on the GPU and the architecture's sizes.
    pub model: CocaModel,
    /// open_clip's CLIP tokenizer.
    pub tokenizer: Tokenizer,
    /// Image decoding and preprocessing from the checkpoint's `preprocess_cfg`.
    pub preprocessor: Preprocessor,
    image_plans: HashMap<usize, ImagePlan>,
    text_plans: HashMap<usize, TextPlan>,
    forward_plans: HashMap<(usize, usize, bool, bool), ForwardPlan>,
    caption_plans: HashMap<CaptionKey, CaptionPlan>,
    /// Statistics of the most recent `generate` call.
    pub last_generation: GenerationStats,
}

fn floats(bytes: &[u8]) -> Vec<f32> {
    bytemuck::pod_collect_to_vec(bytes)
}

impl Coca {
    /// Uploads checked weights for `config`. Without a preprocessing config, images are resized
    /// to the model's input size with open_clip's default (OpenAI CLIP) mean and std.
    pub fn new(ctx: GpuContext, config: CocaConfig, weights: HostWeights) -> Result<Coca> {
        Self::with_preprocess(ctx, config, weights, None)
    }

    /// Like [`Coca::new`] with the `preprocess_cfg` of an `open_clip_config.json`.
    pub fn with_preprocess(
        ctx: GpuContext,
        config: CocaConfig,
        weights: HostWeights,
        preprocess: Option<PreprocessConfig>,
    ) -> Result<Coca> {
        let model = CocaModel::upload(&ctx, config, weights)?;
        let size = model.dims.image_size as u32;
        let preprocess = preprocess.unwrap_or_else(|| PreprocessConfig::square(size));
        if preprocess.size.height != size || preprocess.size.width != size {
            return Err(Error::Config(format!(
                "preprocess_cfg.size is {}x{}, but the model's vision tower takes {size}x{size} images",
                preprocess.size.height, preprocess.size.width
            )));
        }
        Ok(Coca {
            ctx,
            model,
            tokenizer: Tokenizer::clip()?,
            preprocessor: Preprocessor::new(preprocess)?,
            image_plans: HashMap::new(),
            text_plans: HashMap::new(),
            forward_plans: HashMap::new(),
            caption_plans: HashMap::new(),
            last_generation: GenerationStats::default(),
        })
    }

    /// Width and height of the square input image.
    pub fn image_size(&self) -> usize {
        self.model.dims.image_size
    }

    /// Returns the text tower's context length (76 for open_clip's CoCa configs).
    pub fn context_length(&self) -> usize {
        self.model.dims.context_length
    }

    fn check_pixels(&self, pixels: &[f32], batch: usize) -> Result<()> {
        let size = self.image_size();
        let expected = batch * 3 * size * size;
        if batch == 0 || pixels.len() != expected {
            return Err(Error::InvalidArgument(format!(
                "expected {batch} preprocessed image(s) of 3 x {size} x {size} ({expected} values), got {} values",
                pixels.len()
            )));
        }
        Ok(())
    }

    fn check_ids(&self, ids: &[Vec<u32>]) -> Result<Vec<u32>> {
        let vocab = self.model.dims.vocab_size as u32;
        let len = ids.first().map_or(0, |r| r.len());
        if ids.is_empty() || len == 0 {
            return Err(Error::InvalidArgument("no token ids given".into()));
        }
        if len > self.context_length() {
            return Err(Error::InvalidArgument(format!(
                "{len} tokens exceed the context length of {}; tokenize with truncation or shorten the text",
                self.context_length()
            )));
        }
        let mut flat = Vec::with_capacity(ids.len() * len);
        for row in ids {
            if row.len() != len {
                return Err(Error::InvalidArgument("every token row must have the same length (pad them)".into()));
            }
            if let Some(bad) = row.iter().find(|&&t| t >= vocab) {
                return Err(Error::InvalidArgument(format!("token id {bad} is outside the vocabulary of {vocab}")));
            }
            flat.extend_from_slice(row);
        }
        Ok(flat)
    }

    /// Builds the vision tower for `batch` images; with `cross_kv`, also every decoder layer's
    /// cross-attention keys and values, which captioning needs and embedding does not.
    fn build_image_plan(ctx: &GpuContext, model: &CocaModel, batch: usize, cross_kv: bool) -> Result<ImagePlan> {
        let size = model.dims.image_size;
        let mut g = Graph::new(ctx);
        let mut binder = Binder::new(model);
        let image = g.input("image", &[batch, 3, size, size], DType::F32)?;
        let outputs = binder.image_stage(&mut g, image, cross_kv)?;
        let latent_normalized = g.l2_normalize("image_features", outputs.latent)?;
        g.output(latent_normalized);
        Ok(ImagePlan {
            plan: g.build()?,
            image,
            latent: outputs.latent,
            latent_normalized,
            image_embs: outputs.image_embs,
            cross_kv: outputs.cross_kv,
        })
    }

    /// Image features `[B][embed_dim]` of preprocessed pixels ([B, 3, S, S] row-major).
    pub async fn encode_image(&mut self, pixels: &[f32], batch: usize, normalize: bool) -> Result<Vec<Vec<f32>>> {
        let (features, _) = self.encode_image_with_embs(pixels, batch, normalize).await?;
        Ok(features)
    }

    /// Image features and the image token embeddings `image_embs` [B][N * embed_dim], as
    /// `forward` without text returns them.
    pub async fn encode_image_with_embs(
        &mut self,
        pixels: &[f32],
        batch: usize,
        normalize: bool,
    ) -> Result<(Vec<Vec<f32>>, Vec<Vec<f32>>)> {
        self.check_pixels(pixels, batch)?;
        if !self.image_plans.contains_key(&batch) {
            let plan = Self::build_image_plan(&self.ctx, &self.model, batch, false)?;
            self.image_plans.insert(batch, plan);
        }
        let p = &self.image_plans[&batch];
        p.plan.write(&self.ctx, p.image, pixels)?;
        let latent = if normalize { p.latent_normalized } else { p.latent };
        let mut read = p.plan.run(&self.ctx, 0, &[latent, p.image_embs]).await?;
        let embs = floats(&read.pop().expect("two reads"));
        let features = floats(&read.pop().expect("two reads"));
        let dim = self.model.dims.embed_dim;
        let per_image = embs.len() / batch;
        Ok((features.chunks(dim).map(|c| c.to_vec()).collect(), embs.chunks(per_image).map(|c| c.to_vec()).collect()))
    }

    /// Text features `[B][embed_dim]` of token rows (each the same length, at most the context length).
    pub async fn encode_text(&mut self, ids: &[Vec<u32>], normalize: bool) -> Result<Vec<Vec<f32>>> {
        let flat = self.check_ids(ids)?;
        let (batch, len) = (ids.len(), ids[0].len());
        let key = batch * 1000 + len;
        if !self.text_plans.contains_key(&key) {
            let mut g = Graph::new(&self.ctx);
            let mut binder = Binder::new(&self.model);
            let ids_t = g.input("text", &[batch, len], DType::U32)?;
            let (latent, _) = binder.text(&mut g, ids_t)?;
            let latent_normalized = g.l2_normalize("text_features", latent)?;
            g.output(latent);
            g.output(latent_normalized);
            let plan = TextPlan { plan: g.build()?, ids: ids_t, latent, latent_normalized };
            self.text_plans.insert(key, plan);
        }
        let p = &self.text_plans[&key];
        p.plan.write(&self.ctx, p.ids, &flat)?;
        let latent = if normalize { p.latent_normalized } else { p.latent };
        let features = floats(&p.plan.run(&self.ctx, 0, &[latent]).await?.remove(0));
        Ok(features.chunks(self.model.dims.embed_dim).map(|c| c.to_vec()).collect())
    }

    /// open_clip's `forward(image, text)`: features, decoder logits and, with `output_labels`,
    /// the labels `text[:, 1:]` with logits over all positions but the last.
    pub async fn forward(&mut self, pixels: &[f32], ids: &[Vec<u32>], output_labels: bool) -> Result<ForwardOutput> {
        self.check_pixels(pixels, ids.len())?;
        self.forward_from(ForwardImage::Pixels(pixels), ids, output_labels).await
    }

    /// open_clip's `forward(image, text, image_latent=..., image_embs=...)`: the same as
    /// [`Coca::forward`] from image features and image token embeddings computed before (for
    /// example by [`Coca::encode_image_with_embs`] with `normalize = true`), without encoding the
    /// image again. `image_latent` is returned as the image features.
    pub async fn forward_with_image_embs(
        &mut self,
        image_latent: &[Vec<f32>],
        image_embs: &[Vec<f32>],
        ids: &[Vec<u32>],
        output_labels: bool,
    ) -> Result<ForwardOutput> {
        let d = &self.model.dims;
        let (tokens, width) = (d.pooler_queries - 1, d.embed_dim);
        let per_image = tokens * width;
        if image_latent.len() != ids.len() || image_embs.len() != ids.len() {
            return Err(Error::InvalidArgument(format!(
                "{} texts need as many image_latent and image_embs rows, got {} and {}",
                ids.len(),
                image_latent.len(),
                image_embs.len()
            )));
        }
        if let Some(bad) = image_embs.iter().find(|e| e.len() != per_image) {
            return Err(Error::InvalidArgument(format!(
                "image_embs rows must have {tokens} x {width} = {per_image} values (as encode_image_with_embs returns), got {}",
                bad.len()
            )));
        }
        let embs: Vec<f32> = image_embs.concat();
        let mut out = self.forward_from(ForwardImage::Embeddings(&embs), ids, output_labels).await?;
        out.image_features = image_latent.to_vec();
        Ok(out)
    }

    async fn forward_from(&mut self, source: ForwardImage<'_>, ids: &[Vec<u32>], output_labels: bool) -> Result<ForwardOutput> {
        let batch = ids.len();
        let flat = self.check_ids(ids)?;
        let len = ids[0].len();
        let positions = if output_labels { len - 1 } else { len };
        if positions == 0 {
            return Err(Error::InvalidArgument("forward with labels needs at least two tokens".into()));
        }
        let precomputed = matches!(source, ForwardImage::Embeddings(_));
        let key = (batch, len, output_labels, precomputed);
        if !self.forward_plans.contains_key(&key) {
            let size = self.image_size();
            let d = self.model.dims.clone();
            let mut g = Graph::new(&self.ctx);
            let mut binder = Binder::new(&self.model);
            let (image, image_latent, image_embs) = if precomputed {
                let embs = g.input("image_embs", &[batch, d.pooler_queries - 1, d.embed_dim], DType::F32)?;
                (embs, None, embs)
            } else {
                let image = g.input("image", &[batch, 3, size, size], DType::F32)?;
                let (latent, embs) = binder.vision(&mut g, image)?;
                let latent = g.l2_normalize("image_features", latent)?;
                g.output(latent);
                (image, Some(latent), embs)
            };
            let ids_t = g.input("text", &[batch, len], DType::U32)?;
            let (text_latent, tokens) = binder.text(&mut g, ids_t)?;
            let text_latent = g.l2_normalize("text_features", text_latent)?;
            let tokens = if output_labels { g.slice_rows("token_embs", tokens, 0, positions)? } else { tokens };
            let logits = binder.decoder(&mut g, image_embs, tokens)?;
            g.output(text_latent);
            g.output(logits);
            let plan = ForwardPlan { plan: g.build()?, image, ids: ids_t, image_latent, text_latent, logits };
            self.forward_plans.insert(key, plan);
        }
        let p = &self.forward_plans[&key];
        match source {
            ForwardImage::Pixels(pixels) | ForwardImage::Embeddings(pixels) => p.plan.write(&self.ctx, p.image, pixels)?,
        }
        p.plan.write(&self.ctx, p.ids, &flat)?;
        let mut reads = vec![p.text_latent, p.logits];
        reads.extend(p.image_latent);
        let read = p.plan.run(&self.ctx, 0, &reads).await?;
        let dim = self.model.dims.embed_dim;
        let vocab = self.model.dims.vocab_size;
        let logits = floats(&read[1]);
        let image_features = match read.get(2) {
            Some(bytes) => floats(bytes).chunks(dim).map(|c| c.to_vec()).collect(),
            None => Vec::new(),
        };
        Ok(ForwardOutput {
            image_features,
            text_features: floats(&read[0]).chunks(dim).map(|c| c.to_vec()).collect(),
            logits: logits.chunks(positions * vocab).map(|b| b.chunks(vocab).map(|r| r.to_vec()).collect()).collect(),
            labels: output_labels.then(|| ids.iter().map(|r| r[1..].to_vec()).collect()),
            logit_scale: self.model.logit_scale,
            logit_bias: self.model.logit_bias,
        })
    }

    fn caption_plan(&mut self, key: CaptionKey) -> Result<&CaptionPlan> {
        if !self.caption_plans.contains_key(&key) {
            let image = Self::build_image_plan(&self.ctx, &self.model, key.batch, true)?;
            let cross_kv: Vec<_> = image
                .cross_kv
                .iter()
                .map(|t| (image.plan.buffer(*t).clone(), image.plan.shape(*t).to_vec()))
                .collect();
            let mut g = Graph::new(&self.ctx);
            let mut binder = Binder::new(&self.model);
            let rows = key.batch * key.rows_per_image;
            let penalty = f32::from_bits(key.repetition_penalty_bits);
            let step = binder.decode_step(
                &mut g,
                rows,
                key.rows_per_image,
                &cross_kv,
                key.k,
                key.eos,
                key.min_len,
                penalty,
                key.log_softmax,
                key.full_rows,
            )?;
            let decode = g.build()?;
            self.caption_plans.insert(key, CaptionPlan { image, decode, step });
        }
        Ok(&self.caption_plans[&key])
    }

    /// open_clip's `generate` for preprocessed pixels of `batch` images: one sequence per image,
    /// or `num_return_sequences` per image (image-major, best first) for beam search. `prefix`
    /// continues from the given tokens (after the start token).
    pub async fn generate(
        &mut self,
        pixels: &[f32],
        batch: usize,
        config: &GenerationConfig,
        prefix: Option<&[u32]>,
    ) -> Result<Vec<Generation>> {
        self.generate_streaming(pixels, batch, config, prefix, &mut |_: usize, _: u32| true).await
    }

    /// Like [`Coca::generate`], calling `on_token(image, token)` for every token that sampling
    /// or greedy decoding appends (padding of finished sequences included). Returning `false`
    /// stops generation after the current step, as a stopping criterion does in open_clip. Beam
    /// search reports no tokens, because its beams change until the end.
    pub async fn generate_streaming(
        &mut self,
        pixels: &[f32],
        batch: usize,
        config: &GenerationConfig,
        prefix: Option<&[u32]>,
        on_token: &mut dyn FnMut(usize, u32) -> bool,
    ) -> Result<Vec<Generation>> {
        self.check_pixels(pixels, batch)?;
        config.validate(self.context_length())?;
        let pad = config.pad_token_id.unwrap_or(self.model.dims.pad_id);
        let rows_per_image = match config.generation_type {
            GenerationType::BeamSearch => config.num_beams,
            _ => 1,
        };
        let mut start = vec![config.sot_token_id];
        start.extend_from_slice(prefix.unwrap_or(&[]));
        if start.len() >= config.seq_len {
            return Err(Error::InvalidArgument(format!(
                "the prefix has {} tokens with the start token, not below seq_len {}; shorten the prefix or raise seq_len",
                start.len(),
                config.seq_len
            )));
        }
        let vocab = self.model.dims.vocab_size as u32;
        for (name, id) in [("eos_token_id", config.eos_token_id), ("pad_token_id", pad)] {
            if id >= vocab {
                return Err(Error::InvalidArgument(format!("{name} {id} is outside the vocabulary of {vocab} tokens")));
            }
        }
        if let Some(bad) = start.iter().find(|&&t| t >= vocab) {
            return Err(Error::InvalidArgument(format!("token id {bad} is outside the vocabulary of {vocab}")));
        }

        let key = CaptionKey {
            batch,
            rows_per_image,
            k: config.candidates_per_row(),
            eos: config.eos_token_id,
            min_len: config.min_seq_len,
            repetition_penalty_bits: config.repetition_penalty.to_bits(),
            log_softmax: config.generation_type == GenerationType::BeamSearch
                && config.beam_scoring == BeamScoring::LogSoftmax,
            full_rows: config.reads_full_rows(),
        };
        let clock = Stopwatch::start();
        self.caption_plan(key)?;
        let plan_ms = clock.elapsed_ms();

        let clock = Stopwatch::start();
        let plans = &self.caption_plans[&key];
        plans.image.plan.write(&self.ctx, plans.image.image, pixels)?;
        // Reading one float waits for the image stage, so encode and decode times are separate.
        plans.image.plan.run(&self.ctx, 0, &[plans.image.latent]).await?;
        let encode_ms = clock.elapsed_ms();

        let clock = Stopwatch::start();
        let decoder = StepRunner { ctx: &self.ctx, plan: &plans.decode, step: &plans.step, k: key.k };
        let tokenizer = &self.tokenizer;
        let stop_strings = &config.stop_strings;
        // A sequence stops once its text contains a stop string. The text is decoded without
        // the start token and any prefix, so a prefix never stops generation by itself.
        let prefix_len = start.len();
        let stops = move |tokens: &[u32]| -> bool {
            let generated = tokens.get(prefix_len..).unwrap_or(&[]);
            match tokenizer.decode(generated) {
                Ok(text) => stop_strings.iter().any(|s| text.contains(s.as_str())),
                Err(_) => false,
            }
        };
        let stops: Option<&dyn Fn(&[u32]) -> bool> = if stop_strings.is_empty() { None } else { Some(&stops) };
        let (outputs, steps) = match config.generation_type {
            GenerationType::BeamSearch => decoder.beam_search(batch, config, pad, &start, stops).await?,
            _ => decoder.sample(batch, config, pad, &start, stops, on_token).await?,
        };
        self.last_generation = GenerationStats {
            plan_ms,
            encode_ms,
            decode_ms: clock.elapsed_ms(),
            steps,
            dispatches_per_step: plans.decode.dispatches(),
            bytes_read_per_step: decoder.bytes_read_per_step(config),
        };
        Ok(outputs)
    }
}

/// One row's result of a decode step.
struct StepBest {
    /// The best (processed logit, token id) pairs, best first.
    candidates: Vec<(f32, u32)>,
    /// logsumexp of the processed logits over the vocabulary.
    logsumexp: f32,
}

/// Runs the decode plan step by step and keeps the host-side tables it reads.
struct StepRunner<'a> {
    ctx: &'a GpuContext,
    plan: &'a Plan,
    step: &'a DecodeStep,
    k: usize,
}

impl StepRunner<'_> {
    /// Runs one step at position `pos` for the last token of each row and returns each row's
    /// best (logit, token) pairs, best first.
    async fn run(&self, pos: usize, sequences: &[Vec<u32>], table: &[u32], read: bool) -> Result<Vec<StepBest>> {
        let max_len = self.step.max_len;
        let ids: Vec<u32> = sequences.iter().map(|s| s[pos]).collect();
        let mut history = vec![0u32; sequences.len() * max_len];
        for (row, seq) in sequences.iter().enumerate() {
            let n = seq.len().min(max_len);
            history[row * max_len..row * max_len + n].copy_from_slice(&seq[..n]);
        }
        self.plan.write(self.ctx, self.step.ids, &ids)?;
        self.plan.write(self.ctx, self.step.table, table)?;
        self.plan.write(self.ctx, self.step.history, &history)?;
        let reads = if read { vec![self.step.best] } else { Vec::new() };
        let out = self.plan.run(self.ctx, pos as u32, &reads).await?;
        if !read {
            return Ok(Vec::new());
        }
        let words: Vec<u32> = bytemuck::pod_collect_to_vec(&out[0]);
        Ok(words
            .chunks((self.k + 1) * 2)
            .map(|row| {
                let pairs: Vec<(f32, u32)> = row.chunks(2).map(|pair| (f32::from_bits(pair[0]), pair[1])).collect();
                StepBest { candidates: pairs[..self.k].to_vec(), logsumexp: pairs[self.k].0 }
            })
            .collect())
    }

    /// Reads the raw logits of the step just run at `pos` and applies the sampling logits
    /// processors to each whole row on the host, for sampling beyond the kernel's best candidates.
    /// NOTE: this is a second readback after the step's own; `top_k` above 16 needs it at every
    /// step and could read the logits with the best tokens in one copy.
    async fn full_rows(&self, pos: usize, sequences: &[Vec<u32>], config: &GenerationConfig) -> Result<Vec<StepBest>> {
        let tensor = self.step.logits.ok_or_else(|| Error::shape("decode step", "the plan does not keep its logits"))?;
        let logits = self.plan.read_f32(self.ctx, tensor).await?;
        let mask_eos = pos + 1 < config.min_seq_len;
        Ok(logits
            .chunks(self.step.vocab)
            .zip(sequences)
            .map(|(row, seq)| {
                let (candidates, logsumexp) =
                    process_full_row(row, &seq[..pos + 1], config.eos_token_id, mask_eos, config.repetition_penalty);
                StepBest { candidates, logsumexp }
            })
            .collect())
    }

    /// Bytes read back from the GPU per decode step: the best candidates of every row, and every
    /// row's logits where the sampling options always need them.
    fn bytes_read_per_step(&self, config: &GenerationConfig) -> usize {
        let best = self.step.rows * (self.k + 1) * 8;
        let full = if config.generation_type == GenerationType::TopK && config.reads_full_rows() {
            self.step.rows * self.step.vocab * 4
        } else {
            0
        };
        best + full
    }

    fn identity_table(&self, rows: usize) -> Vec<u32> {
        let max_len = self.step.max_len;
        (0..rows * max_len).map(|i| (i / max_len) as u32).collect()
    }

    /// Runs open_clip's sampling loop (`top_k`; with k = 1 it is greedy decoding). As in
    /// open_clip, the model reads only the last `max_seq_len` tokens. Once the sequence is longer,
    /// each step runs the whole window again from position 0, because every token's position changes.
    async fn sample(
        &self,
        batch: usize,
        config: &GenerationConfig,
        pad: u32,
        start: &[u32],
        stops: Option<&dyn Fn(&[u32]) -> bool>,
        on_token: &mut dyn FnMut(usize, u32) -> bool,
    ) -> Result<(Vec<Generation>, usize)> {
        let mut sequences: Vec<Vec<u32>> = vec![start.to_vec(); batch];
        let mut stopped = vec![false; batch];
        let table = self.identity_table(batch);
        let mut rng = SampleRng::new(config.seed);
        let mut steps = 0;
        let window = config.max_seq_len.min(self.step.max_len);
        for pos in 0..start.len().min(window) - 1 {
            self.run(pos, &sequences, &table, false).await?;
            steps += 1;
        }
        loop {
            let mut keep_going = true;
            let finished: Vec<bool> = sequences
                .iter()
                .zip(&stopped)
                .map(|(s, stopped)| {
                    let last = *s.last().expect("sequences start with the start token");
                    *stopped || last == config.eos_token_id || last == pad
                })
                .collect();
            if finished.iter().all(|f| *f) {
                if !config.fixed_output_length {
                    break;
                }
                for s in sequences.iter_mut() {
                    s.push(pad);
                }
                for row in 0..batch {
                    keep_going &= on_token(row, pad);
                }
            } else {
                let full_len = sequences[0].len();
                let windowed: Vec<Vec<u32>> =
                    sequences.iter().map(|s| s[full_len.saturating_sub(window)..].to_vec()).collect();
                let cur_len = windowed[0].len();
                if full_len > window {
                    // The window moved, so every position has another token now.
                    for pos in 0..cur_len - 1 {
                        self.run(pos, &windowed, &table, false).await?;
                        steps += 1;
                    }
                }
                let best = self.run(cur_len - 1, &windowed, &table, true).await?;
                steps += 1;
                let forced_eos = cur_len + 1 == config.seq_len;
                // Rows whose candidates the GPU's best tokens cannot give: a top_k above the
                // kernel's maximum, or a top_p nucleus wider than the best tokens.
                let needs_full_row = |row: usize| {
                    !finished[row]
                        && !forced_eos
                        && match config.generation_type {
                            GenerationType::TopP => {
                                top_p_nucleus(&best[row].candidates, best[row].logsumexp, config.top_p).is_none()
                            }
                            _ => config.reads_full_rows(),
                        }
                };
                let full = if (0..batch).any(needs_full_row) {
                    Some(self.full_rows(cur_len - 1, &windowed, config).await?)
                } else {
                    None
                };
                for (row, s) in sequences.iter_mut().enumerate() {
                    let token = if finished[row] {
                        pad
                    } else if forced_eos {
                        config.eos_token_id
                    } else {
                        let row_best = match &full {
                            Some(full) if needs_full_row(row) => &full[row],
                            _ => &best[row],
                        };
                        let candidates = match config.generation_type {
                            // A whole row always covers top_p, up to rounding in the sum.
                            GenerationType::TopP => top_p_nucleus(&row_best.candidates, row_best.logsumexp, config.top_p)
                                .unwrap_or(&row_best.candidates),
                            _ => top_k_with_ties(&row_best.candidates, config.top_k),
                        };
                        sample(candidates, config.temperature, &mut rng)
                    };
                    s.push(token);
                    if !finished[row] && token != config.eos_token_id {
                        stopped[row] = stops.is_some_and(|stops| stops(s));
                    }
                    keep_going &= on_token(row, token);
                }
            }
            if sequences[0].len() >= config.seq_len || !keep_going {
                break;
            }
        }
        Ok((sequences.into_iter().map(|tokens| Generation { tokens, score: None }).collect(), steps))
    }

    /// Beam search as transformers' group beam search, driven the way open_clip 3.3.0 drives it:
    /// groups in order, transformers' hypothesis bookkeeping, and scores that sum either
    /// log-probabilities or (open_clip 3.3.0) raw logits, as the decode plan computes them.
    async fn beam_search(
        &self,
        batch: usize,
        config: &GenerationConfig,
        pad: u32,
        start: &[u32],
        stops: Option<&dyn Fn(&[u32]) -> bool>,
    ) -> Result<(Vec<Generation>, usize)> {
        let max_len = self.step.max_len;
        let mut search = BeamSearch::new(batch, config, pad, start);
        let mut table = self.identity_table(batch * config.num_beams);
        let vocab = self.plan_vocab();
        let mut steps = 0;
        for pos in 0..start.len() - 1 {
            self.run(pos, &search.input_ids, &table, false).await?;
            steps += 1;
        }
        loop {
            let cur_len = search.input_ids[0].len();
            let best = self.run(cur_len - 1, &search.input_ids, &table, true).await?;
            steps += 1;
            let candidates: Vec<Vec<(f32, u32)>> = best.into_iter().map(|b| b.candidates).collect();
            let reordering = search.step(&candidates, vocab, stops);
            let old = table.clone();
            for (row, &source) in reordering.iter().enumerate() {
                table[row * max_len..row * max_len + cur_len].copy_from_slice(&old[source * max_len..source * max_len + cur_len]);
                if cur_len < max_len {
                    table[row * max_len + cur_len] = row as u32;
                }
            }
            if search.is_done() || cur_len + 1 >= config.seq_len {
                break;
            }
        }
        let outputs = search.finalize(config.seq_len, config.num_return_sequences);
        let mut outputs: Vec<Generation> =
            outputs.into_iter().map(|(tokens, score)| Generation { tokens, score: Some(score) }).collect();
        if config.fixed_output_length {
            for output in &mut outputs {
                if output.tokens.len() < config.seq_len {
                    output.tokens.resize(config.seq_len, pad);
                }
            }
        }
        Ok((outputs, steps))
    }

    fn plan_vocab(&self) -> usize {
        self.step.vocab
    }
}
