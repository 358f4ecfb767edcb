//! The `coca` command line: outputs against open_clip's values, and one-line errors with a
//! non-zero exit status for bad input.

mod common;

use std::process::Command;

use common::{fixtures, load_expected};

fn coca(args: &[&str]) -> (bool, String, String) {
    // Mesa's Vulkan loader complains on standard error when XDG_RUNTIME_DIR is unset.
    let output = Command::new(env!("CARGO_BIN_EXE_coca"))
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("run coca");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
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
