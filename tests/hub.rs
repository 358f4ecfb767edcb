//! Downloads from the Hugging Face Hub, against a small Hub served by the test itself on
//! 127.0.0.1: the cache layout that Python's `huggingface_hub` shares, cache reuse, offline mode,
//! resumed downloads and the errors for missing, gated and malformed models.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coca_wgpu::hub::{Hub, HubError, HubOptions, ModelConfig, ModelSpec};
use sha2::{Digest, Sha256};

/// The commit id the test Hub reports for every repository (40 hex digits, like a git commit).
const COMMIT: &str = "2b1c0a9f8e7d6c5b4a39281706f5e4d3c2b1a098";
const CONFIG: &str = "open_clip_config.json";
const WEIGHTS: &str = "open_clip_model.safetensors";

fn fixture(file: &str) -> Vec<u8> {
    std::fs::read(common::fixtures().join("parity/small").join(file)).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

struct RepoFile {
    name: String,
    bytes: Vec<u8>,
    /// Stored with Git LFS: the Hub redirects downloads to a storage host and announces the
    /// sha256 in `X-Linked-Etag`.
    lfs: bool,
}

struct Repo {
    id: String,
    files: Vec<RepoFile>,
    /// Requires this token, as a gated or private repository does.
    token: Option<String>,
}

impl Repo {
    /// Builds a repository with the small parity checkpoint's config and safetensors weights.
    fn small(id: &str) -> Repo {
        Repo {
            id: id.into(),
            files: vec![
                RepoFile { name: CONFIG.into(), bytes: fixture(CONFIG), lfs: false },
                RepoFile { name: WEIGHTS.into(), bytes: fixture(WEIGHTS), lfs: true },
            ],
            token: None,
        }
    }
}

#[derive(Clone, Debug)]
struct Request {
    method: String,
    path: String,
    range: Option<String>,
    authorization: Option<String>,
}

struct State {
    origin: String,
    repos: Vec<Repo>,
    requests: Mutex<Vec<Request>>,
    /// Cuts the next LFS download after this many bytes, then closes the connection.
    cut_next_download: Mutex<Option<usize>>,
    /// Flips one byte of every LFS download.
    corrupt: AtomicBool,
}

/// A Hub that serves `GET` and `HEAD /{repo}/resolve/{revision}/{file}` like huggingface.co.
/// Every file has `X-Repo-Commit` and `ETag`, and an LFS file gets a 302 to `/lfs/{sha256}` with
/// `X-Linked-Etag` and `X-Linked-Size`. `Range` requests get 206, missing files 404 with
/// `X-Error-Code: EntryNotFound`, and unknown repositories or a missing token 401.
struct TestHub {
    state: Arc<State>,
}

impl TestHub {
    fn start(repos: Vec<Repo>) -> TestHub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let state = Arc::new(State {
            origin: format!("http://{}", listener.local_addr().unwrap()),
            repos,
            requests: Mutex::new(Vec::new()),
            cut_next_download: Mutex::new(None),
            corrupt: AtomicBool::new(false),
        });
        let server_state = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = server_state.clone();
                std::thread::spawn(move || serve(&state, stream));
            }
        });
        TestHub { state }
    }

    fn endpoint(&self) -> String {
        self.state.origin.clone()
    }

    fn requests(&self) -> Vec<Request> {
        self.state.requests.lock().unwrap().clone()
    }

    fn cut_next_download_after(&self, bytes: usize) {
        *self.state.cut_next_download.lock().unwrap() = Some(bytes);
    }

    fn options(&self, cache_dir: &Path) -> HubOptions {
        HubOptions {
            endpoint: self.endpoint(),
            cache_dir: cache_dir.to_path_buf(),
            offline: false,
            token: None,
            progress: false,
            timeout: Duration::from_secs(10),
            proxy: None,
        }
    }
}

fn serve(state: &State, mut stream: TcpStream) {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let request = Request {
        method,
        path,
        range: headers.get("range").cloned(),
        authorization: headers.get("authorization").cloned(),
    };
    state.requests.lock().unwrap().push(request.clone());
    respond(state, &request, &mut stream);
    let _ = stream.shutdown(Shutdown::Both);
}

