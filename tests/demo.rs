//! The bundled demo model against open_clip 3.3.0: the same tokens for greedy decoding and beam
//! search (6 beams, 1 group) on images it was not trained on, from image files through our own
//! decoding and preprocessing. Expected tokens come from `scripts/make_demo_fixtures.py`.

mod common;

use std::path::Path;

use coca_wgpu::{Coca, GenerationConfig, GenerationType};
use common::context;

fn demo_model() -> Coca {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo");
    let config = std::fs::read_to_string(dir.join("open_clip_config.json")).unwrap();
    let weights = std::fs::read(dir.join("open_clip_model.safetensors")).unwrap();
    Coca::from_bytes(context(), &config, &weights, "models/demo/open_clip_model.safetensors").unwrap()
}

fn expected() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo/expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn generation_config(args: &serde_json::Value) -> GenerationConfig {
    common::generation_config(args)
}

fn tokens(value: &serde_json::Value) -> Vec<u32> {
    value.as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect()
}

fn image_bytes(entry: &serde_json::Value) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(entry["path"].as_str().unwrap())).unwrap()
}

#[test]
fn demo_captions_match_open_clip_token_for_token() {
    let mut coca = demo_model();
    let expected = expected();
    for mode in ["greedy", "beam"] {
        let config = generation_config(&expected["generation"][mode]);
        for (name, entry) in expected["images"].as_object().unwrap() {
            let captions = pollster::block_on(coca.caption(&[image_bytes(entry)], &config)).unwrap();
            assert_eq!(captions[0].tokens, tokens(&entry[mode]["tokens"]), "{mode} tokens for {name}");
            assert_eq!(captions[0].text, entry[mode]["caption"].as_str().unwrap(), "{mode} caption for {name}");
        }
    }
}

/// Beam search options beyond open_clip 3.3.0 (`tests/fixtures/generation/demo_beam.json`):
/// log-softmax scores (the default) on every fixture image, and diversity penalties, length
/// penalties, early stopping, raw scores with a length penalty and the n best on four of them.
#[test]
fn demo_beam_options_match_reference() {
    let mut coca = demo_model();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/generation/demo_beam.json");
    let fixture: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for (case, entry) in fixture["cases"].as_object().unwrap() {
        let config = generation_config(&entry["args"]);
        for (name, image) in entry["images"].as_object().unwrap() {
            let pixels = coca.preprocess_images(&[image_bytes(image)]).unwrap();
            let generated = pollster::block_on(coca.generate(&pixels, 1, &config, None)).unwrap();
            let want = common::token_rows(&image["tokens"]);
            let got: Vec<Vec<u32>> = generated.iter().map(|g| g.tokens.clone()).collect();
            assert_eq!(got, want, "{case} {name}");
            for (g, score) in generated.iter().zip(image["scores"].as_array().unwrap()) {
                let (got, want) = (g.score.unwrap(), score.as_f64().unwrap());
                assert!((got - want).abs() < 1e-3 * want.abs().max(1.0), "{case} {name} score {got} vs {want}");
            }
        }
    }
    // The library's default options are the log-softmax case's.
    let default = GenerationConfig::default();
    let args = &fixture["cases"]["beam_log_softmax_default"]["args"];
    assert_eq!(default.beam_scoring, coca_wgpu::BeamScoring::LogSoftmax);
    assert_eq!((default.num_beams, default.num_beam_groups, default.seq_len), (6, 3, 30));
    assert_eq!(args["num_beams"], 6);
    assert_eq!(args["num_beam_groups"], 3);
}

#[test]
fn demo_captions_are_right_on_synthetic_images() {
    let mut coca = demo_model();
    let expected = expected();
    let config = GenerationConfig::greedy();
    let mut right = 0;
    let mut total = 0;
    for entry in expected["images"].as_object().unwrap().values() {
        let Some(truth) = entry["true_caption"].as_str() else { continue };
        let captions = pollster::block_on(coca.caption(&[image_bytes(entry)], &config)).unwrap();
        total += 1;
        right += (captions[0].text == truth) as usize;
    }
    assert!(total >= 12, "{total} labelled images");
    assert!(right * 10 >= total * 9, "{right} of {total} captions exactly right");
}

