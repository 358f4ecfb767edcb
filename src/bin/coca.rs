//! `coca`: caption images, embed images and texts, and report the GPU, from the command line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use coca_wgpu::generate::{GenerationConfig, GenerationType};
use coca_wgpu::gpu::parse_backends;
use coca_wgpu::hub::{Hub, HubOptions, ModelConfig, ModelSpec};
use coca_wgpu::model::weights::HostWeights;
use coca_wgpu::{Coca, CocaConfig, Error, GpuContext, GpuOptions, Result};

/// The demo model bundled with the binary: a small CoCa trained on synthetic shapes.
const DEMO_CONFIG: &str = include_str!("../../models/demo/open_clip_config.json");
const DEMO_WEIGHTS: &[u8] = include_bytes!("../../models/demo/open_clip_model.safetensors");

#[derive(Parser)]
#[command(name = "coca", version, about = "CoCa (open_clip's Contrastive Captioner) on the GPU through wgpu")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Caption images.
    Caption(CaptionArgs),
    /// Print image embeddings.
    EmbedImage(EmbedImageArgs),
    /// Print text embeddings.
    EmbedText(EmbedTextArgs),
    /// Zero-shot classification of images against text labels.
    Classify(ClassifyArgs),
    /// Log-likelihood of a caption for each image, per token and in total.
    Score(ScoreArgs),
    /// open_clip's forward pass: features, logit scale and bias, decoder logits and labels.
    Forward(ForwardArgs),
    /// Print the GPU adapter, backend, driver, limits and features.
    Info(GpuArgs),
}

#[derive(Args)]
struct GpuArgs {
    /// GPU backend(s) to use: vulkan, metal, dx12, gl, webgpu (comma separated). Default: WGPU_BACKEND, else all.
    #[arg(long)]
    backend: Option<String>,
}

#[derive(Args)]
struct ModelArgs {
    /// `demo` (bundled), a folder with open_clip_config.json and a .safetensors file (or
    /// open_clip_pytorch_model.bin), a .safetensors or torch.save .bin weights file,
    /// `hf-hub:ORG/REPO`, or an open_clip pretrained name such as coca_ViT-B-32:laion2b_s13b_b90k
    /// (Hub models download into the Hugging Face cache).
    #[arg(long, default_value = "demo")]
    model: String,
    /// Model config: a built-in name (coca_ViT-B-32, coca_ViT-L-14) or a JSON file. Default: the
    /// open_clip_config.json next to the weights.
    #[arg(long)]
    config: Option<String>,
    #[command(flatten)]
    gpu: GpuArgs,
}

