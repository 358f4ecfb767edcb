//! Bad input gets an error that names the problem and the fix: weights, configs, options,
//! text, GPU adapters and buffer limits.

mod common;

use coca_wgpu::model::weights::{HostTensor, HostWeights};
use coca_wgpu::{Coca, CocaConfig, Error, GenerationConfig, GenerationType, GpuContext, GpuOptions};
use common::{context, fixtures};

fn small_config() -> CocaConfig {
    let text = std::fs::read_to_string(fixtures().join("parity/small_quickgelu/model.json")).unwrap();
    CocaConfig::from_json(&text).unwrap().0
}

fn small_weights(config: &CocaConfig) -> HostWeights {
    HostWeights::synthesized(&config.dims().unwrap(), config.init_logit_bias.is_some())
}

fn load_error(config: CocaConfig, weights: HostWeights) -> String {
    match Coca::new(context(), config, weights) {
        Ok(_) => panic!("loading should fail"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn missing_tensor_is_named_with_its_shape() {
    let config = small_config();
    let mut weights = small_weights(&config);
    weights.tensors.remove("text_decoder.cross_attn.1.attn.in_proj_weight");
    let message = load_error(config, weights);
    assert!(message.contains("missing tensor `text_decoder.cross_attn.1.attn.in_proj_weight`"), "{message}");
    assert!(message.contains("[96, 32]"), "{message}");
}

#[test]
fn misshaped_tensor_names_both_shapes() {
    let config = small_config();
    let mut weights = small_weights(&config);
    weights.tensors.insert("visual.ln_pre.weight".into(), HostTensor { shape: vec![7], data: vec![1.0; 7] });
    let message = load_error(config, weights);
    assert!(message.contains("`visual.ln_pre.weight` has shape [7]"), "{message}");
    assert!(message.contains("expects [32]"), "{message}");
}

#[test]
fn extra_tensor_is_rejected() {
    let config = small_config();
    let mut weights = small_weights(&config);
    weights.tensors.insert("visual.unknown".into(), HostTensor { shape: vec![1], data: vec![0.0] });
    let message = load_error(config, weights);
    assert!(message.contains("unexpected tensor(s) `visual.unknown`"), "{message}");
}

#[test]
fn truncated_safetensors_file_is_rejected() {
    let bytes = std::fs::read(fixtures().join("parity/small/open_clip_model.safetensors")).unwrap();
    for cut in [0, 7, 100, bytes.len() / 2, bytes.len() - 1] {
        let error = HostWeights::from_safetensors(&bytes[..cut], "model.safetensors").err().expect("truncated file must fail");
        let message = error.to_string();
        assert!(message.contains("model.safetensors"), "cut at {cut}: {message}");
        assert!(message.contains("truncated"), "cut at {cut}: {message}");
    }
}

#[test]
fn config_without_decoder_is_not_coca() {
    let clip = r#"{"embed_dim": 512, "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 32},
                  "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12}}"#;
    let message = CocaConfig::from_json(clip).unwrap_err().to_string();
    assert!(message.contains("does not describe a CoCa model"), "{message}");
    let message = CocaConfig::from_json("{not json").unwrap_err().to_string();
    assert!(message.contains("not valid JSON"), "{message}");
    let message = CocaConfig::builtin("coca_ViT-H-14").unwrap_err().to_string();
    assert!(message.contains("coca_ViT-B-32"), "{message}");
}

#[test]
fn config_with_mismatched_widths_is_rejected() {
    let mut config = small_config();
    config.multimodal_cfg.width = 48;
    let message = config.dims().unwrap_err().to_string();
    assert!(message.contains("text_cfg.width (32) must equal multimodal_cfg.width (48)"), "{message}");
}

#[test]
fn invalid_generation_options_are_rejected() {
    let cases: Vec<(GenerationConfig, &str)> = vec![
        (GenerationConfig { seq_len: 5, min_seq_len: 5, ..Default::default() }, "seq_len (5) must be larger than min_seq_len (5)"),
        (GenerationConfig { seq_len: 200, ..Default::default() }, "exceeds the model's context length"),
        (GenerationConfig { num_beams: 6, num_beam_groups: 4, ..Default::default() }, "divisible by num_beam_groups"),
        (GenerationConfig { temperature: 0.0, ..GenerationConfig::greedy() }, "temperature must be positive"),
        (GenerationConfig { top_p: 1.5, ..Default::default() }, "top_p must be in (0, 1]"),
        (GenerationConfig { top_k: 0, ..GenerationConfig::greedy() }, "top_k must be at least 1"),
        (GenerationConfig { num_beams: 1, num_beam_groups: 1, ..Default::default() }, "num_beams must be at least 2"),
        (GenerationConfig { repetition_penalty: 0.0, ..Default::default() }, "repetition_penalty must be a positive number"),
        (GenerationConfig { diversity_penalty: -1.0, ..Default::default() }, "diversity_penalty must be zero or positive"),
        (GenerationConfig { length_penalty: f64::NAN, ..Default::default() }, "length_penalty must be a finite number"),
        (GenerationConfig { num_return_sequences: 0, ..Default::default() }, "num_return_sequences must be between 1 and num_beams"),
        (GenerationConfig { num_return_sequences: 2, ..GenerationConfig::greedy() }, "needs beam search"),
        (GenerationConfig { max_seq_len: 0, ..GenerationConfig::greedy() }, "max_seq_len must be at least 1"),
        (GenerationConfig { stop_strings: vec!["".into()], ..Default::default() }, "stop string 0 is empty"),
        (
            GenerationConfig { num_beams: 12, num_beam_groups: 2, diversity_penalty: 0.5, ..Default::default() },
            "a diversity penalty needs (num_beam_groups + 1) x beams per group = 18 candidates",
        ),
    ];
    for (config, expected) in cases {
        let message = config.validate(76).unwrap_err().to_string();
        assert!(message.contains(expected), "{config:?}: {message}");
    }
    let message = "sampling".parse::<GenerationType>().unwrap_err().to_string();
    assert!(message.contains("unknown generation type `sampling`"), "{message}");
    let message = "softmax".parse::<coca_wgpu::BeamScoring>().unwrap_err().to_string();
    assert!(message.contains("use log_softmax (default) or raw_logits"), "{message}");
    let message = "sometimes".parse::<coca_wgpu::EarlyStopping>().unwrap_err().to_string();
    assert!(message.contains("use false (default), true or never"), "{message}");
}

#[test]
fn text_longer_than_the_context_is_an_error() {
    let config = small_config();
    let weights = small_weights(&config);
    let mut coca = Coca::new(context(), config, weights).unwrap();
    let long = "a very long caption ".repeat(40);
    let error = pollster::block_on(coca.embed_texts(&[long.as_str()], true)).unwrap_err();
    assert!(matches!(error, Error::Tokenizer(_)), "{error}");
    let message = error.to_string();
    assert!(message.contains("76"), "{message}");
}

#[test]
fn wrong_pixel_count_is_an_error() {
    let config = small_config();
    let weights = small_weights(&config);
    let mut coca = Coca::new(context(), config, weights).unwrap();
    let error = pollster::block_on(coca.encode_image(&[0.0; 10], 1, true)).unwrap_err().to_string();
    assert!(error.contains("3 x 32 x 32"), "{error}");
    let corrupt = b"\x89PNG\r\n\x1a\nnot really a png";
    let error = pollster::block_on(coca.caption(&[corrupt.as_slice()], &GenerationConfig::greedy())).unwrap_err();
    assert!(matches!(error, Error::Preprocess(_)), "{error}");
}

#[test]
fn missing_backend_names_backend_and_fix() {
    // No Linux machine has a Metal adapter.
    let options = GpuOptions { backends: Some(wgpu::Backends::METAL), ..GpuOptions::default() };
    let error = pollster::block_on(GpuContext::new(&options)).err().expect("no Metal adapter on this platform");
    let message = error.to_string();
    assert!(message.contains("no GPU adapter found for the requested backend(s) metal"), "{message}");
    assert!(message.contains("choose another backend"), "{message}");
}

#[test]
fn buffers_over_the_device_limit_are_rejected() {
    let ctx = context();
    let limit = ctx.limits.max_storage_buffer_binding_size;
    let message = ctx.check_buffer_size("token embedding", limit + 4).unwrap_err().to_string();
    assert!(message.contains("token embedding"), "{message}");
    assert!(message.contains(&limit.to_string()), "{message}");

    // A graph tensor over the limit fails when it is recorded, not on the GPU.
    let mut graph = coca_wgpu::graph::Graph::new(&ctx);
    let rows = (limit / 4 / 1024 + 1) as usize;
    let error = graph.input("huge", &[rows, 1024], coca_wgpu::graph::DType::F32).err().expect("over the limit");
    assert!(matches!(error, Error::BufferTooLarge { .. }), "{error}");
}

#[test]
fn prefix_longer_than_seq_len_is_an_error() {
    let config = small_config();
    let weights = small_weights(&config);
    let mut coca = Coca::new(context(), config, weights).unwrap();
    let size = coca.image_size();
    let pixels = vec![0.0f32; 3 * size * size];
    let prefix = "a photo of ".repeat(12);
    for generation in [GenerationConfig::greedy(), GenerationConfig::default()] {
        let error = pollster::block_on(coca.caption_pixels(&pixels, 1, &generation, Some(prefix.as_str()))).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("the prefix has 37 tokens with the start token, not below seq_len 30"), "{message}");
    }
}
