//! torch.save checkpoints (`open_clip_pytorch_model.bin`): tensors equal those that torch wrote to
//! safetensors from the same source, and pickles that would run code, other unsupported content
//! and damaged files are rejected with an error. The fixtures and the script that made them are
//! described in scripts/make_bin_fixtures.py.

mod common;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use coca_wgpu::model::weights::HostWeights;
use coca_wgpu::CocaConfig;
use common::{fixtures, load_expected};

fn bin_fixture(name: &str) -> PathBuf {
    fixtures().join("bin").join(name)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load_bin(name: &str) -> coca_wgpu::Result<HostWeights> {
    HostWeights::from_pytorch(&read(&bin_fixture(name)), name)
}

fn error_of(name: &str) -> String {
    match load_bin(name) {
        Ok(weights) => panic!("{name} loaded with {} tensors but must be rejected", weights.tensors.len()),
        Err(error) => error.to_string(),
    }
}

/// Reads a safetensors file's tensors as torch wrote them (F32, F16 or BF16), widened to f32.
fn safetensors_values(path: &Path) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = read(path);
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            let data = view.data();
            let values: Vec<f32> = match view.dtype() {
                safetensors::Dtype::F32 => data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
                safetensors::Dtype::F16 => {
                    data.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
                }
                safetensors::Dtype::BF16 => {
                    data.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
                }
                other => panic!("{name}: unexpected dtype {other:?}"),
            };
            (name, (view.shape().to_vec(), values))
        })
        .collect()
}

/// Asserts that `weights` has exactly the tensors of `expected`, bit for bit.
fn assert_same_tensors(label: &str, weights: &HostWeights, expected: &HashMap<String, (Vec<usize>, Vec<f32>)>) {
    let mut got_names: Vec<&String> = weights.tensors.keys().collect();
    let mut expected_names: Vec<&String> = expected.keys().collect();
    got_names.sort();
    expected_names.sort();
    assert_eq!(got_names, expected_names, "{label}: tensor names");
    for (name, (shape, values)) in expected {
        let tensor = &weights.tensors[name];
        assert_eq!(&tensor.shape, shape, "{label}: shape of `{name}`");
        let got: Vec<u32> = tensor.data.iter().map(|v| v.to_bits()).collect();
        let want: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
        if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
            panic!("{label}: `{name}`[{i}] is {} but torch wrote {}", tensor.data[i], values[i]);
        }
    }
}

#[test]
fn small_f16_bin_equals_its_safetensors() {
    // Saved as {"state_dict": {"module." + name: tensor}}, which open_clip unwraps.
    let weights = load_bin("small/open_clip_pytorch_model.bin").unwrap();
    let expected = safetensors_values(&fixtures().join("parity/small/open_clip_model.safetensors"));
    assert_same_tensors("small f16", &weights, &expected);

    let config = std::fs::read_to_string(bin_fixture("small/open_clip_config.json")).unwrap();
    let (config, _) = CocaConfig::from_json(&config).unwrap();
    weights.validate(&config.dims().unwrap()).expect("the names are open_clip's CoCa names");
}

#[test]
fn tiny_f32_bin_with_shared_storage_equals_safetensors() {
    let weights = load_bin("tiny_f32.bin").unwrap();
    let expected = safetensors_values(&bin_fixture("tiny.safetensors"));
    assert_same_tensors("tiny f32", &weights, &expected);

    // The in-projection weight and bias share one storage, the bias at a non-zero offset, and
    // visual.proj is a transposed view. The loop above compares their values, these their shapes.
    assert_eq!(weights.tensors["text_decoder.cross_attn.0.attn.in_proj_weight"].shape, vec![24, 8]);
    assert_eq!(weights.tensors["text_decoder.cross_attn.0.attn.in_proj_bias"].shape, vec![24]);
    assert_eq!(weights.tensors["visual.proj"].shape, vec![8, 8]);
}

#[test]
fn tiny_bf16_training_checkpoint_equals_safetensors() {
    // An open_clip training checkpoint: epoch, name, optimizer state and a "module." state dict.
    let weights = load_bin("tiny_bf16.bin").unwrap();
    let expected = safetensors_values(&bin_fixture("tiny_bf16.safetensors"));
    assert_same_tensors("tiny bf16", &weights, &expected);
}

#[test]
fn big_endian_storages_are_byte_swapped() {
    let weights = load_bin("big_endian.bin").unwrap();
    let expected = safetensors_values(&bin_fixture("big_endian_expected.safetensors"));
    assert_same_tensors("big endian", &weights, &expected);
}

/// Loads a pickle that would create `marker` in the working folder if it ran, and returns the error.
fn error_without_side_effect(name: &str, marker: &str) -> String {
    let marker = std::env::current_dir().unwrap().join(marker);
    let _ = std::fs::remove_file(&marker);
    let message = error_of(name);
    assert!(!marker.exists(), "{name} created {}", marker.display());
    message
}