#[derive(Args)]
struct CaptionArgs {
    /// Image files (PNG, JPEG, WebP, GIF, BMP) or folders of them.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// Decoding: beam_search, top_k (with --top-k 1 it is greedy) or top_p (nucleus sampling).
    #[arg(long, default_value = "beam_search")]
    generation: String,
    /// Beams per image for beam search.
    #[arg(long, default_value_t = 6)]
    num_beams: usize,
    /// Beam groups; open_clip's default is 3, its 1-group search is plain beam search.
    #[arg(long, default_value_t = 3)]
    num_beam_groups: usize,
    /// Tokens kept for top_k sampling, at least 1 (1: greedy). Above 16, each step reads whole rows of logits.
    #[arg(long, default_value_t = 1)]
    top_k: usize,
    /// Nucleus size for top_p sampling: the most likely tokens up to this probability mass.
    #[arg(long, default_value_t = 0.1)]
    top_p: f32,
    /// Softmax temperature for top_k and top_p sampling.
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Maximum caption length in tokens, the start token included.
    #[arg(long, default_value_t = 30)]
    seq_len: usize,
    /// Minimum caption length in tokens before the end token may appear, the start token included.
    #[arg(long, default_value_t = 5)]
    min_seq_len: usize,
    /// Penalty for tokens already in the caption (1.0: none; above 1 discourages repeats).
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f32,
    /// Beam scores: log_softmax (sums of log-probabilities) or raw_logits (open_clip 3.3.0's sums
    /// of logits, which favor longer captions).
    #[arg(long, default_value = "log_softmax")]
    beam_scoring: String,
    /// Diverse beam search: score penalty per earlier beam group that picked the same token.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    diversity_penalty: f32,
    /// Finished beams' scores are divided by length^length_penalty (above 0 favors longer
    /// captions; negative values are allowed).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    length_penalty: f64,
    /// When beam search stops: false (heuristic), true (as soon as enough beams end) or never.
    #[arg(long, default_value = "false")]
    early_stopping: String,
    /// Captions per image from beam search, best first.
    #[arg(long, default_value_t = 1)]
    num_return_sequences: usize,
    /// Text the caption continues, e.g. "a photo of".
    #[arg(long)]
    prefix: Option<String>,
    /// Stop a caption once its text contains this string (repeat for several).
    #[arg(long = "stop")]
    stop_strings: Vec<String>,
    /// Sampling feeds the model only the last this many tokens, as open_clip's max_seq_len.
    #[arg(long, default_value_t = 77)]
    max_seq_len: usize,
    /// Pad every caption's tokens to --seq-len with the pad token.
    #[arg(long)]
    fixed_output_length: bool,
    /// Start-of-text token id.
    #[arg(long, default_value_t = 49406)]
    sot_token_id: u32,
    /// End-of-text token id.
    #[arg(long, default_value_t = 49407)]
    eos_token_id: u32,
    /// Padding token id. Default: the model's pad id (0).
    #[arg(long)]
    pad_token_id: Option<u32>,
    /// Seed for sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images per GPU batch.
    #[arg(long, default_value_t = 1)]
    batch_size: usize,
    /// Print one JSON object per caption per line.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct EmbedImageArgs {
    /// Image files (PNG, JPEG, WebP, GIF, BMP) or folders of them.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// Print the raw features instead of L2-normalized ones.
    #[arg(long)]
    no_normalize: bool,
    /// Print one JSON object per image per line with the vector.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ClassifyArgs {
    /// Image files (PNG, JPEG, WebP, GIF, BMP) or folders of them.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Comma-separated labels, e.g. "a dog,a cat".
    #[arg(long, required = true)]
    labels: String,
    /// Prompt template with `{}` for the label, e.g. "a photo of {}." (repeat for several; the
    /// prompts' embeddings are averaged per label, as in open_clip's zero-shot classifier).
    #[arg(long = "template")]
    templates: Vec<String>,
    #[command(flatten)]
    model: ModelArgs,
    /// Print one JSON object per image per line with every label's probability.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ScoreArgs {
    /// Image files (PNG, JPEG, WebP, GIF, BMP) or folders of them.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// The caption to score.
    #[arg(long, required = true)]
    text: String,
    #[command(flatten)]
    model: ModelArgs,
    /// Print one JSON object per image per line with every token's log-probability.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ForwardArgs {
    /// Image files (PNG, JPEG, WebP, GIF, BMP) or folders of them, run as one batch.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Text for teacher forcing, tokenized to the context length as open_clip does. Without it
    /// the output has image features and image token embeddings only.
    #[arg(long)]
    text: Option<String>,
    /// Also return the labels (the text shifted by one) and logits for all positions but the last.
    #[arg(long)]
    output_labels: bool,
    /// Best tokens to print per position.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Write every output tensor, logits included, to this .safetensors file.
    #[arg(long)]
    save: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// Print one JSON object per image per line.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct EmbedTextArgs {
    /// Texts to embed, each at most the model's context length in tokens (76 for CoCa).
    #[arg(required = true)]
    texts: Vec<String>,
    #[command(flatten)]
    model: ModelArgs,
    /// Print the raw features instead of L2-normalized ones.
    #[arg(long)]
    no_normalize: bool,
    /// Print one JSON object per text per line with the vector.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Caption(args) => caption(args),
        Command::EmbedImage(args) => embed_image(args),
        Command::EmbedText(args) => embed_text(args),
        Command::Classify(args) => classify(args),
        Command::Score(args) => score(args),
        Command::Forward(args) => forward(args),
        Command::Info(args) => info(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`coca caption ... | head -1`) ends the output quietly, as other tools do.
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn gpu(args: &GpuArgs) -> Result<GpuContext> {
    let backends = args.backend.as_deref().map(parse_backends).transpose()?;
    pollster::block_on(GpuContext::new(&GpuOptions { backends, ..GpuOptions::default() }))
}

fn info(args: GpuArgs) -> Result<()> {
    println!("{}", gpu(&args)?.describe());
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })
}