fn respond(state: &State, request: &Request, stream: &mut TcpStream) {
    let head = request.method == "HEAD";
    if let Some(sha256) = request.path.strip_prefix("/lfs/") {
        let file = state.repos.iter().flat_map(|r| &r.files).find(|f| f.lfs && sha256_hex(&f.bytes) == sha256);
        return match file {
            Some(file) => send_content(state, request, stream, &file.bytes, file.lfs),
            None => send(stream, "404 Not Found", &[], b"", head),
        };
    }

    let Some((repo_id, rest)) = request.path.trim_start_matches('/').split_once("/resolve/") else {
        return send(stream, "404 Not Found", &[], b"", head);
    };
    let Some(repo) = state.repos.iter().find(|r| r.id == repo_id) else {
        return send(stream, "401 Unauthorized", &[("X-Error-Code", "RepoNotFound".into())], b"", head);
    };
    if let Some(token) = &repo.token {
        if request.authorization.as_deref() != Some(format!("Bearer {token}").as_str()) {
            return send(stream, "401 Unauthorized", &[("X-Error-Code", "GatedRepo".into())], b"", head);
        }
    }
    let (revision, name) = rest.split_once('/').unwrap_or((rest, ""));
    if revision != "main" && revision != COMMIT {
        return send(stream, "404 Not Found", &[("X-Error-Code", "RevisionNotFound".into())], b"", head);
    }
    let commit = ("X-Repo-Commit", COMMIT.to_string());
    let Some(file) = repo.files.iter().find(|f| f.name == name) else {
        return send(stream, "404 Not Found", &[commit, ("X-Error-Code", "EntryNotFound".into())], b"", head);
    };
    if file.lfs {
        let sha256 = sha256_hex(&file.bytes);
        let headers = [
            commit,
            // The ETag of an LFS file is that of its small pointer file in git.
            ("ETag", format!("\"{}\"", &sha256_hex(sha256.as_bytes())[..40])),
            ("X-Linked-Etag", format!("\"{sha256}\"")),
            ("X-Linked-Size", file.bytes.len().to_string()),
            ("Location", format!("{}/lfs/{sha256}", state.origin)),
        ];
        return send(stream, "302 Found", &headers, b"", head);
    }
    send_content(state, request, stream, &file.bytes, false);
}

/// Sends a file's bytes, or the part after `Range: bytes=N-`, as a storage host does.
fn send_content(state: &State, request: &Request, stream: &mut TcpStream, bytes: &[u8], lfs: bool) {
    let head = request.method == "HEAD";
    let mut headers = vec![("X-Repo-Commit", COMMIT.to_string())];
    if !lfs {
        // A regular file's ETag is its git blob id: 40 hex digits that the client treats as opaque.
        headers.push(("ETag", format!("\"{}\"", &sha256_hex(bytes)[..40])));
    }
    let start = request.range.as_deref().and_then(|r| r.strip_prefix("bytes=")).and_then(|r| r.strip_suffix('-'));
    let start: usize = start.and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut body = bytes[start.min(bytes.len())..].to_vec();
    if lfs && state.corrupt.load(Ordering::SeqCst) {
        let middle = body.len() / 2;
        body[middle] ^= 0xff;
    }
    let status = if request.range.is_some() {
        headers.push(("Content-Range", format!("bytes {start}-{}/{}", bytes.len() - 1, bytes.len())));
        "206 Partial Content"
    } else {
        "200 OK"
    };
    let cut = if lfs && !head { state.cut_next_download.lock().unwrap().take() } else { None };
    match cut {
        Some(sent) => {
            // Announce the whole body, send part of it and close the connection.
            let _ = write_head(stream, status, &headers, body.len());
            let _ = stream.write_all(&body[..sent]);
            let _ = stream.flush();
        }
        None => send(stream, status, &headers, &body, head),
    }
}

fn write_head(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], length: usize) -> std::io::Result<()> {
    let mut text = format!("HTTP/1.1 {status}\r\nContent-Length: {length}\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes())
}

fn send(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8], head: bool) {
    let _ = write_head(stream, status, headers, body.len());
    if !head {
        let _ = stream.write_all(body);
    }
    let _ = stream.flush();
}