#[test]
fn batch_captions_equal_single_captions() {
    let mut coca = demo_model();
    let expected = expected();
    let images: Vec<Vec<u8>> = expected["images"].as_object().unwrap().values().take(8).map(image_bytes).collect();
    let configs = [
        GenerationConfig::greedy(),
        GenerationConfig { num_beam_groups: 1, ..Default::default() },
        GenerationConfig { diversity_penalty: 1.0, ..Default::default() },
    ];
    for config in configs {
        let batch = pollster::block_on(coca.caption(&images, &config)).unwrap();
        assert_eq!(batch.len(), images.len());
        for (i, image) in images.iter().enumerate() {
            let single = pollster::block_on(coca.caption(std::slice::from_ref(image), &config)).unwrap();
            // As in open_clip, a batch pads sequences that ended early with the pad id 0.
            let end = batch[i].tokens.iter().position(|&t| t == 49407).map_or(batch[i].tokens.len(), |p| p + 1);
            assert_eq!(batch[i].tokens[..end], single[0].tokens[..], "image {i} with {:?}", config.generation_type);
            assert!(batch[i].tokens[end..].iter().all(|&t| t == 0), "image {i} padding {:?}", batch[i].tokens);
            assert_eq!(batch[i].text, single[0].text, "image {i} caption");
        }
    }
}

#[test]
fn top_p_single_token_nucleus_matches_open_clip() {
    let mut coca = demo_model();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/generation/demo.json");
    let fixture: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let top_p = fixture["args"]["top_p"].as_f64().unwrap() as f32;
    for seed in [0, 12345] {
        let config = GenerationConfig { generation_type: GenerationType::TopP, top_p, seed, ..Default::default() };
        for (file, want) in fixture["tokens"].as_object().unwrap() {
            let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
            let captions = pollster::block_on(coca.caption(&[bytes], &config)).unwrap();
            assert_eq!(captions[0].tokens, tokens(want), "top_p {top_p} seed {seed} on {file}");
        }
    }
}

/// top_k above the GPU kernel's 16 candidates and top_p = 1 both read whole rows of logits. At a
/// temperature near zero, sampling picks the argmax, so both must give open_clip's greedy tokens.
#[test]
fn cold_full_row_sampling_is_greedy() {
    let mut coca = demo_model();
    let expected = expected();
    let greedy = generation_config(&expected["generation"]["greedy"]);
    let cases = [
        GenerationConfig { generation_type: GenerationType::TopK, top_k: 50, temperature: 1e-6, ..greedy.clone() },
        GenerationConfig { generation_type: GenerationType::TopP, top_p: 1.0, temperature: 1e-6, ..greedy.clone() },
    ];
    for config in cases {
        for (name, entry) in expected["images"].as_object().unwrap() {
            let captions = pollster::block_on(coca.caption(&[image_bytes(entry)], &config)).unwrap();
            let label = format!("{:?} on {name}", config.generation_type);
            assert_eq!(captions[0].tokens, tokens(&entry["greedy"]["tokens"]), "{label}");
        }
    }
}