/// Finds the config text and the weights file for `--model` and `--config`.
fn resolve_model(args: &ModelArgs) -> Result<(String, Option<PathBuf>)> {
    if args.model == "demo" {
        return Ok((args.config.as_deref().map(config_text).transpose()?.unwrap_or_else(|| DEMO_CONFIG.into()), None));
    }
    let path = PathBuf::from(&args.model);
    if !path.exists() {
        if let Some(spec) = ModelSpec::parse(&args.model)? {
            return resolve_hub_model(args, &spec);
        }
    }
    let (folder, weights) = if path.is_dir() {
        (path.clone(), weights_in_folder(&path)?)
    } else if path.is_file() {
        if path.extension().is_none_or(|x| x != "safetensors" && x != "bin") {
            return Err(Error::InvalidArgument(format!(
                "--model {}: not a .safetensors or .bin weights file; use `demo`, a model folder, a .safetensors \
                 file or a torch.save .bin file",
                path.display()
            )));
        }
        (path.parent().map(Path::to_path_buf).unwrap_or_default(), path.clone())
    } else {
        return Err(Error::InvalidArgument(format!(
            "--model {}: no such file or folder; use `demo`, a model folder, a .safetensors file or a torch.save \
             .bin file",
            args.model
        )));
    };
    let config = match &args.config {
        Some(config) => config_text(config)?,
        None => {
            let file = folder.join("open_clip_config.json");
            if !file.exists() {
                return Err(Error::InvalidArgument(format!(
                    "no open_clip_config.json next to {}; pass --config coca_ViT-B-32 (or another built-in name or JSON file)",
                    weights.display()
                )));
            }
            read_text(&file)?
        }
    };
    Ok((config, Some(weights)))
}

/// Finds the config text and the weights of a Hub model, downloading what the Hugging Face cache
/// lacks. `--config` replaces the repository's config.
fn resolve_hub_model(args: &ModelArgs, spec: &ModelSpec) -> Result<(String, Option<PathBuf>)> {
    let files = Hub::new(HubOptions::from_env())?.resolve(spec)?;
    let config = match (&args.config, &files.config) {
        (Some(name_or_file), _) => config_text(name_or_file)?,
        (None, Some(ModelConfig::File(path))) => read_text(path)?,
        (None, Some(ModelConfig::Builtin(name))) => config_text(name)?,
        (None, None) => {
            return Err(Error::InvalidArgument(format!(
                "{} has no open_clip_config.json; pass --config coca_ViT-B-32 (or another built-in name or JSON file)",
                files.repo
            )))
        }
    };
    Ok((config, Some(files.weights)))
}

