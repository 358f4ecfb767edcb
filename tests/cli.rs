//! The `coca` command line: outputs against open_clip's values, and one-line errors with a
//! non-zero exit status for bad input.

mod common;

use common::{fixtures, load_expected};

fn coca(args: &[&str]) -> (bool, String, String) {
    common::run_coca(args)
}

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn floats(value: &serde_json::Value) -> Vec<f32> {
    value.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect()
}

#[test]
fn embed_text_matches_open_clip_on_small_checkpoint() {
    let dir = fixtures().join("parity/small");
    let expected = load_expected(&dir.join("expected.safetensors"));
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    let texts: Vec<&str> = meta["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let mut args = vec!["embed-text", "--json", "--model", dir.to_str().unwrap()];
    args.extend(&texts);
    let (ok, stdout, stderr) = coca(&args);
    assert!(ok, "{stderr}");
    let lines = json_lines(&stdout);
    assert_eq!(lines.len(), texts.len());
    let want = expected["text_features"].f32();
    let dim = want.len() / texts.len();
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["text"], texts[i]);
        common::assert_close(&format!("text {i}"), &floats(&line["embedding"]), &want[i * dim..(i + 1) * dim], 1e-4);
    }
}

#[test]
fn model_file_with_builtin_config_name_loads() {
    // A weights file without its config next to it needs --config; the small checkpoint's own
    // config file works as a path.
    let dir = fixtures().join("parity/small");
    let weights = dir.join("open_clip_model.safetensors");
    let config = dir.join("open_clip_config.json");
    let (ok, stdout, stderr) =
        coca(&["embed-text", "--model", weights.to_str().unwrap(), "--config", config.to_str().unwrap(), "a cat"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("a cat"), "{stdout}");
}

#[test]
fn non_image_file_fails_with_one_line_error() {
    let file = std::env::temp_dir().join("coca-cli-not-an-image.png");
    std::fs::write(&file, b"this is a text file, not a picture").unwrap();
    let (ok, stdout, stderr) = coca(&["caption", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(stdout.is_empty(), "{stdout}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("coca-cli-not-an-image.png"), "{stderr}");
}

#[test]
fn missing_model_and_bad_options_fail_clearly() {
    let cases: &[(&[&str], &str)] = &[
        (&["caption", "--model", "/nonexistent/model", "x.png"], "no such file or folder"),
        (&["caption", "--generation", "sampling", "x.png"], "unknown generation type"),
        (&["caption", "--seq-len", "3", "--min-seq-len", "5", "x.png"], "seq_len (3) must be larger than min_seq_len (5)"),
        (&["embed-text", "--config", "coca_ViT-H-14", "a"], "not a built-in config"),
        (&["info", "--backend", "nonsense"], "unknown GPU backend"),
    ];
    for (args, expected) in cases {
        let (ok, _, stderr) = coca(args);
        assert!(!ok, "{args:?} should fail");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn info_reports_adapter_and_limits() {
    let (ok, stdout, stderr) = coca(&["info"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("adapter:"), "{stdout}");
    assert!(stdout.contains("max_storage_buffer_binding_size"), "{stdout}");
}

#[test]
fn embed_image_matches_open_clip_on_small_checkpoint() {
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("cli/small_image_features.json")).unwrap()).unwrap();
    let features = reference["image_features"].as_object().unwrap();
    let model = fixtures().join("parity/small");
    let files: Vec<String> =
        features.keys().map(|name| fixtures().join("preprocess/src").join(name).display().to_string()).collect();
    let mut args = vec!["embed-image", "--json", "--model", model.to_str().unwrap()];
    args.extend(files.iter().map(String::as_str));
    let (ok, stdout, stderr) = coca(&args);
    assert!(ok, "{stderr}");
    let lines = json_lines(&stdout);
    assert_eq!(lines.len(), features.len());
    for (line, (name, want)) in lines.iter().zip(features) {
        assert!(line["image"].as_str().unwrap().ends_with(name.as_str()), "{line}");
        common::assert_close(name, &floats(&line["embedding"]), &floats(want), 1e-4);
    }
}

#[test]
fn classify_picks_the_true_caption() {
    let image = fixtures().join("../../examples/images/shapes-2.png");
    // The image was rendered from the caption "a single blue circle" (examples/images/README.md).
    let (ok, stdout, stderr) =
        coca(&["classify", "--json", "--labels", "a yellow square,a single blue circle", image.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let lines = json_lines(&stdout);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["label"], "a single blue circle");
    let (ok, _, stderr) = coca(&["classify", "--labels", " , ", image.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("--labels is empty"), "{stderr}");
}

#[test]
fn score_prefers_the_true_caption() {
    let image = fixtures().join("../../examples/images/shapes-2.png");
    let score = |text: &str| -> f64 {
        let (ok, stdout, stderr) = coca(&["score", "--json", "--text", text, image.to_str().unwrap()]);
        assert!(ok, "{stderr}");
        json_lines(&stdout)[0]["logprob"].as_f64().unwrap()
    };
    // The image was rendered from the caption "a single blue circle".
    let true_caption = score("a single blue circle");
    let wrong_caption = score("a red square above a yellow triangle");
    assert!(true_caption > wrong_caption, "{true_caption} vs {wrong_caption}");
}

#[test]
fn forward_saves_open_clip_outputs() {
    let want = load_expected(&fixtures().join("cli/small_forward.safetensors"));
    let model = fixtures().join("parity/small");
    let image = fixtures().join("preprocess/src/coffee.png");
    let saved = std::env::temp_dir().join(format!("coca-forward-{}.safetensors", std::process::id()));
    let (ok, stdout, stderr) = coca(&[
        "forward",
        "--json",
        "--output-labels",
        "--text",
        "a photo of a cat",
        "--save",
        saved.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        image.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let got = load_expected(&saved);
    std::fs::remove_file(&saved).unwrap();
    for name in ["image_features", "text_features", "logit_scale"] {
        common::assert_close(name, &got[name].f32(), &want[name].f32(), 1e-4);
    }
    assert_eq!(got["labels"].values, want["labels"].values, "labels are the text shifted by one");
    let logits = &got["logits"];
    let (positions, vocab) = (logits.shape[1], logits.shape[2]);
    assert_eq!(vec![positions, 64], want["logits_first_64_ids"].shape[1..].to_vec());
    let first_ids: Vec<f32> = (0..positions).flat_map(|p| logits.f32()[p * vocab..p * vocab + 64].to_vec()).collect();
    common::assert_close("logits[:, :, :64]", &first_ids, &want["logits_first_64_ids"].f32(), 1e-3);
    common::assert_close("logits[:, :3, :]", &logits.f32()[..3 * vocab], &want["logits_first_positions"].f32(), 1e-3);

    // The JSON line carries the same features and the best token at each position.
    let line = &json_lines(&stdout)[0];
    common::assert_close("json image_features", &floats(&line["image_features"]), &want["image_features"].f32(), 1e-4);
    let first = &want["logits_first_positions"].values[..vocab];
    let best = (0..vocab).max_by(|a, b| first[*a].total_cmp(&first[*b])).unwrap();
    assert_eq!(line["top_tokens"][0][0][0], best as u64);

    // Without text: image features and image token embeddings.
    let (ok, stdout, stderr) = coca(&["forward", "--json", "--model", model.to_str().unwrap(), image.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let line = &json_lines(&stdout)[0];
    common::assert_close("image-only features", &floats(&line["image_features"]), &want["image_features"].f32(), 1e-4);
    assert!(line.get("text_features").is_none(), "{line}");
}

/// Reads the demo beam fixture written by `scripts/make_generation_fixtures.py`.
fn demo_beam_fixture() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("generation/demo_beam.json")).unwrap()).unwrap()
}

#[test]
fn caption_beam_options_match_reference() {
    let fixture = demo_beam_fixture();
    let root = fixtures().join("../..");
    let run = |case: &str, extra: &[&str]| {
        let images = fixture["cases"][case]["images"].as_object().unwrap();
        let (name, entry) = images.iter().next().unwrap();
        let path = root.join(entry["path"].as_str().unwrap());
        let mut args = vec!["caption", "--json"];
        args.extend_from_slice(extra);
        args.push(path.to_str().unwrap());
        let (ok, stdout, stderr) = coca(&args);
        assert!(ok, "{stderr}");
        let got: Vec<Vec<u32>> = json_lines(&stdout)
            .iter()
            .map(|l| l["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect())
            .collect();
        assert_eq!(got, common::token_rows(&entry["tokens"]), "{case} {name}");
    };
    // The defaults: log-softmax scores, 6 beams in 3 groups.
    run("beam_log_softmax_default", &[]);
    run("beam_log_softmax_diversity", &["--diversity-penalty", "1.0"]);
    run("beam_length_penalty_never", &["--num-beam-groups", "2", "--length-penalty", "2.0", "--early-stopping", "never"]);
    run("beam_length_penalty_early", &["--num-beam-groups", "1", "--length-penalty", "0.5", "--early-stopping", "true"]);
    run("beam_raw_length_penalty", &["--beam-scoring", "raw_logits", "--length-penalty", "0"]);
    run("beam_n_best", &["--num-return-sequences", "3"]);
}

#[test]
fn caption_prefix_and_fixed_length_reach_the_tokens() {
    // tests/parity.rs checks prefixes and fixed lengths against open_clip. This checks that the
    // CLI passes them on, so the caption starts with the prefix's tokens and has --seq-len tokens.
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("generation/small.json")).unwrap()).unwrap();
    let prefix = common::prefix(&fixture["cases"]["greedy_prefix"]["args"]).unwrap();
    let image = fixtures().join("../../examples/images/shapes-1.png");
    let (ok, stdout, stderr) = coca(&[
        "caption",
        "--json",
        "--generation",
        "top_k",
        "--prefix",
        "a photo of",
        "--seq-len",
        "12",
        "--fixed-output-length",
        image.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let tokens: Vec<u64> =
        json_lines(&stdout)[0]["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect();
    // "a photo of" is [320, 1125, 539] in CLIP's vocabulary, the fixture's prefix.
    assert_eq!(tokens[1..4].iter().map(|t| *t as u32).collect::<Vec<_>>(), prefix);
    assert_eq!(tokens.len(), 12, "--fixed-output-length pads to --seq-len");
}

#[test]
fn caption_stop_string_ends_the_caption() {
    let image = fixtures().join("../../examples/images/shapes-1.png");
    let caption = |extra: &[&str]| -> String {
        let mut args = vec!["caption", "--json", "--generation", "top_k"];
        args.extend_from_slice(extra);
        args.push(image.to_str().unwrap());
        let (ok, stdout, stderr) = coca(&args);
        assert!(ok, "{stderr}");
        json_lines(&stdout)[0]["caption"].as_str().unwrap().to_string()
    };
    // examples/images/README.md: shapes-1.png shows "a blue circle left of a blue triangle".
    let full = caption(&[]);
    assert_eq!(full, "a blue circle left of a blue triangle");
    assert_eq!(caption(&["--stop", "circle"]), "a blue circle");
    assert_eq!(caption(&["--stop", "triangle", "--stop", "left"]), "a blue circle left");
}

#[test]
fn caption_samples_beyond_top_16() {
    // top_k above 16 and top_p = 1 read whole rows of logits. Near zero temperature they pick
    // the argmax, so they give the greedy caption of examples/images/README.md.
    let image = fixtures().join("../../examples/images/shapes-1.png");
    for flags in [["--generation", "top_k", "--top-k", "100"], ["--generation", "top_p", "--top-p", "1"]] {
        let mut args = vec!["caption", "--json", "--temperature", "0.000001"];
        args.extend_from_slice(&flags);
        args.push(image.to_str().unwrap());
        let (ok, stdout, stderr) = coca(&args);
        assert!(ok, "{flags:?}: {stderr}");
        let caption = json_lines(&stdout)[0]["caption"].as_str().unwrap().to_string();
        assert_eq!(caption, "a blue circle left of a blue triangle", "{flags:?}");
    }
}

#[test]
fn caption_rejects_bad_generation_options() {
    let image = fixtures().join("../../examples/images/shapes-1.png");
    let image = image.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["--beam-scoring", "softmax"], "unknown beam scoring `softmax`"),
        (&["--early-stopping", "maybe"], "unknown early stopping `maybe`"),
        (&["--num-return-sequences", "7"], "num_return_sequences must be between 1 and num_beams (6)"),
        (&["--generation", "top_k", "--num-return-sequences", "2"], "needs beam search"),
        (&["--diversity-penalty", "1", "--num-beams", "12", "--num-beam-groups", "2"], "candidates per beam"),
        (&["--stop", ""], "stop string 0 is empty"),
    ];
    for (extra, message) in cases {
        let mut args = vec!["caption"];
        args.extend_from_slice(extra);
        args.push(image);
        let (ok, _, stderr) = coca(&args);
        assert!(!ok, "{extra:?} should fail");
        assert!(stderr.contains(message), "{extra:?}: {stderr}");
        assert_eq!(stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{stderr}");
    }
}

#[test]
fn caption_batches_a_folder_like_single_images() {
    // examples/images contains 7 images and a README that is skipped. open_clip's greedy tokens
    // for each are in tests/fixtures/demo/expected.json.
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("demo/expected.json")).unwrap()).unwrap();
    let folder = fixtures().join("../../examples/images");
    let (ok, stdout, stderr) =
        coca(&["caption", "--json", "--generation", "top_k", "--batch-size", "3", folder.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let lines = json_lines(&stdout);
    assert_eq!(lines.len(), 7, "{stdout}");
    for line in &lines {
        let image = line["image"].as_str().unwrap();
        let name = std::path::Path::new(image).file_name().unwrap().to_str().unwrap();
        let want = &expected["images"][name]["greedy"];
        assert_eq!(line["caption"], want["caption"], "{name}");
        let tokens = line["tokens"].as_array().unwrap();
        let end = tokens.iter().position(|t| t == 49407).map_or(tokens.len(), |p| p + 1);
        assert_eq!(tokens[..end], want["tokens"].as_array().unwrap()[..], "{name}: batches pad after the end token");
    }
    let empty = std::env::temp_dir().join(format!("coca-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let (ok, _, stderr) = coca(&["caption", empty.to_str().unwrap()]);
    std::fs::remove_dir(&empty).unwrap();
    assert!(!ok);
    assert!(stderr.contains("has no image files"), "{stderr}");
}

#[test]
fn classify_averages_prompt_templates() {
    let image = fixtures().join("../../examples/images/shapes-2.png");
    let labels = "a yellow square,a single blue circle";
    let templates = ["a photo of {}.", "{}"];
    let (ok, stdout, stderr) = coca(&[
        "classify",
        "--json",
        "--labels",
        labels,
        "--template",
        templates[0],
        "--template",
        templates[1],
        image.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let line = &json_lines(&stdout)[0];
    // The CPU reference: image and prompt embeddings from the CLI, the average of each label's
    // normalized prompt embeddings normalized again, and a softmax over logit_scale x cosine.
    let (ok, image_json, stderr) = coca(&["embed-image", "--json", image.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let image_features = floats(&json_lines(&image_json)[0]["embedding"]);
    let (ok, forward_json, stderr) = coca(&["forward", "--json", "--text", "x", image.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let logit_scale = json_lines(&forward_json)[0]["logit_scale"].as_f64().unwrap();
    let mut logits = Vec::new();
    for label in labels.split(',') {
        let prompts: Vec<String> = templates.iter().map(|t| t.replace("{}", label)).collect();
        let mut args = vec!["embed-text", "--json"];
        args.extend(prompts.iter().map(String::as_str));
        let (ok, text_json, stderr) = coca(&args);
        assert!(ok, "{stderr}");
        let rows: Vec<Vec<f32>> = json_lines(&text_json).iter().map(|l| floats(&l["embedding"])).collect();
        let mean: Vec<f64> = (0..rows[0].len()).map(|i| rows.iter().map(|r| r[i] as f64).sum::<f64>() / rows.len() as f64).collect();
        let norm = mean.iter().map(|v| v * v).sum::<f64>().sqrt();
        let cosine: f64 = mean.iter().zip(&image_features).map(|(m, x)| m / norm * *x as f64).sum();
        logits.push(logit_scale * cosine);
    }
    let max = logits.iter().cloned().fold(f64::MIN, f64::max);
    let total: f64 = logits.iter().map(|l| (l - max).exp()).sum();
    for (label, logit) in labels.split(',').zip(&logits) {
        let want = (logit - max).exp() / total;
        let got = line["probabilities"][label].as_f64().unwrap();
        assert!((got - want).abs() < 1e-4, "{label}: {got} vs {want}");
    }
    let (ok, _, stderr) = coca(&["classify", "--labels", labels, "--template", "a photo", image.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("has no `{}` for the label"), "{stderr}");
}