/// With top_p = 1 the nucleus is the whole vocabulary (transformers' `TopPLogitsWarper`), so the
/// first sampled token follows softmax(logits / temperature) over every token but the end token,
/// which the minimum length masks. The test counts 256 draws against probabilities from
/// `forward`'s logits, including the mass outside the 16 best tokens that the GPU returns.
#[test]
fn top_p_one_samples_whole_vocabulary() {
    let mut coca = demo_model();
    let pixels = coca.preprocess_images(&[shapes_1()]).unwrap();
    let (sot, eos) = (49406u32, 49407u32);
    let forward = pollster::block_on(coca.forward(&pixels, &[vec![sot]], false)).unwrap();
    let logits = &forward.logits[0][0];

    let temperature = 3.0f32;
    let max = logits.iter().cloned().fold(f32::MIN, f32::max) as f64;
    let weights: Vec<f64> = logits
        .iter()
        .enumerate()
        .map(|(token, &l)| if token as u32 == eos { 0.0 } else { ((l as f64 - max) / temperature as f64).exp() })
        .collect();
    let total: f64 = weights.iter().sum();
    let probs: Vec<f64> = weights.iter().map(|w| w / total).collect();
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    let outside_16: f64 = order[16..].iter().map(|&t| probs[t]).sum();
    assert!(outside_16 > 0.1, "the test needs mass beyond the 16 best tokens, got {outside_16}");

    let batch = 64;
    let repeated = pixels.repeat(batch);
    let mut counts = vec![0usize; probs.len()];
    let mut draws = 0;
    for seed in 0..4 {
        let config = GenerationConfig {
            generation_type: GenerationType::TopP,
            top_p: 1.0,
            temperature,
            seq_len: 3,
            min_seq_len: 2,
            seed,
            ..Default::default()
        };
        for caption in pollster::block_on(coca.caption_pixels(&repeated, batch, &config, None)).unwrap() {
            assert_eq!(caption.tokens.len(), 3, "{:?}", caption.tokens);
            assert_eq!(caption.tokens[2], eos, "the last position is forced to the end token");
            counts[caption.tokens[1] as usize] += 1;
            draws += 1;
        }
    }

    let check = |what: &str, expected: f64, observed: usize| {
        let sigma = (expected * (1.0 - expected) / draws as f64).sqrt();
        let frequency = observed as f64 / draws as f64;
        assert!(
            (frequency - expected).abs() <= 4.0 * sigma + 0.01,
            "{what}: sampled {frequency:.3} of {draws} draws, softmax gives {expected:.3}"
        );
    };
    assert_eq!(counts[eos as usize], 0, "the end token is masked below the minimum length");
    check("beyond the 16 best tokens", outside_16, order[16..].iter().map(|&t| counts[t]).sum());
    for &token in &order[..3] {
        check(&format!("token {token}"), probs[token], counts[token]);
    }
}

#[test]
fn classify_matches_cpu_softmax_and_true_labels() {
    let mut coca = demo_model();
    let expected = expected();
    let entries: Vec<&serde_json::Value> =
        expected["images"].as_object().unwrap().values().filter(|e| e["true_caption"].is_string()).take(4).collect();
    let labels: Vec<&str> = entries.iter().map(|e| e["true_caption"].as_str().unwrap()).collect();
    let images: Vec<Vec<u8>> = entries.iter().map(|e| image_bytes(e)).collect();
    let probabilities = pollster::block_on(coca.classify(&images, &labels)).unwrap();

    let image_features = pollster::block_on(coca.embed_images(&images, true)).unwrap();
    let text_features = pollster::block_on(coca.embed_texts(&labels, true)).unwrap();
    for (i, row) in probabilities.iter().enumerate() {
        let logits: Vec<f64> = text_features
            .iter()
            .map(|t| coca.model.logit_scale as f64 * image_features[i].iter().zip(t).map(|(a, b)| (*a * *b) as f64).sum::<f64>())
            .collect();
        let max = logits.iter().cloned().fold(f64::MIN, f64::max);
        let total: f64 = logits.iter().map(|l| (l - max).exp()).sum();
        for (j, p) in row.iter().enumerate() {
            let want = (logits[j] - max).exp() / total;
            assert!((*p as f64 - want).abs() < 1e-5, "image {i} label {j}: {p} vs {want}");
        }
        let best = row.iter().enumerate().fold(0, |best, (j, p)| if *p > row[best] { j } else { best });
        assert_eq!(labels[best], labels[i], "image {i} is classified as its own caption");
    }
    let error = pollster::block_on(coca.classify(&images, &[] as &[&str])).unwrap_err().to_string();
    assert!(error.contains("no labels given"), "{error}");
}

#[test]
fn streaming_reports_tokens_and_can_stop() {
    let mut coca = demo_model();
    let expected = expected();
    let entry = expected["images"].as_object().unwrap().values().next().unwrap();
    let pixels = coca.preprocess_images(&[image_bytes(entry)]).unwrap();
    let config = GenerationConfig::greedy();

    let mut streamed = Vec::new();
    let full = pollster::block_on(coca.generate_streaming(&pixels, 1, &config, None, &mut |image, token| {
        assert_eq!(image, 0);
        streamed.push(token);
        true
    }))
    .unwrap();
    assert_eq!(streamed, full[0].tokens[1..].to_vec());

    let mut count = 0;
    let stopped = pollster::block_on(coca.generate_streaming(&pixels, 1, &config, None, &mut |_, _| {
        count += 1;
        count < 2
    }))
    .unwrap();
    assert_eq!(stopped[0].tokens, full[0].tokens[..3].to_vec(), "start token plus two streamed tokens");
}