#[test]
fn os_system_pickle_is_rejected_without_running() {
    let message = error_without_side_effect("os_system.bin", "pytorch-bin-os-system-marker");
    assert!(message.contains("`os.system`"), "{message}");
    assert!(message.contains("not a plain dictionary of tensors"), "{message}");
}

#[test]
fn builtins_eval_pickle_is_rejected_without_running() {
    let message = error_without_side_effect("builtins_eval.bin", "pytorch-bin-eval-marker");
    assert!(message.contains("`builtins.eval`"), "{message}");
    assert!(message.contains("not a plain dictionary of tensors"), "{message}");
}

#[test]
fn unsupported_content_is_named() {
    let cases = [
        ("numpy_array.bin", "`numpy._core.multiarray._reconstruct`"),
        ("complex_tensor.bin", "storage type `torch.ComplexFloatStorage`"),
        ("int64_tensor.bin", "tensor `position_ids` is stored as torch.LongStorage"),
        ("expanded_tensor.bin", "tensor `weight` (shape [4], stride [0], storage offset 0) has 4 elements but its storage only 1"),
        ("legacy.bin", "torch.save's legacy format"),
        ("deep_nesting.bin", "nests containers more than 64 levels deep"),
        ("self_reference.bin", "modifies a list after nesting it in another value"),
        ("short_storage.bin", "has 16 bytes, but the pickle declares 8 elements of torch.FloatStorage"),
    ];
    for (name, expected) in cases {
        let message = error_of(name);
        assert!(message.contains(expected), "{name}: {message}");
        assert!(message.contains(name), "{name}: the error does not name the file: {message}");
    }
}

#[test]
fn non_zip_files_are_rejected() {
    let safetensors = read(&bin_fixture("tiny.safetensors"));
    let message = HostWeights::from_pytorch(&safetensors, "tiny.safetensors").err().unwrap().to_string();
    assert!(message.contains("looks like safetensors"), "{message}");
    let message = HostWeights::from_pytorch(b"", "empty.bin").err().unwrap().to_string();
    assert!(message.contains("empty"), "{message}");
    let message = HostWeights::from_pytorch(b"<html>not found</html>", "page.bin").err().unwrap().to_string();
    assert!(message.contains("not a torch.save zip archive"), "{message}");
}

#[test]
fn truncated_files_fail_with_an_error() {
    let bytes = read(&bin_fixture("tiny_f32.bin"));
    let len = bytes.len();
    for cut in [0, 1, 4, 30, 100, 1000, len / 3, len / 2, len - 100, len - 23, len - 22, len - 1] {
        let result = catch_unwind(|| HostWeights::from_pytorch(&bytes[..cut], "cut.bin"));
        let result = result.unwrap_or_else(|_| panic!("panicked on the first {cut} bytes"));
        let message = result.err().unwrap_or_else(|| panic!("accepted the first {cut} of {len} bytes")).to_string();
        assert!(message.contains("truncated") || message.contains("empty"), "cut at {cut}: {message}");
    }
}

/// Finds the central directory header of the entry whose name ends with `suffix`. Returns the
/// offset of its CRC-32 field and the range of the entry's bytes.
fn zip_entry(bytes: &[u8], suffix: &str) -> (usize, std::ops::Range<usize>) {
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]) as usize;
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap()) as usize;
    let header = (0..bytes.len() - 46)
        .find(|&i| {
            bytes[i..i + 4] == *b"PK\x01\x02" && bytes[i + 46..i + 46 + u16_at(i + 28)].ends_with(suffix.as_bytes())
        })
        .unwrap_or_else(|| panic!("no central directory entry ending with {suffix}"));
    let local = u32_at(header + 42);
    let start = local + 30 + u16_at(local + 26) + u16_at(local + 28);
    (header + 16, start..start + u32_at(header + 20))
}

#[test]
fn corrupted_pickles_never_panic() {
    // Each byte of data.pkl is changed and the CRC-32 updated, so the unpickler itself reads
    // the damage. Most changes must fail, and none may panic.
    let original = read(&bin_fixture("tiny_f32.bin"));
    let (crc_field, pickle) = zip_entry(&original, "/data.pkl");
    let mut rejected = 0;
    let mut tried = 0;
    for position in pickle.clone() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bytes = original.clone();
            bytes[position] ^= flip;
            let crc = crc32fast::hash(&bytes[pickle.clone()]);
            bytes[crc_field..crc_field + 4].copy_from_slice(&crc.to_le_bytes());
            let result = catch_unwind(AssertUnwindSafe(|| HostWeights::from_pytorch(&bytes, "fuzz.bin")));
            let result = result.unwrap_or_else(|_| panic!("panicked with pickle byte {position} xor {flip:#04x}"));
            tried += 1;
            rejected += result.is_err() as usize;
        }
    }
    // A changed letter of a tensor name or a memo index can still parse, but most changes cannot.
    assert!(rejected * 2 > tried, "only {rejected} of {tried} corrupted pickles were rejected");
}