/// Picks the weights file of a model folder: open_clip's safetensors names first, else the only
/// .safetensors file, else open_clip_pytorch_model.bin.
fn weights_in_folder(folder: &Path) -> Result<PathBuf> {
    for name in ["open_clip_model.safetensors", "model.safetensors"] {
        if folder.join(name).is_file() {
            return Ok(folder.join(name));
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(|source| Error::Io { path: folder.to_path_buf(), source })?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    found.sort();
    let pytorch = folder.join("open_clip_pytorch_model.bin");
    match found.len() {
        1 => Ok(found.remove(0)),
        0 if pytorch.is_file() => Ok(pytorch),
        0 => Err(Error::InvalidArgument(format!(
            "no .safetensors file and no open_clip_pytorch_model.bin in {}; download the model's weights there",
            folder.display()
        ))),
        _ => Err(Error::InvalidArgument(format!(
            "{} has several .safetensors files and none is named open_clip_model.safetensors; pass the weights file as --model",
            folder.display()
        ))),
    }
}

fn config_text(name_or_file: &str) -> Result<String> {
    if let Some((_, text)) = coca_wgpu::model::config::BUILTIN_CONFIGS.iter().find(|(n, _)| *n == name_or_file) {
        return Ok(text.to_string());
    }
    let path = Path::new(name_or_file);
    if path.exists() {
        return read_text(path);
    }
    let names: Vec<&str> = coca_wgpu::model::config::BUILTIN_CONFIGS.iter().map(|(n, _)| *n).collect();
    Err(Error::InvalidArgument(format!(
        "--config {name_or_file}: not a built-in config ({}) nor a file",
        names.join(", ")
    )))
}

fn load(args: &ModelArgs) -> Result<Coca> {
    let (config_json, weights_path) = resolve_model(args)?;
    let ctx = gpu(&args.gpu)?;
    let (config, preprocess) = CocaConfig::from_json(&config_json)?;
    let preprocess = coca_wgpu::api::preprocess_config(preprocess, &config)?;
    let host = match &weights_path {
        Some(path) if path.extension().is_some_and(|x| x == "bin") => {
            HostWeights::from_pytorch(&read(path)?, &path.display().to_string())?
        }
        Some(path) => HostWeights::from_safetensors(&read(path)?, &path.display().to_string())?,
        None => HostWeights::from_safetensors(DEMO_WEIGHTS, "the bundled demo model")?,
    };
    Coca::with_preprocess(ctx, config, host, preprocess)
}

/// Lists the image files named on the command line, replacing each folder by the image files in
/// it (PNG, JPEG, WebP, GIF, BMP by extension, sorted by name).
fn expand_images(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    const EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "webp", "gif", "bmp"];
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let entries = std::fs::read_dir(path).map_err(|source| Error::Io { path: path.clone(), source })?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension().and_then(|e| e.to_str()).is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            })
            .collect();
        if found.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "folder {} has no image files (.png, .jpg, .jpeg, .webp, .gif, .bmp)",
                path.display()
            )));
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

fn read_images(paths: &[PathBuf]) -> Result<Vec<Vec<u8>>> {
    paths.iter().map(|p| read(p)).collect()
}

fn progress(count: usize) -> Option<indicatif::ProgressBar> {
    (count > 1).then(|| {
        let bar = indicatif::ProgressBar::new(count as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} images, {elapsed} elapsed, {eta} left")
                .expect("valid template"),
        );
        bar
    })
}