fn shapes_1() -> Vec<u8> {
    // examples/images/README.md: "a blue circle left of a blue triangle".
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/images/shapes-1.png")).unwrap()
}

#[test]
fn stop_strings_end_sampled_and_beam_captions() {
    let mut coca = demo_model();
    let image = shapes_1();
    let full = pollster::block_on(coca.caption(&[image.clone()], &GenerationConfig::greedy())).unwrap().remove(0);
    assert_eq!(full.text, "a blue circle left of a blue triangle");
    for base in [GenerationConfig::greedy(), GenerationConfig::default()] {
        let config = GenerationConfig { stop_strings: vec!["circle".into()], ..base };
        let caption = pollster::block_on(coca.caption(&[image.clone()], &config)).unwrap().remove(0);
        assert_eq!(caption.text, "a blue circle", "{:?}", config.generation_type);
        // The stopped caption is the full one cut after the token that completes "circle".
        let cut = caption.tokens.iter().position(|t| *t == 49407).unwrap_or(caption.tokens.len());
        assert_eq!(caption.tokens[..cut], full.tokens[..cut], "{:?}", config.generation_type);
    }
}

#[test]
fn sampling_with_the_same_seed_repeats() {
    let mut coca = demo_model();
    let image = shapes_1();
    let sample = |coca: &mut Coca, seed: u64| {
        let config =
            GenerationConfig { generation_type: GenerationType::TopK, top_k: 8, temperature: 4.0, seed, ..Default::default() };
        pollster::block_on(coca.caption(&[image.clone()], &config)).unwrap().remove(0).tokens
    };
    let first = sample(&mut coca, 7);
    assert_eq!(first, sample(&mut coca, 7), "same seed, same tokens");
    let others: std::collections::HashSet<Vec<u32>> = (0..6).map(|seed| sample(&mut coca, seed)).collect();
    assert!(others.len() > 1, "six seeds at temperature 4 gave one caption: {others:?}");
}

/// The demo checkpoint (stored in f16) saved again in f32 and in bf16 gives open_clip's tokens:
/// f32 keeps the same values, and bf16 rounds every weight to 8 significant bits.
#[test]
fn f32_and_bf16_copies_give_same_tokens() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo");
    let config = std::fs::read_to_string(dir.join("open_clip_config.json")).unwrap();
    let f16_bytes = std::fs::read(dir.join("open_clip_model.safetensors")).unwrap();
    let weights = coca_wgpu::model::weights::HostWeights::from_safetensors(&f16_bytes, "demo").unwrap();
    let mut names: Vec<&String> = weights.tensors.keys().collect();
    names.sort();
    let save = |dtype: safetensors::Dtype| -> Vec<u8> {
        let data: Vec<Vec<u8>> = names
            .iter()
            .map(|name| {
                let values = &weights.tensors[*name].data;
                match dtype {
                    safetensors::Dtype::F32 => bytemuck::cast_slice(values).to_vec(),
                    _ => values.iter().flat_map(|v| half::bf16::from_f32(*v).to_le_bytes()).collect(),
                }
            })
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView)> = names
            .iter()
            .zip(&data)
            .map(|(name, bytes)| {
                let shape = weights.tensors[*name].shape.clone();
                ((*name).clone(), safetensors::tensor::TensorView::new(dtype, shape, bytes).unwrap())
            })
            .collect();
        safetensors::tensor::serialize(views, None).unwrap()
    };
    let expected = expected();
    let entries: Vec<(&String, &serde_json::Value)> = expected["images"].as_object().unwrap().iter().take(4).collect();
    for (label, dtype) in [("f32", safetensors::Dtype::F32), ("bf16", safetensors::Dtype::BF16)] {
        let bytes = save(dtype);
        let mut coca = Coca::from_bytes(context(), &config, &bytes, label).unwrap();
        for mode in ["greedy", "beam"] {
            let generation = generation_config(&expected["generation"][mode]);
            for (name, entry) in &entries {
                let captions = pollster::block_on(coca.caption(&[image_bytes(entry)], &generation)).unwrap();
                assert_eq!(captions[0].tokens, tokens(&entry[mode]["tokens"]), "{label} {mode} tokens for {name}");
            }
        }
    }
}