#[test]
fn corrupted_archives_never_panic() {
    let original = read(&bin_fixture("tiny_f32.bin"));
    for position in 0..original.len() {
        let mut bytes = original.clone();
        bytes[position] ^= 0xff;
        let result = catch_unwind(AssertUnwindSafe(|| HostWeights::from_pytorch(&bytes, "fuzz.bin")));
        assert!(result.is_ok(), "panicked with byte {position} inverted");
    }
}

fn coca(args: &[&str]) -> (bool, String, String) {
    common::run_coca(args)
}

/// Creates an empty folder under the system's temporary folder.
fn temp_folder(name: &str) -> PathBuf {
    let folder = std::env::temp_dir().join(format!("coca-pytorch-bin-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    folder
}

#[test]
fn embed_text_from_bin_folder_matches_safetensors_folder() {
    let safetensors_dir = fixtures().join("parity/small");
    let bin_dir = bin_fixture("small");
    let bin_file = bin_dir.join("open_clip_pytorch_model.bin");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(safetensors_dir.join("meta.json")).unwrap()).unwrap();
    let texts: Vec<&str> = meta["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();

    let run = |model: &Path| {
        let mut args = vec!["embed-text", "--json", "--model", model.to_str().unwrap()];
        args.extend(&texts);
        let (ok, stdout, stderr) = coca(&args);
        assert!(ok, "--model {}: {stderr}", model.display());
        stdout
    };
    let from_safetensors = run(&safetensors_dir);
    assert_eq!(run(&bin_dir), from_safetensors, "--model with the .bin folder");
    assert_eq!(run(&bin_file), from_safetensors, "--model with the .bin file");

    // And both match open_clip's features for these texts.
    let expected = load_expected(&safetensors_dir.join("expected.safetensors"))["text_features"].f32();
    let dim = expected.len() / texts.len();
    for (i, line) in from_safetensors.lines().enumerate() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        let got: Vec<f32> = line["embedding"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        common::assert_close(&format!("text {i}"), &got, &expected[i * dim..(i + 1) * dim], 1e-4);
    }
}

#[test]
fn model_folder_prefers_safetensors_and_rejects_bad_bin() {
    let small = fixtures().join("parity/small");
    let malicious = bin_fixture("os_system.bin");

    // With both files the safetensors weights load, so the malicious .bin is never read.
    let both = temp_folder("both");
    for name in ["open_clip_config.json", "open_clip_model.safetensors"] {
        std::fs::copy(small.join(name), both.join(name)).unwrap();
    }
    std::fs::copy(&malicious, both.join("open_clip_pytorch_model.bin")).unwrap();
    let (ok, _, stderr) = coca(&["embed-text", "--model", both.to_str().unwrap(), "a cat"]);
    assert!(ok, "{stderr}");

    // With only the .bin it is read and rejected, with one error line and nothing run.
    let only_bin = temp_folder("only-bin");
    std::fs::copy(small.join("open_clip_config.json"), only_bin.join("open_clip_config.json")).unwrap();
    std::fs::copy(&malicious, only_bin.join("open_clip_pytorch_model.bin")).unwrap();
    let (ok, stdout, stderr) = coca(&["embed-text", "--model", only_bin.to_str().unwrap(), "a cat"]);
    assert!(!ok, "{stdout}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("open_clip_pytorch_model.bin"), "{stderr}");
    assert!(errors[0].contains("`os.system`"), "{stderr}");
    assert!(!Path::new("pytorch-bin-os-system-marker").exists());
    assert!(!only_bin.join("pytorch-bin-os-system-marker").exists());

    // An empty folder lists both accepted weight files.
    let empty = temp_folder("empty");
    std::fs::copy(small.join("open_clip_config.json"), empty.join("open_clip_config.json")).unwrap();
    let (ok, _, stderr) = coca(&["embed-text", "--model", empty.to_str().unwrap(), "a cat"]);
    assert!(!ok);
    assert!(stderr.contains("no .safetensors file and no open_clip_pytorch_model.bin"), "{stderr}");

    for folder in [both, only_bin, empty] {
        let _ = std::fs::remove_dir_all(folder);
    }
}

#[test]
fn library_loads_bin_bytes_like_safetensors() {
    let dir = bin_fixture("small");
    let config = std::fs::read_to_string(dir.join("open_clip_config.json")).unwrap();
    let bytes = read(&dir.join("open_clip_pytorch_model.bin"));
    let mut coca = coca_wgpu::Coca::from_bytes(common::context(), &config, &bytes, "open_clip_pytorch_model.bin").unwrap();
    let expected = load_expected(&fixtures().join("parity/small/expected.safetensors"));
    let text = expected["text"].rows_u32();
    let features = pollster::block_on(coca.encode_text(&text, true)).unwrap();
    common::assert_close("text_features from .bin bytes", &features.concat(), &expected["text_features"].f32(), 1e-4);
}
