//! Parity with open_clip 3.3.0: features, logits and generated tokens against values that
//! `scripts/make_parity_fixtures.py` computed with open_clip on the CPU.

mod common;

use std::collections::HashMap;
use std::path::Path;

use coca_wgpu::model::weights::HostWeights;
use coca_wgpu::{Coca, CocaConfig};
use common::{assert_close, context, fixtures, load_expected, Expected};

fn load_case(case: &str) -> (Coca, HashMap<String, Expected>, serde_json::Value) {
    load_case_with(case, context())
}

fn load_case_with(case: &str, ctx: coca_wgpu::GpuContext) -> (Coca, HashMap<String, Expected>, serde_json::Value) {
    let dir = fixtures().join("parity").join(case);
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    let expected = load_expected(&dir.join("expected.safetensors"));
    let weights_file = dir.join("open_clip_model.safetensors");
    let (config, weights) = if weights_file.exists() {
        let (config, _) = CocaConfig::from_json(&std::fs::read_to_string(dir.join("open_clip_config.json")).unwrap()).unwrap();
        let bytes = std::fs::read(&weights_file).unwrap();
        (config, HostWeights::from_safetensors(&bytes, &weights_file.display().to_string()).unwrap())
    } else {
        let (config, _) = CocaConfig::from_json(&std::fs::read_to_string(dir.join("model.json")).unwrap()).unwrap();
        let dims = config.dims().unwrap();
        let weights = HostWeights::synthesized(&dims, config.init_logit_bias.is_some());
        (config, weights)
    };
    (Coca::new(ctx, config, weights).unwrap(), expected, meta)
}

/// With a binding limit of 4 MiB, the `small` checkpoint's 6.3 MB token embedding and vocabulary
/// projection are stored in two parts each, as ViT-L-14's are on a 128 MiB limit. The features
/// and the generated tokens must still match open_clip.
#[test]
fn oversized_weights_load_in_parts() {
    let mut ctx = context();
    ctx.limits.max_storage_buffer_binding_size = 4 << 20;
    let (mut coca, expected, meta) = load_case_with("small", ctx);
    assert_eq!(coca.model.parts.get("text.token_embedding.weight"), Some(&2), "49408 x 32 floats in 4 MiB parts");
    assert_eq!(coca.model.parts.get("text_decoder.text_projection"), Some(&2));
    check_features("small split", &mut coca, &expected);
    check_generation("small split", &mut coca, &expected, &meta);
}

fn flat(rows: &[Vec<f32>]) -> Vec<f32> {
    rows.concat()
}

fn check_features(case: &str, coca: &mut Coca, expected: &HashMap<String, Expected>) {
    let image = expected["image"].f32();
    let batch = expected["image"].shape[0];
    let text = expected["text"].rows_u32();

    let (features, embs) = pollster::block_on(coca.encode_image_with_embs(&image, batch, true)).unwrap();
    assert_close(&format!("{case} image_features"), &flat(&features), &expected["image_features"].f32(), 1e-4);
    assert_close(&format!("{case} image_embs"), &flat(&embs), &expected["image_embs"].f32(), 1e-4);
    let raw = pollster::block_on(coca.encode_image(&image, batch, false)).unwrap();
    assert_close(&format!("{case} image_features_raw"), &flat(&raw), &expected["image_features_raw"].f32(), 1e-3);

    let features = pollster::block_on(coca.encode_text(&text, true)).unwrap();
    assert_close(&format!("{case} text_features"), &flat(&features), &expected["text_features"].f32(), 1e-4);
    let raw = pollster::block_on(coca.encode_text(&text, false)).unwrap();
    assert_close(&format!("{case} text_features_raw"), &flat(&raw), &expected["text_features_raw"].f32(), 1e-3);
}