fn client(options: HubOptions) -> Hub {
    Hub::new(options).unwrap()
}

fn spec(text: &str) -> ModelSpec {
    ModelSpec::parse(text).unwrap().unwrap()
}

fn repo_folder(cache: &Path, repo: &str) -> PathBuf {
    cache.join(format!("models--{}", repo.replace('/', "--")))
}

fn gets_of(requests: &[Request], file: &str) -> Vec<Request> {
    let is_download = |r: &&Request| r.method == "GET" && (r.path.ends_with(file) || r.path.starts_with("/lfs/"));
    requests.iter().filter(is_download).cloned().collect()
}

/// Lists every file under `folder`, symlinks included, as paths relative to it.
fn files_under(folder: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(folder) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            found.extend(files_under(&path).into_iter().map(|p| Path::new(&entry.file_name()).join(p)));
        } else {
            found.push(PathBuf::from(entry.file_name()));
        }
    }
    found
}

#[test]
fn fresh_download_uses_hf_cache_layout() {
    let hub = TestHub::start(vec![Repo::small("org/repo")]);
    let cache = tempfile::tempdir().unwrap();
    let files = client(hub.options(cache.path())).resolve(&spec("hf-hub:org/repo")).unwrap();

    let root = repo_folder(cache.path(), "org/repo");
    let snapshot = root.join("snapshots").join(COMMIT);
    assert_eq!(files.config, Some(ModelConfig::File(snapshot.join(CONFIG))));
    assert_eq!(files.weights, snapshot.join(WEIGHTS));
    assert_eq!(std::fs::read(snapshot.join(CONFIG)).unwrap(), fixture(CONFIG));
    assert_eq!(std::fs::read(snapshot.join(WEIGHTS)).unwrap(), fixture(WEIGHTS));
    assert_eq!(std::fs::read_to_string(root.join("refs/main")).unwrap(), COMMIT);

    // The weights blob is named by its sha256, the LFS etag, and the snapshot links to it.
    let weights_sha256 = sha256_hex(&fixture(WEIGHTS));
    assert_eq!(std::fs::read(root.join("blobs").join(&weights_sha256)).unwrap(), fixture(WEIGHTS));
    #[cfg(unix)]
    assert_eq!(
        std::fs::read_link(snapshot.join(WEIGHTS)).unwrap(),
        Path::new("../../blobs").join(&weights_sha256)
    );
    let leftovers: Vec<PathBuf> =
        files_under(&root).into_iter().filter(|p| p.to_string_lossy().ends_with(".incomplete")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let paths: Vec<String> = hub.requests().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert!(paths.contains(&"HEAD /org/repo/resolve/main/open_clip_config.json".to_string()), "{paths:?}");
    assert!(paths.contains(&format!("GET /org/repo/resolve/{COMMIT}/open_clip_model.safetensors")), "{paths:?}");
    assert!(paths.contains(&format!("GET /lfs/{weights_sha256}")), "{paths:?}");
}

#[test]
fn second_run_downloads_nothing() {
    let hub = TestHub::start(vec![Repo::small("org/repo")]);
    let cache = tempfile::tempdir().unwrap();
    let first = client(hub.options(cache.path())).resolve(&spec("hf-hub:org/repo")).unwrap();
    let before = hub.requests().len();

    let second = client(hub.options(cache.path())).resolve(&spec("hf-hub:org/repo")).unwrap();
    assert_eq!(second.weights, first.weights);
    assert_eq!(second.config, first.config);
    let later = &hub.requests()[before..];
    assert!(!later.is_empty(), "the second run still checks the Hub for a newer commit");
    let gets: Vec<&Request> = later.iter().filter(|r| r.method == "GET").collect();
    assert!(gets.is_empty(), "{gets:?}");
}

#[test]
fn offline_mode_reads_cache_only() {
    let hub = TestHub::start(vec![Repo::small("org/repo")]);
    let cache = tempfile::tempdir().unwrap();
    let online = client(hub.options(cache.path())).resolve(&spec("hf-hub:org/repo")).unwrap();
    let before = hub.requests().len();

    let offline = HubOptions { offline: true, ..hub.options(cache.path()) };
    let files = client(offline).resolve(&spec("hf-hub:org/repo")).unwrap();
    assert_eq!(files.weights, online.weights);
    assert_eq!(files.config, online.config);
    assert_eq!(hub.requests().len(), before, "offline mode sent requests");
}

#[test]
fn offline_mode_with_empty_cache_fails_clearly() {
    let hub = TestHub::start(vec![Repo::small("org/repo")]);
    let cache = tempfile::tempdir().unwrap();
    let offline = HubOptions { offline: true, ..hub.options(cache.path()) };
    let error = client(offline).resolve(&spec("hf-hub:org/repo")).unwrap_err();
    assert!(matches!(error, HubError::Offline { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("HF_HUB_OFFLINE"), "{message}");
    assert!(message.contains("org/repo"), "{message}");
    assert!(message.contains(&cache.path().display().to_string()), "{message}");
    assert!(hub.requests().is_empty());
}

#[test]
fn cut_download_resumes_with_range() {
    let hub = TestHub::start(vec![Repo::small("org/repo")]);
    let cache = tempfile::tempdir().unwrap();
    let weights = fixture(WEIGHTS);
    let half = weights.len() / 2;
    hub.cut_next_download_after(half);

    let error = client(hub.options(cache.path())).resolve(&spec("hf-hub:org/repo")).unwrap_err();
    assert!(matches!(error, HubError::Interrupted { .. }), "{error:?}");
    assert!(error.to_string().contains("run the command again"), "{error}");
    let root = repo_folder(cache.path(), "org/repo");
    let snapshot = root.join("snapshots").join(COMMIT);
    assert!(!snapshot.join(WEIGHTS).exists(), "a cut download reached snapshots/");
    let snapshot_files = files_under(&root.join("snapshots"));
    assert_eq!(snapshot_files, vec![Path::new(COMMIT).join(CONFIG)], "only the complete config is linked");
    let partial = root.join("blobs").join(format!("{}.incomplete", sha256_hex(&weights)));
    assert_eq!(std::fs::metadata(&partial).unwrap().len(), half as u64);

    let before = hub.requests().len();
    let files = client(hub.options(cache.path())).resolve(&spec("hf-hub:org/repo")).unwrap();
    assert_eq!(std::fs::read(&files.weights).unwrap(), weights);
    assert!(!partial.exists());
    let resumed = gets_of(&hub.requests()[before..], WEIGHTS);
    let ranges: Vec<Option<String>> = resumed.iter().map(|r| r.range.clone()).collect();
    assert!(ranges.contains(&Some(format!("bytes={half}-"))), "{resumed:?}");
}

#[test]
fn corrupt_download_is_rejected() {
    let hub = TestHub::start(vec![Repo::small("org/repo")]);
    hub.state.corrupt.store(true, Ordering::SeqCst);
    let cache = tempfile::tempdir().unwrap();
    let error = client(hub.options(cache.path())).resolve(&spec("hf-hub:org/repo")).unwrap_err();
    assert!(matches!(error, HubError::Checksum { .. }), "{error:?}");
    let root = repo_folder(cache.path(), "org/repo");
    let blobs = files_under(&root.join("blobs"));
    assert_eq!(blobs.len(), 1, "only the config blob stays: {blobs:?}");
    assert!(!root.join("snapshots").join(COMMIT).join(WEIGHTS).exists());
}

#[test]
fn repo_without_weights_fails_clearly() {
    let repo = Repo {
        id: "org/config-only".into(),
        files: vec![RepoFile { name: CONFIG.into(), bytes: fixture(CONFIG), lfs: false }],
        token: None,
    };
    let hub = TestHub::start(vec![repo]);
    let cache = tempfile::tempdir().unwrap();
    let error = client(hub.options(cache.path())).resolve(&spec("hf-hub:org/config-only")).unwrap_err();
    assert!(matches!(error, HubError::NoWeights { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("org/config-only"), "{message}");
    assert!(message.contains("open_clip_model.safetensors"), "{message}");
    assert!(message.contains("open_clip_pytorch_model.bin"), "{message}");

    // The missing files are recorded like huggingface_hub does, so offline runs know them too.
    let offline = HubOptions { offline: true, ..hub.options(cache.path()) };
    let error = client(offline).resolve(&spec("hf-hub:org/config-only")).unwrap_err();
    assert!(matches!(error, HubError::NoWeights { .. }), "{error:?}");
}

#[test]
fn pytorch_weights_are_the_fallback() {
    let bin = "open_clip_pytorch_model.bin";
    let repo = Repo {
        id: "org/pickle".into(),
        files: vec![
            RepoFile { name: CONFIG.into(), bytes: fixture(CONFIG), lfs: false },
            RepoFile { name: bin.into(), bytes: fixture(WEIGHTS), lfs: true },
        ],
        token: None,
    };
    let hub = TestHub::start(vec![repo]);
    let cache = tempfile::tempdir().unwrap();
    let files = client(hub.options(cache.path())).resolve(&spec("hf-hub:org/pickle")).unwrap();
    assert_eq!(files.weights.file_name().unwrap(), bin);
    assert_eq!(std::fs::read(&files.weights).unwrap(), fixture(WEIGHTS));

    // Offline, the cached .bin serves, since the safetensors file is recorded as missing.
    let offline = HubOptions { offline: true, ..hub.options(cache.path()) };
    assert_eq!(client(offline).resolve(&spec("hf-hub:org/pickle")).unwrap().weights, files.weights);
}

#[test]
fn unknown_repo_mentions_hf_token() {
    let hub = TestHub::start(vec![]);
    let cache = tempfile::tempdir().unwrap();
    let error = client(hub.options(cache.path())).resolve(&spec("hf-hub:org/absent")).unwrap_err();
    assert!(matches!(error, HubError::Unauthorized { status: 401, .. }), "{error:?}");
    assert!(error.to_string().contains("HF_TOKEN"), "{error}");
}

#[test]
fn gated_repo_needs_token() {
    let repo = Repo { token: Some("hf_test_token".into()), ..Repo::small("org/gated") };
    let hub = TestHub::start(vec![repo]);
    let cache = tempfile::tempdir().unwrap();
    let error = client(hub.options(cache.path())).resolve(&spec("hf-hub:org/gated")).unwrap_err();
    assert!(matches!(error, HubError::Unauthorized { status: 401, token_sent: false, .. }), "{error:?}");
    assert!(error.to_string().contains("set HF_TOKEN"), "{error}");

    let with_token = HubOptions { token: Some("hf_test_token".into()), ..hub.options(cache.path()) };
    let files = client(with_token).resolve(&spec("hf-hub:org/gated")).unwrap();
    assert_eq!(std::fs::read(&files.weights).unwrap(), fixture(WEIGHTS));
    let heads: Vec<Request> = hub.requests().into_iter().filter(|r| r.method == "HEAD").collect();
    assert_eq!(heads.last().unwrap().authorization.as_deref(), Some("Bearer hf_test_token"));
}

#[test]
fn unreachable_hub_falls_back_to_cache() {
    let hub = TestHub::start(vec![Repo::small("org/repo")]);
    let cache = tempfile::tempdir().unwrap();
    let online = client(hub.options(cache.path())).resolve(&spec("hf-hub:org/repo")).unwrap();

    // A port that was just free has nothing listening.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let unreachable = |cache_dir: &Path| HubOptions { endpoint: format!("http://{closed}"), ..hub.options(cache_dir) };
    let files = client(unreachable(cache.path())).resolve(&spec("hf-hub:org/repo")).unwrap();
    assert_eq!(files.weights, online.weights);

    let empty = tempfile::tempdir().unwrap();
    let error = client(unreachable(empty.path())).resolve(&spec("hf-hub:org/repo")).unwrap_err();
    assert!(matches!(error, HubError::Connection { .. }), "{error:?}");
    assert!(error.to_string().contains("HF_HUB_OFFLINE=1"), "{error}");
}

/// Builds a repository like the released CoCa ones: weights without `open_clip_config.json`.
fn weights_only(id: &str) -> Repo {
    Repo { id: id.into(), files: vec![RepoFile { name: WEIGHTS.into(), bytes: fixture(WEIGHTS), lfs: true }], token: None }
}

#[test]
fn pretrained_name_requests_open_clip_repo() {
    // The repository of `coca_ViT-B-32:laion2b_s13b_b90k` in open_clip 3.3.0's pretrained table.
    let repo_id = "laion/CoCa-ViT-B-32-laion2B-s13B-b90k";
    let hub = TestHub::start(vec![weights_only(repo_id)]);
    let cache = tempfile::tempdir().unwrap();
    let files = client(hub.options(cache.path())).resolve(&spec("coca_ViT-B-32:laion2b_s13b_b90k")).unwrap();
    assert_eq!(files.config, Some(ModelConfig::Builtin("coca_ViT-B-32")));
    assert_eq!(std::fs::read(&files.weights).unwrap(), fixture(WEIGHTS));
    let paths: Vec<String> = hub.requests().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(paths[0], format!("HEAD /{repo_id}/resolve/main/open_clip_model.safetensors"), "{paths:?}");
    assert!(!paths.iter().any(|p| p.contains(CONFIG)), "open_clip uses the built-in config: {paths:?}");
}

#[test]
fn hub_repo_without_config_uses_builtin() {
    let repo_id = "laion/mscoco_finetuned_CoCa-ViT-L-14-laion2B-s13B-b90k";
    let hub = TestHub::start(vec![weights_only(repo_id), weights_only("org/no-config")]);
    let cache = tempfile::tempdir().unwrap();
    let hub_client = client(hub.options(cache.path()));
    let files = hub_client.resolve(&spec(&format!("hf-hub:{repo_id}"))).unwrap();
    assert_eq!(files.config, Some(ModelConfig::Builtin("coca_ViT-L-14")));

    // Another repository without a config leaves the choice to the caller (`--config`).
    let files = hub_client.resolve(&spec("hf-hub:org/no-config")).unwrap();
    assert_eq!(files.config, None);
    assert_eq!(std::fs::read(&files.weights).unwrap(), fixture(WEIGHTS));
}

#[test]
fn model_specs_parse_like_open_clip() {
    // Repository ids from open_clip 3.3.0's `pretrained.py`; tags match case-insensitively with `-` as `_`.
    let cases = [
        ("coca_ViT-B-32:laion2b_s13b_b90k", "coca_ViT-B-32", "laion/CoCa-ViT-B-32-laion2B-s13B-b90k"),
        (
            "coca_ViT-B-32:mscoco_finetuned_laion2b_s13b_b90k",
            "coca_ViT-B-32",
            "laion/mscoco_finetuned_CoCa-ViT-B-32-laion2B-s13B-b90k",
        ),
        ("coca_ViT-L-14:laion2b_s13b_b90k", "coca_ViT-L-14", "laion/CoCa-ViT-L-14-laion2B-s13B-b90k"),
        (
            "coca_ViT-L-14:mscoco_finetuned_laion2b_s13b_b90k",
            "coca_ViT-L-14",
            "laion/mscoco_finetuned_CoCa-ViT-L-14-laion2B-s13B-b90k",
        ),
        ("coca_ViT-L-14:LAION2B-S13B-B90K", "coca_ViT-L-14", "laion/CoCa-ViT-L-14-laion2B-s13B-b90k"),
    ];
    for (text, architecture, repo) in cases {
        match spec(text) {
            ModelSpec::Pretrained { architecture: a, repo: r, .. } => {
                assert_eq!(a, architecture, "{text}");
                assert_eq!(r, repo, "{text}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
    assert_eq!(spec("hf-hub:org/repo"), ModelSpec::HfHub { repo: "org/repo".into() });
    assert_eq!(spec("hf-hub:single-name"), ModelSpec::HfHub { repo: "single-name".into() });
    for path in ["demo", "models/demo", "./x:y/model", "C:\\models\\coca"] {
        assert_eq!(ModelSpec::parse(path).unwrap(), None, "{path}");
    }
}

#[test]
fn malformed_specs_fail_clearly() {
    for text in ["hf-hub:", "hf-hub:org/repo/extra", "hf-hub:org/re po", "hf-hub:../x", "hf-hub:org--x/y", "hf-hub:org/-x"] {
        let error = ModelSpec::parse(text).unwrap_err();
        assert!(matches!(error, HubError::InvalidSpec { .. }), "{text}: {error:?}");
        assert!(error.to_string().contains("hf-hub:ORG/REPO") || error.to_string().contains("--"), "{text}: {error}");
    }
    for text in ["coca_ViT-B-32:openai", "ViT-B-32:laion2b_s34b_b79k", "coca_ViT-H-14:laion2b_s13b_b90k"] {
        let error = ModelSpec::parse(text).unwrap_err();
        assert!(matches!(error, HubError::UnknownPretrained { .. }), "{text}: {error:?}");
        let message = error.to_string();
        assert!(message.contains("coca_ViT-B-32:laion2b_s13b_b90k"), "{message}");
        assert!(message.contains("coca_ViT-L-14:mscoco_finetuned_laion2b_s13b_b90k"), "{message}");
    }
}

#[test]
fn options_follow_huggingface_hub_env_vars() {
    let options = |vars: &[(&str, &str)]| {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        HubOptions::from_vars(|name| vars.get(name).cloned())
    };
    let defaults = options(&[("HOME", "/home/u")]);
    assert_eq!(defaults.endpoint, "https://huggingface.co");
    assert_eq!(defaults.cache_dir, Path::new("/home/u/.cache/huggingface/hub"));
    assert!(!defaults.offline);
    assert_eq!(defaults.token, None);

    assert_eq!(options(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/xdg")]).cache_dir, Path::new("/xdg/huggingface/hub"));
    assert_eq!(options(&[("HOME", "/home/u"), ("HF_HOME", "/hf")]).cache_dir, Path::new("/hf/hub"));
    assert_eq!(options(&[("HOME", "/home/u"), ("HF_HOME", "~/hf")]).cache_dir, Path::new("/home/u/hf/hub"));
    assert_eq!(options(&[("HF_HOME", "/hf"), ("HF_HUB_CACHE", "/cache")]).cache_dir, Path::new("/cache"));
    assert_eq!(options(&[("HF_ENDPOINT", "http://127.0.0.1:9/")]).endpoint, "http://127.0.0.1:9");
    assert_eq!(options(&[("HF_TOKEN", "hf_abc")]).token.as_deref(), Some("hf_abc"));
    assert_eq!(defaults.timeout, Duration::from_secs(10));
    assert_eq!(defaults.proxy, None);
    assert_eq!(options(&[("HF_HUB_DOWNLOAD_TIMEOUT", "60")]).timeout, Duration::from_secs(60));
    assert_eq!(options(&[("HF_HUB_DOWNLOAD_TIMEOUT", "soon")]).timeout, Duration::from_secs(10));
    for (value, offline) in [("1", true), ("true", true), ("YES", true), ("0", false), ("", false)] {
        assert_eq!(options(&[("HF_HUB_OFFLINE", value)]).offline, offline, "HF_HUB_OFFLINE={value}");
    }

    // The proxy follows the endpoint's scheme, and NO_PROXY lists hosts and domains to reach directly.
    let proxy = |vars: &[(&str, &str)]| options(vars).proxy;
    assert_eq!(proxy(&[("HTTPS_PROXY", "http://proxy:3128")]).as_deref(), Some("http://proxy:3128"));
    assert_eq!(proxy(&[("https_proxy", "http://proxy:3128")]).as_deref(), Some("http://proxy:3128"));
    assert_eq!(proxy(&[("HTTP_PROXY", "http://proxy:3128")]), None);
    assert_eq!(proxy(&[("ALL_PROXY", "http://proxy:3128")]).as_deref(), Some("http://proxy:3128"));
    let local = [("HF_ENDPOINT", "http://127.0.0.1:9"), ("HTTP_PROXY", "http://proxy:3128")];
    assert_eq!(proxy(&local).as_deref(), Some("http://proxy:3128"));
    assert_eq!(proxy(&[local[0], local[1], ("NO_PROXY", "localhost,127.0.0.1")]), None);
    assert_eq!(proxy(&[("HTTPS_PROXY", "http://proxy:3128"), ("NO_PROXY", ".huggingface.co")]), None);
    assert_eq!(proxy(&[("HTTPS_PROXY", "http://proxy:3128"), ("NO_PROXY", "face.co")]).as_deref(), Some("http://proxy:3128"));

    // `huggingface-cli login` stores the token in HF_HOME/token.
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("token"), "hf_from_file\n").unwrap();
    assert_eq!(options(&[("HF_HOME", home.path().to_str().unwrap())]).token.as_deref(), Some("hf_from_file"));
}

#[test]
fn invalid_proxy_fails_clearly() {
    let cache = tempfile::tempdir().unwrap();
    let options = HubOptions { proxy: Some("ftp://proxy".into()), ..HubOptions::from_vars(|_| None) };
    let options = HubOptions { cache_dir: cache.path().to_path_buf(), ..options };
    let error = Hub::new(options).err().unwrap();
    assert!(matches!(error, HubError::InvalidProxy { .. }), "{error:?}");
    assert!(error.to_string().contains("ftp://proxy"), "{error}");
}

/// Runs the `coca` binary with the Hub variables set only for it.
fn coca(args: &[&str], hf_home: &Path, endpoint: &str, offline: bool) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_coca"));
    command
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env("HF_HOME", hf_home)
        .env("HF_ENDPOINT", endpoint)
        .env_remove("HF_HUB_CACHE")
        .env_remove("HUGGINGFACE_HUB_CACHE")
        .env_remove("HF_TOKEN")
        .env_remove("HF_TOKEN_PATH")
        .env("NO_PROXY", "127.0.0.1");
    if offline {
        command.env("HF_HUB_OFFLINE", "1");
    } else {
        command.env_remove("HF_HUB_OFFLINE");
    }
    let output = command.output().expect("run coca");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn cli_embeds_text_from_hub_model() {
    let hub = TestHub::start(vec![Repo::small("org/repo")]);
    let hf_home = tempfile::tempdir().unwrap();
    let local = common::fixtures().join("parity/small");
    let args = |model| ["embed-text", "--json", "--model", model, "a red circle"];

    let (ok, expected, stderr) = coca(&args(local.to_str().unwrap()), hf_home.path(), &hub.endpoint(), false);
    assert!(ok, "{stderr}");

    let hub_args = args("hf-hub:org/repo");
    let (ok, stdout, stderr) = coca(&hub_args, hf_home.path(), &hub.endpoint(), false);
    assert!(ok, "{stderr}");
    assert!(!stdout.is_empty());
    assert_eq!(stdout, expected);
    assert!(repo_folder(&hf_home.path().join("hub"), "org/repo").join("snapshots").join(COMMIT).join(WEIGHTS).exists());

    // HF_HUB_OFFLINE=1 with an empty cache fails before any request, with the offline error.
    let empty = tempfile::tempdir().unwrap();
    let before = hub.requests().len();
    let (ok, stdout, stderr) = coca(&hub_args, empty.path(), &hub.endpoint(), true);
    assert!(!ok);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("HF_HUB_OFFLINE"), "{stderr}");
    assert_eq!(hub.requests().len(), before);
}

/// A repository whose only weights are `open_clip_pytorch_model.bin` (as in laion's CoCa
/// repositories) downloads, loads and embeds text like the safetensors folder.
#[test]
fn cli_loads_pytorch_weights_of_a_hub_repo() {
    let bin = "open_clip_pytorch_model.bin";
    let small_bin = std::fs::read(common::fixtures().join("bin/small").join(bin)).unwrap();
    let repo = Repo {
        id: "org/pickle".into(),
        files: vec![
            RepoFile { name: CONFIG.into(), bytes: fixture(CONFIG), lfs: false },
            RepoFile { name: bin.into(), bytes: small_bin, lfs: true },
        ],
        token: None,
    };
    let hub = TestHub::start(vec![repo]);
    let hf_home = tempfile::tempdir().unwrap();
    let local = common::fixtures().join("parity/small");
    let args = |model| ["embed-text", "--json", "--model", model, "a red circle"];
    let (ok, expected, stderr) = coca(&args(local.to_str().unwrap()), hf_home.path(), &hub.endpoint(), false);
    assert!(ok, "{stderr}");
    let (ok, stdout, stderr) = coca(&args("hf-hub:org/pickle"), hf_home.path(), &hub.endpoint(), false);
    assert!(ok, "{stderr}");
    // The .bin contains the small checkpoint's f16 weights, the same values as its safetensors file.
    assert_eq!(stdout, expected);
}