fn caption(mut args: CaptionArgs) -> Result<()> {
    args.images = expand_images(&args.images)?;
    let config = GenerationConfig {
        generation_type: args.generation.parse::<GenerationType>()?,
        num_beams: args.num_beams,
        num_beam_groups: args.num_beam_groups,
        top_k: args.top_k,
        top_p: args.top_p,
        temperature: args.temperature,
        seq_len: args.seq_len,
        min_seq_len: args.min_seq_len,
        seed: args.seed,
        repetition_penalty: args.repetition_penalty,
        beam_scoring: args.beam_scoring.parse()?,
        diversity_penalty: args.diversity_penalty,
        length_penalty: args.length_penalty,
        early_stopping: args.early_stopping.parse()?,
        num_return_sequences: args.num_return_sequences,
        stop_strings: args.stop_strings.clone(),
        max_seq_len: args.max_seq_len,
        fixed_output_length: args.fixed_output_length,
        sot_token_id: args.sot_token_id,
        eos_token_id: args.eos_token_id,
        pad_token_id: args.pad_token_id,
        ..GenerationConfig::default()
    };
    if args.batch_size == 0 {
        return Err(Error::InvalidArgument("--batch-size must be at least 1".into()));
    }
    let clock = std::time::Instant::now();
    let mut coca = load(&args.model)?;
    config.validate(coca.context_length())?;
    let load_ms = clock.elapsed().as_secs_f64() * 1000.0;
    let bar = progress(args.images.len());
    let stdout = std::io::stdout();
    for chunk in args.images.chunks(args.batch_size) {
        let bytes = read_images(chunk)?;
        let clock = std::time::Instant::now();
        let pixels = preprocess(&coca, chunk, &bytes)?;
        let preprocess_ms = clock.elapsed().as_secs_f64() * 1000.0;
        let captions =
            pollster::block_on(coca.caption_pixels(&pixels, chunk.len(), &config, args.prefix.as_deref()))?;
        let stats = coca.last_generation.clone();
        // Beam search may return several captions per image, best first.
        let per_image = captions.len() / chunk.len();
        for (index, caption) in captions.into_iter().enumerate() {
            let path = &chunk[index / per_image];
            let line = if args.json {
                serde_json::json!({
                    "image": path.display().to_string(),
                    "rank": index % per_image,
                    "caption": caption.text,
                    "tokens": caption.tokens,
                    "score": caption.score,
                    "timings_ms": {
                        "load": load_ms,
                        "preprocess": preprocess_ms,
                        "plan": stats.plan_ms,
                        "encode": stats.encode_ms,
                        "decode": stats.decode_ms,
                    },
                    "decode_steps": stats.steps,
                    "batch": chunk.len(),
                })
                .to_string()
            } else if per_image > 1 {
                format!("{}\t{}\t{}", path.display(), index % per_image, caption.text)
            } else {
                format!("{}\t{}", path.display(), caption.text)
            };
            // Results go to standard output; the bar (on standard error) hides while they print.
            let print = || writeln!(stdout.lock(), "{line}").map_err(|e| Error::io("standard output", e));
            match &bar {
                Some(bar) => bar.suspend(print)?,
                None => print()?,
            }
        }
        if let Some(bar) = &bar {
            bar.inc(chunk.len() as u64);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(())
}

/// Decodes and preprocesses a batch of image files, naming the file that fails.
fn preprocess(coca: &Coca, paths: &[PathBuf], images: &[Vec<u8>]) -> Result<Vec<f32>> {
    let mut pixels = Vec::new();
    for (path, bytes) in paths.iter().zip(images) {
        let image = coca
            .preprocessor
            .preprocess_bytes(bytes)
            .map_err(|source| Error::Image { path: path.display().to_string(), source })?;
        pixels.extend_from_slice(&image.data);
    }
    Ok(pixels)
}

fn print_vectors(labels: &[String], vectors: &[Vec<f32>], key: &str, json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for (label, vector) in labels.iter().zip(vectors) {
        let line = if json {
            serde_json::json!({ key: label, "embedding": vector }).to_string()
        } else {
            let preview: Vec<String> = vector.iter().take(4).map(|v| format!("{v:.4}")).collect();
            format!("{label}\t[{}, ...] ({} values)", preview.join(", "), vector.len())
        };
        writeln!(out, "{line}").map_err(|e| Error::io("standard output", e))?;
    }
    Ok(())
}

fn embed_image(mut args: EmbedImageArgs) -> Result<()> {
    args.images = expand_images(&args.images)?;
    let mut coca = load(&args.model)?;
    let labels: Vec<String> = args.images.iter().map(|p| p.display().to_string()).collect();
    let mut vectors = Vec::new();
    for path in &args.images {
        let bytes = read(path)?;
        let pixels = preprocess(&coca, std::slice::from_ref(path), &[bytes])?;
        vectors.extend(pollster::block_on(coca.encode_image(&pixels, 1, !args.no_normalize))?);
    }
    print_vectors(&labels, &vectors, "image", args.json)
}

fn embed_text(args: EmbedTextArgs) -> Result<()> {
    let mut coca = load(&args.model)?;
    let vectors = pollster::block_on(coca.embed_texts(&args.texts, !args.no_normalize))?;
    print_vectors(&args.texts, &vectors, "text", args.json)
}

fn classify(mut args: ClassifyArgs) -> Result<()> {
    args.images = expand_images(&args.images)?;
    let labels: Vec<String> = args.labels.split(',').map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
    if labels.is_empty() {
        return Err(Error::InvalidArgument("--labels is empty; pass comma-separated labels such as \"a dog,a cat\"".into()));
    }
    let mut coca = load(&args.model)?;
    let images = read_images(&args.images)?;
    let pixels = preprocess(&coca, &args.images, &images)?;
    let probabilities =
        pollster::block_on(coca.classify_pixels_with_templates(&pixels, args.images.len(), &labels, &args.templates))?;
    let mut out = std::io::stdout().lock();
    for (path, probs) in args.images.iter().zip(probabilities) {
        let best = probs.iter().enumerate().fold(0, |best, (i, p)| if *p > probs[best] { i } else { best });
        let line = if args.json {
            let scores: serde_json::Map<String, serde_json::Value> =
                labels.iter().zip(&probs).map(|(l, p)| (l.clone(), serde_json::json!(p))).collect();
            serde_json::json!({ "image": path.display().to_string(), "label": labels[best], "probabilities": scores }).to_string()
        } else {
            format!("{}\t{}\t{:.3}", path.display(), labels[best], probs[best])
        };
        writeln!(out, "{line}").map_err(|e| Error::io("standard output", e))?;
    }
    Ok(())
}

fn score(mut args: ScoreArgs) -> Result<()> {
    args.images = expand_images(&args.images)?;
    let mut coca = load(&args.model)?;
    let mut out = std::io::stdout().lock();
    for path in &args.images {
        let bytes = read(path)?;
        let pixels = preprocess(&coca, std::slice::from_ref(path), &[bytes])?;
        let tokens = pollster::block_on(coca.score_pixels(&pixels, &[args.text.as_str()]))?.remove(0);
        let total: f32 = tokens.iter().map(|(_, logprob)| logprob).sum();
        let line = if args.json {
            let per_token: Vec<serde_json::Value> =
                tokens.iter().map(|(id, logprob)| serde_json::json!({ "token": id, "logprob": logprob })).collect();
            serde_json::json!({ "image": path.display().to_string(), "text": args.text, "logprob": total, "tokens": per_token })
                .to_string()
        } else {
            format!("{}\t{:.4}\t({} tokens)", path.display(), total, tokens.len())
        };
        writeln!(out, "{line}").map_err(|e| Error::io("standard output", e))?;
    }
    Ok(())
}

/// Returns the best `top` (token, logit) pairs of a row of logits.
fn best_tokens(row: &[f32], top: usize) -> Vec<(u32, f32)> {
    let mut order: Vec<u32> = (0..row.len() as u32).collect();
    order.sort_by(|a, b| row[*b as usize].total_cmp(&row[*a as usize]).then(a.cmp(b)));
    order.into_iter().take(top).map(|id| (id, row[id as usize])).collect()
}

fn forward(mut args: ForwardArgs) -> Result<()> {
    args.images = expand_images(&args.images)?;
    let mut coca = load(&args.model)?;
    let batch = args.images.len();
    let bytes = read_images(&args.images)?;
    let pixels = preprocess(&coca, &args.images, &bytes)?;
    let mut tensors: Vec<(String, Vec<usize>, safetensors::Dtype, Vec<u8>)> = Vec::new();
    let mut add = |name: &str, shape: Vec<usize>, values: Vec<f32>| {
        tensors.push((name.to_string(), shape, safetensors::Dtype::F32, bytemuck::cast_slice(&values).to_vec()));
    };
    let mut lines = Vec::new();
    match &args.text {
        None => {
            let (features, embs) = pollster::block_on(coca.encode_image_with_embs(&pixels, batch, true))?;
            let dim = coca.model.dims.embed_dim;
            for (path, feature) in args.images.iter().zip(&features) {
                lines.push(serde_json::json!({
                    "image": path.display().to_string(),
                    "image_features": feature,
                    "image_embs_shape": [coca.model.dims.pooler_queries - 1, dim],
                }));
            }
            add("image_features", vec![batch, dim], features.concat());
            add("image_embs", vec![batch, coca.model.dims.pooler_queries - 1, dim], embs.concat());
        }
        Some(text) => {
            let ids = coca.tokenizer.tokenize_strict(&[text.as_str()], coca.context_length())?.remove(0);
            let rows = vec![ids; batch];
            let out = pollster::block_on(coca.forward(&pixels, &rows, args.output_labels))?;
            let positions = out.logits[0].len();
            let vocab = coca.model.dims.vocab_size;
            let dim = coca.model.dims.embed_dim;
            for (b, path) in args.images.iter().enumerate() {
                let top: Vec<Vec<serde_json::Value>> = out.logits[b]
                    .iter()
                    .map(|row| {
                        best_tokens(row, args.top).into_iter().map(|(id, v)| serde_json::json!([id, v])).collect()
                    })
                    .collect();
                lines.push(serde_json::json!({
                    "image": path.display().to_string(),
                    "image_features": out.image_features[b],
                    "text_features": out.text_features[b],
                    "logit_scale": out.logit_scale,
                    "logit_bias": out.logit_bias,
                    "labels": out.labels.as_ref().map(|l| &l[b]),
                    "logits_shape": [positions, vocab],
                    "top_tokens": top,
                }));
            }
            add("image_features", vec![batch, dim], out.image_features.concat());
            add("text_features", vec![batch, dim], out.text_features.concat());
            add("logits", vec![batch, positions, vocab], out.logits.concat().concat());
            add("logit_scale", vec![], vec![out.logit_scale]);
            if let Some(bias) = out.logit_bias {
                add("logit_bias", vec![], vec![bias]);
            }
            if let Some(labels) = &out.labels {
                let values: Vec<i64> = labels.concat().into_iter().map(i64::from).collect();
                tensors.push((
                    "labels".into(),
                    vec![batch, positions],
                    safetensors::Dtype::I64,
                    bytemuck::cast_slice(&values).to_vec(),
                ));
            }
        }
    }
    if let Some(path) = &args.save {
        let views = tensors
            .iter()
            .map(|(name, shape, dtype, data)| {
                safetensors::tensor::TensorView::new(*dtype, shape.clone(), data).map(|view| (name.clone(), view))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::InvalidArgument(format!("cannot build the output tensors: {e}")))?;
        let bytes = safetensors::tensor::serialize(views, None)
            .map_err(|e| Error::InvalidArgument(format!("cannot serialize the output tensors: {e}")))?;
        std::fs::write(path, bytes).map_err(|source| Error::Io { path: path.clone(), source })?;
    }
    let mut out = std::io::stdout().lock();
    for line in lines {
        let text = if args.json {
            line.to_string()
        } else {
            let mut summary = format!("{}\timage_features[{}]", line["image"].as_str().unwrap_or(""), line["image_features"].as_array().map_or(0, |a| a.len()));
            if let Some(top) = line["top_tokens"].as_array() {
                let first: Vec<String> = top
                    .iter()
                    .map(|position| {
                        let id = position[0][0].as_u64().unwrap_or(0) as u32;
                        coca.tokenizer.decode(&[id]).unwrap_or_default()
                    })
                    .collect();
                summary.push_str(&format!("\tlogit_scale {}\tbest token per position: {}", line["logit_scale"], first.join("|")));
            }
            summary
        };
        writeln!(out, "{text}").map_err(|e| Error::io("standard output", e))?;
    }
    Ok(())
}