fn check_logits(case: &str, coca: &mut Coca, expected: &HashMap<String, Expected>) {
    let image = expected["image"].f32();
    let text = expected["text"].rows_u32();
    let out = pollster::block_on(coca.forward(&image, &text, true)).unwrap();
    assert_eq!(out.labels.as_ref().unwrap()[0], text[0][1..].to_vec(), "{case} labels");

    let first = &expected["logits_first_256_ids"];
    let (batch, positions, ids) = (first.shape[0], first.shape[1], first.shape[2]);
    let got: Vec<f32> =
        (0..batch).flat_map(|b| (0..positions).flat_map(|p| out.logits[b][p][..ids].to_vec()).collect::<Vec<_>>()).collect();
    assert_close(&format!("{case} logits[:, :, :{ids}]"), &got, &first.f32(), 1e-3);

    let slice = &expected["logits"];
    let got: Vec<f32> = (0..slice.shape[1]).flat_map(|p| out.logits[0][p].clone()).collect();
    assert_close(&format!("{case} logits[0, :{}, :]", slice.shape[1]), &got, &slice.f32(), 1e-3);

    // open_clip's forward(image, text, image_latent=..., image_embs=...) from encode_image's outputs.
    let (latent, embs) = pollster::block_on(coca.encode_image_with_embs(&image, batch, true)).unwrap();
    let again = pollster::block_on(coca.forward_with_image_embs(&latent, &embs, &text, true)).unwrap();
    let got: Vec<f32> = (0..batch).flat_map(|b| (0..positions).flat_map(|p| again.logits[b][p][..ids].to_vec()).collect::<Vec<_>>()).collect();
    assert_close(&format!("{case} logits from image_embs"), &got, &first.f32(), 1e-3);
    assert_close(&format!("{case} text_features from image_embs"), &flat(&again.text_features), &expected["text_features"].f32(), 1e-4);
    assert_close(&format!("{case} image_latent passed through"), &flat(&again.image_features), &expected["image_features"].f32(), 1e-4);
    let short = vec![vec![0.0; 3]; batch];
    let error = pollster::block_on(coca.forward_with_image_embs(&latent, &short, &text, true)).unwrap_err();
    assert!(error.to_string().contains("image_embs rows must have"), "{error}");
}

fn check_generation(case: &str, coca: &mut Coca, expected: &HashMap<String, Expected>, meta: &serde_json::Value) {
    let image = expected["image"].f32();
    let batch = expected["image"].shape[0];
    for name in ["greedy_tokens", "beam_tokens", "beam_group_tokens"] {
        let config = common::generation_config(&meta["generation"][name]["args"]);
        let generated = pollster::block_on(coca.generate(&image, batch, &config, None)).unwrap();
        let want = expected[name].rows_u32();
        for (b, row) in generated.iter().enumerate() {
            assert_eq!(row.tokens, want[b], "{case} {name} image {b}");
        }
    }
}

#[test]
fn small_f16_checkpoint_matches_open_clip() {
    let (mut coca, expected, meta) = load_case("small");
    check_features("small", &mut coca, &expected);
    check_logits("small", &mut coca, &expected);
    check_generation("small", &mut coca, &expected, &meta);
}

#[test]
fn small_quick_gelu_fused_pooler_matches_open_clip() {
    let (mut coca, expected, meta) = load_case("small_quickgelu");
    assert_eq!(coca.model.logit_bias, Some(-10.0));
    check_features("small_quickgelu", &mut coca, &expected);
    check_logits("small_quickgelu", &mut coca, &expected);
    check_generation("small_quickgelu", &mut coca, &expected, &meta);
}

/// The full coca_ViT-L-14 architecture; its vocabulary-sized tables are stored in parts when they
/// exceed the device's binding limit (lavapipe's is 128 MiB).
#[test]
fn vit_l_14_synthesized_matches_open_clip() {
    let (mut coca, expected, meta) = load_case("vit_l_14");
    let table_bytes = 49408 * 768 * 4;
    if table_bytes > coca.ctx.limits.max_storage_buffer_binding_size {
        assert!(coca.model.parts.contains_key("text.token_embedding.weight"), "the 152 MB table is split");
    }
    check_features("vit_l_14", &mut coca, &expected);
    check_logits("vit_l_14", &mut coca, &expected);
    check_generation("vit_l_14", &mut coca, &expected, &meta);
}

#[test]
fn vit_b_32_synthesized_matches_open_clip() {
    let (mut coca, expected, meta) = load_case("vit_b_32");
    check_features("vit_b_32", &mut coca, &expected);
    check_logits("vit_b_32", &mut coca, &expected);
    check_generation("vit_b_32", &mut coca, &expected, &meta);
}

#[test]
fn synthesized_weights_match_the_python_generator() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/synth_spec_check.json");
    let spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for (input, hash) in spec["hash_checks"]["fnv1a64"].as_object().unwrap() {
        assert_eq!(format!("{:#018x}", coca_wgpu::synth::fnv1a64(input.as_bytes())), hash.as_str().unwrap(), "fnv1a64({input:?})");
    }
    for (input, output) in spec["hash_checks"]["splitmix64"].as_object().unwrap() {
        let x = u64::from_str_radix(input.trim_start_matches("0x"), 16).unwrap();
        assert_eq!(format!("{:#018x}", coca_wgpu::synth::splitmix64(x)), output.as_str().unwrap(), "splitmix64({input})");
    }
    let tensors = spec["tensors"].as_object().expect("tensors");
    assert!(!tensors.is_empty());
    for (name, entry) in tensors {
        let shape: Vec<usize> = entry["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        // The pixel input is synthesized with center 0 and scale 1, the weights by their rule.
        let values = if name == "input.image" {
            let init = coca_wgpu::synth::Init::Uniform { center: 0.0, scale: 1.0 };
            coca_wgpu::synth::generate(name, shape.iter().product(), init)
        } else {
            coca_wgpu::synth::tensor(name, &shape)
        };
        for (i, want) in entry["first8"].as_array().unwrap().iter().enumerate() {
            assert_eq!(values[i], want.as_f64().unwrap() as f32, "{name}[{i}]");
        }
        let sum: f64 = values.iter().map(|v| *v as f64).sum();
        assert!((sum - entry["sum"].as_f64().unwrap()).abs() < 1e-3, "{name} sum {sum} vs {}", entry["sum"]);
    }
}

/// Every case of `tests/fixtures/generation/small.json` (`scripts/make_generation_fixtures.py`):
/// repetition penalties, prefixes, the `max_seq_len` window, fixed output lengths, and beam search
/// with log-softmax or raw-logit scores, diversity penalties, length penalties, early stopping and
/// the n best hypotheses with their scores.
#[test]
fn generation_options_match_open_clip() {
    let (mut coca, expected, _) = load_case("small");
    let image = expected["image"].f32();
    let batch = expected["image"].shape[0];
    let path = common::fixtures().join("generation/small.json");
    let fixture: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for (name, case) in fixture["cases"].as_object().unwrap() {
        let config = common::generation_config(&case["args"]);
        let prefix = common::prefix(&case["args"]);
        let generated = pollster::block_on(coca.generate(&image, batch, &config, prefix.as_deref())).unwrap();
        let want = common::token_rows(&case["tokens"]);
        assert_eq!(generated.len(), want.len(), "{name}: number of sequences");
        for (i, (row, want)) in generated.iter().zip(&want).enumerate() {
            assert_eq!(&row.tokens, want, "{name} sequence {i}");
            if let Some(score) = case["scores"].get(i) {
                let (got, want) = (row.score.unwrap(), score.as_f64().unwrap());
                assert!((got - want).abs() < 1e-3 * want.abs().max(1.0), "{name} sequence {i} score {got} vs {want}");
            }
        }
    }
}

#[test]
fn score_matches_open_clip_log_softmax() {
    let (mut coca, expected, meta) = load_case("small");
    let image = expected["image"].f32();
    let size = image.len() / expected["image"].shape[0];
    let text = meta["texts"][0].as_str().unwrap();
    let scores = pollster::block_on(coca.score_pixels(&image[..size], &[text])).unwrap().remove(0);

    // open_clip's full-vocabulary logits of image 0 cover the first positions; their log-softmax at
    // each label token is the expected score.
    let logits = &expected["logits"];
    let (positions, vocab) = (logits.shape[1], logits.shape[2]);
    let ids = expected["text"].rows_u32()[0].clone();
    assert!(scores.len() >= positions, "{} scored tokens", scores.len());
    for p in 0..positions {
        let row = &logits.values[p * vocab..(p + 1) * vocab];
        let max = row.iter().cloned().fold(f64::MIN, f64::max);
        let log_total = row.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max;
        let label = ids[p + 1];
        let want = row[label as usize] - log_total;
        assert_eq!(scores[p].0, label, "position {p} token");
        assert!((scores[p].1 as f64 - want).abs() < 1e-3, "position {p}: {} vs {want}", scores[p].1);
    }
    assert_eq!(scores.last().unwrap().0, 49407, "scoring stops at the end token");
}
