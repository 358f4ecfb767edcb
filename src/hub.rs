//! Downloads open_clip CoCa checkpoints from the Hugging Face Hub into the Hub's standard cache.
//!
//! Model specs follow open_clip 3.3.0's `create_model`: `hf-hub:ORG/REPO` reads the repository's
//! `open_clip_config.json` and weights, and `ARCHITECTURE:TAG` (`coca_ViT-B-32:laion2b_s13b_b90k`)
//! names a checkpoint of open_clip's pretrained table, whose config is the built-in architecture.
//!
//! Files land in the cache layout of Python's `huggingface_hub`, so both reuse each other's
//! downloads: under `models--ORG--REPO/`, `blobs/<etag>` contains each file's content,
//! `snapshots/<commit>/<file>` is a relative symlink to it, `refs/main` stores the commit that
//! `main` pointed to at the last request, and an empty `.no_exist/<commit>/<file>` records a file
//! that the repository lacks. A download goes to `blobs/<etag>.incomplete`, resumes from there
//! with an HTTP Range request, and moves into place only once its size (and, for LFS files, its
//! sha256) match what the Hub announced.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// The config file of an open_clip checkpoint repository.
pub const CONFIG_FILE: &str = "open_clip_config.json";
/// open_clip's safetensors weights file name, preferred over [`PYTORCH_WEIGHTS`].
pub const SAFETENSORS_WEIGHTS: &str = "open_clip_model.safetensors";
/// open_clip's PyTorch pickle weights file name.
pub const PYTORCH_WEIGHTS: &str = "open_clip_pytorch_model.bin";

/// open_clip 3.3.0's pretrained CoCa checkpoints (`pretrained.py`): architecture, tag and Hub repository.
pub const PRETRAINED: &[(&str, &str, &str)] = &[
    ("coca_ViT-B-32", "laion2b_s13b_b90k", "laion/CoCa-ViT-B-32-laion2B-s13B-b90k"),
    ("coca_ViT-B-32", "mscoco_finetuned_laion2b_s13b_b90k", "laion/mscoco_finetuned_CoCa-ViT-B-32-laion2B-s13B-b90k"),
    ("coca_ViT-L-14", "laion2b_s13b_b90k", "laion/CoCa-ViT-L-14-laion2B-s13B-b90k"),
    ("coca_ViT-L-14", "mscoco_finetuned_laion2b_s13b_b90k", "laion/mscoco_finetuned_CoCa-ViT-L-14-laion2B-s13B-b90k"),
];

/// The branch that model specs resolve; open_clip always downloads from it.
const REVISION: &str = "main";
const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Relative redirects (a renamed repository) followed before giving up, as `huggingface_hub` does.
const MAX_RELATIVE_REDIRECTS: usize = 5;
const HUGGINGFACE_HEADER_X_REPO_COMMIT: &str = "X-Repo-Commit";

/// Errors of resolving and downloading Hub models. Each variant's message names what failed and
/// what to do, and the fields are the values in the message.
#[allow(missing_docs)]
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("invalid model `{spec}`: {reason}")]
    InvalidSpec { spec: String, reason: String },

    #[error("unknown pretrained model `{spec}`; the pretrained CoCa models are {}", known_pretrained())]
    UnknownPretrained { spec: String },

    #[error(
        "{file} of {repo} is not in the Hugging Face cache {} and HF_HUB_OFFLINE is set, so it was not \
         downloaded; unset HF_HUB_OFFLINE to download it",
        cache.display()
    )]
    Offline { repo: String, file: String, cache: PathBuf },

    #[error(
        "{repo} has no CoCa weights: neither {SAFETENSORS_WEIGHTS} nor {PYTORCH_WEIGHTS} exists on its \
         {REVISION} branch; check the repository name"
    )]
    NoWeights { repo: String },

    #[error("repository {repo} not found ({url}); check its name, or set HF_TOKEN if it is private")]
    RepoNotFound { repo: String, url: String },

    #[error("{url}: HTTP {status}, access denied: {}", access_hint(*token_sent))]
    Unauthorized { url: String, status: u16, token_sent: bool },

    #[error("{url}: HTTP {status}")]
    Status { url: String, status: u16 },

    #[error(
        "cannot reach {url}: {reason}; check the network connection and HF_ENDPOINT, or set \
         HF_HUB_OFFLINE=1 to use only cached files"
    )]
    Connection { url: String, reason: String },

    #[error("{url} is not a Hugging Face Hub file URL ({reason}); check HF_ENDPOINT")]
    BadResponse { url: String, reason: String },

    #[error("download of {url} stopped after {done} of {total} bytes ({reason}); run the command again to resume it")]
    Interrupted { url: String, done: u64, total: u64, reason: String },

    #[error(
        "download of {url} is corrupt: its sha256 is {actual}, but the Hub announced {expected}; \
         the file was deleted, run the command again"
    )]
    Checksum { url: String, expected: String, actual: String },

    #[error("invalid proxy `{proxy}` (from HTTPS_PROXY, HTTP_PROXY or ALL_PROXY): {reason}")]
    InvalidProxy { proxy: String, reason: String },

    #[error("failed to write {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn known_pretrained() -> String {
    let names: Vec<String> = PRETRAINED.iter().map(|(architecture, tag, _)| format!("{architecture}:{tag}")).collect();
    names.join(", ")
}

fn access_hint(token_sent: bool) -> &'static str {
    if token_sent {
        "the token in HF_TOKEN does not grant access; accept the model's terms on its Hub page or use \
         another token"
    } else {
        "the repository does not exist, or it is private or gated; if you have access, set HF_TOKEN to \
         a Hugging Face access token"
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> HubError + '_ {
    move |source| HubError::Io { path: path.to_path_buf(), source }
}

/// A model on the Hugging Face Hub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelSpec {
    /// `hf-hub:ORG/REPO`: the repository's `open_clip_config.json` and weights.
    HfHub {
        /// `ORG/REPO`.
        repo: String,
    },
    /// `ARCHITECTURE:TAG` from open_clip's pretrained table.
    Pretrained {
        /// The built-in architecture, e.g. `coca_ViT-B-32`.
        architecture: &'static str,
        /// open_clip's pretrained tag, e.g. `laion2b_s13b_b90k`.
        tag: &'static str,
        /// The Hub repository holding the weights.
        repo: &'static str,
    },
}

impl ModelSpec {
    /// Parses `hf-hub:ORG/REPO` or `ARCHITECTURE:TAG`; returns `Ok(None)` for anything else, such
    /// as a path.
    pub fn parse(spec: &str) -> Result<Option<ModelSpec>, HubError> {
        if let Some(repo) = spec.strip_prefix("hf-hub:") {
            check_repo_id(repo).map_err(|reason| HubError::InvalidSpec { spec: spec.into(), reason })?;
            return Ok(Some(ModelSpec::HfHub { repo: repo.into() }));
        }
        let Some((architecture, tag)) = spec.split_once(':') else {
            return Ok(None);
        };
        // A drive letter (`C:\models`) or a folder (`models/x:y`) makes it a path.
        if architecture.len() <= 1 || architecture.contains(['/', '\\']) {
            return Ok(None);
        }
        // open_clip compares tags in lower case with `-` read as `_` (`_clean_tag`).
        let tag = tag.to_lowercase().replace('-', "_");
        PRETRAINED
            .iter()
            .find(|(a, t, _)| *a == architecture && *t == tag)
            .map(|&(architecture, tag, repo)| Some(ModelSpec::Pretrained { architecture, tag, repo }))
            .ok_or_else(|| HubError::UnknownPretrained { spec: spec.into() })
    }

    /// Returns the Hub repository id, `ORG/REPO`.
    pub fn repo(&self) -> &str {
        match self {
            ModelSpec::HfHub { repo } => repo,
            ModelSpec::Pretrained { repo, .. } => repo,
        }
    }
}

/// Checks a repository id the way the Hub names repositories: `NAME` or `ORG/NAME`, each part made
/// of letters, digits, `-`, `_` and `.`, without `--` or `..`, at most 96 characters.
fn check_repo_id(repo: &str) -> Result<(), String> {
    let example = "expected hf-hub:ORG/REPO, e.g. hf-hub:laion/CoCa-ViT-B-32-laion2B-s13B-b90k";
    if repo.is_empty() || repo.len() > 96 || repo.split('/').count() > 2 {
        return Err(example.into());
    }
    for part in repo.split('/') {
        let allowed = part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        let edges_ok = !part.starts_with(['-', '.']) && !part.ends_with(['-', '.']);
        if part.is_empty() || !allowed || !edges_ok {
            return Err(format!("`{repo}` is not a valid repository id; {example}"));
        }
    }
    if repo.contains("--") || repo.contains("..") {
        return Err(format!("`{repo}` is not a valid repository id: it contains `--` or `..`"));
    }
    Ok(())
}

/// Endpoint, cache folder and network settings of Hub downloads.
#[derive(Clone, Debug)]
pub struct HubOptions {
    /// Base URL of the Hub, without a trailing slash.
    pub endpoint: String,
    /// Folder holding one `models--ORG--REPO` folder per repository.
    pub cache_dir: PathBuf,
    /// Uses only cached files and never the network.
    pub offline: bool,
    /// Access token, sent as `Authorization: Bearer` for private and gated repositories.
    pub token: Option<String>,
    /// Shows a progress bar on standard error while downloading (hidden unless it is a terminal).
    pub progress: bool,
    /// Limit for connecting and for each read from the network; a download may take longer.
    pub timeout: Duration,
    /// Proxy for every request, as `http://[USER:PASSWORD@]HOST[:PORT]`; `None` connects directly.
    pub proxy: Option<String>,
}

impl HubOptions {
    /// Reads the options from the environment variables of Python's `huggingface_hub`.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Builds the options from environment variables read through `var`: `HF_ENDPOINT`,
    /// `HF_HUB_CACHE` (else `HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
    /// `~/.cache/huggingface/hub`), `HF_HUB_OFFLINE` and `HF_TOKEN` (else the token file that
    /// `huggingface-cli login` writes, `HF_TOKEN_PATH` or `HF_HOME/token`) and
    /// `HF_HUB_DOWNLOAD_TIMEOUT` (seconds, default 10 as in `huggingface_hub` 0.36). The proxy
    /// comes from `HTTPS_PROXY` (`HTTP_PROXY` for an `http://` endpoint) or `ALL_PROXY`, unless
    /// `NO_PROXY` lists the endpoint's host or one of its domains.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| var(name).filter(|value| !value.is_empty());
        let home = var("HOME").or_else(|| var("USERPROFILE")).map(PathBuf::from).unwrap_or_default();
        let expand = |value: String| match value.strip_prefix("~/") {
            Some(rest) => home.join(rest),
            None => PathBuf::from(value),
        };
        let hf_home = var("HF_HOME").map(expand).unwrap_or_else(|| {
            var("XDG_CACHE_HOME").map(expand).unwrap_or_else(|| home.join(".cache")).join("huggingface")
        });
        let cache_dir = var("HF_HUB_CACHE").or_else(|| var("HUGGINGFACE_HUB_CACHE")).map(expand);
        let token_file = var("HF_TOKEN_PATH").map(expand).unwrap_or_else(|| hf_home.join("token"));
        let token = var("HF_TOKEN").or_else(|| fs::read_to_string(token_file).ok()).map(|t| t.trim().to_string());
        let offline = var("HF_HUB_OFFLINE").is_some_and(|v| ["1", "ON", "YES", "TRUE"].contains(&v.to_uppercase().as_str()));
        let timeout_s = var("HF_HUB_DOWNLOAD_TIMEOUT").and_then(|v| v.parse::<f64>().ok()).filter(|s| *s > 0.0);
        let endpoint: String = var("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.into()).trim_end_matches('/').into();
        let proxy = proxy_for(&endpoint, &var);
        HubOptions {
            endpoint,
            cache_dir: cache_dir.unwrap_or_else(|| hf_home.join("hub")),
            offline,
            token: token.filter(|t| !t.is_empty()),
            progress: true,
            timeout: Duration::from_secs_f64(timeout_s.unwrap_or(10.0).min(86_400.0)),
            proxy,
        }
    }
}

/// Picks the proxy for `endpoint` from the variables that curl and Python's requests read.
fn proxy_for(endpoint: &str, var: &impl Fn(&str) -> Option<String>) -> Option<String> {
    let scheme_variable = if endpoint.starts_with("http://") { "HTTP_PROXY" } else { "HTTPS_PROXY" };
    let lookup = |name: &str| var(name).or_else(|| var(&name.to_lowercase()));
    let proxy = lookup(scheme_variable).or_else(|| lookup("ALL_PROXY"))?;

    let host_and_port = origin(endpoint).split_once("://").map_or(endpoint, |(_, rest)| rest);
    let host = host_and_port.rsplit_once(':').map_or(host_and_port, |(host, _)| host).to_ascii_lowercase();
    let no_proxy = lookup("NO_PROXY").unwrap_or_default().to_ascii_lowercase();
    let bypassed = no_proxy.split(',').map(|entry| entry.trim().trim_start_matches('.')).any(|entry| {
        entry == "*" || (!entry.is_empty() && (host == entry || host.ends_with(&format!(".{entry}"))))
    });
    (!bypassed).then_some(proxy)
}

/// The source of a model's config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelConfig {
    /// A downloaded `open_clip_config.json`.
    File(PathBuf),
    /// A built-in architecture (`model::config::BUILTIN_CONFIGS`), as open_clip uses for pretrained tags.
    Builtin(&'static str),
}

/// The local files of a Hub model.
#[derive(Clone, Debug)]
pub struct ModelFiles {
    /// The Hub repository, `ORG/REPO`.
    pub repo: String,
    /// `None` when an `hf-hub:` repository has no `open_clip_config.json`.
    pub config: Option<ModelConfig>,
    /// `open_clip_model.safetensors`, else `open_clip_pytorch_model.bin`.
    pub weights: PathBuf,
}

/// The result of a HEAD request for one file of a repository.
enum Remote {
    Found(FileMetadata),
    /// The file does not exist; the commit is known when the repository and branch exist.
    Missing { commit: Option<String> },
}

struct FileMetadata {
    commit: String,
    etag: String,
    size: u64,
}

impl FileMetadata {
    /// Returns the expected sha256, because the Hub's etag of an LFS file is the sha256 of its
    /// content. Other files have the 40-digit git blob id instead.
    fn sha256(&self) -> Option<&str> {
        (self.etag.len() == 64 && self.etag.bytes().all(|b| b.is_ascii_hexdigit())).then_some(self.etag.as_str())
    }
}

/// Downloads files of Hub repositories into the cache.
pub struct Hub {
    options: HubOptions,
    /// Follows no redirect, because the Hub responds to a HEAD for an LFS file with a redirect whose
    /// own headers carry the file's metadata.
    head_agent: ureq::Agent,
    /// Follows redirects to the storage that serves LFS files, dropping the token on other hosts.
    get_agent: ureq::Agent,
}

impl Hub {
    /// Creates the HTTP clients. The only error is an invalid proxy.
    pub fn new(options: HubOptions) -> Result<Self, HubError> {
        let proxy = match &options.proxy {
            Some(proxy) => Some(ureq::Proxy::new(proxy).map_err(|error| HubError::InvalidProxy {
                proxy: proxy.clone(),
                reason: error.to_string(),
            })?),
            None => None,
        };
        let builder = || {
            let builder = ureq::AgentBuilder::new()
                .timeout_connect(options.timeout)
                .timeout_read(options.timeout)
                .timeout_write(options.timeout)
                .user_agent(concat!("coca-wgpu/", env!("CARGO_PKG_VERSION")));
            match &proxy {
                Some(proxy) => builder.proxy(proxy.clone()),
                None => builder,
            }
        };
        Ok(Hub {
            head_agent: builder().redirects(0).build(),
            get_agent: builder().redirects(10).redirect_auth_headers(ureq::RedirectAuthHeaders::SameHost).build(),
            options,
        })
    }

    /// The endpoint, cache and network settings in use.
    pub fn options(&self) -> &HubOptions {
        &self.options
    }

    /// Finds the config and weights of `spec` in the cache, downloading what is missing or outdated.
    pub fn resolve(&self, spec: &ModelSpec) -> Result<ModelFiles, HubError> {
        let repo = spec.repo();
        let config = match spec {
            ModelSpec::Pretrained { architecture, .. } => Some(ModelConfig::Builtin(architecture)),
            ModelSpec::HfHub { .. } => match self.fetch(repo, CONFIG_FILE)? {
                Some(path) => Some(ModelConfig::File(path)),
                // Some released CoCa repositories have no config; open_clip loads them by pretrained name.
                None => PRETRAINED
                    .iter()
                    .find(|(_, _, pretrained_repo)| *pretrained_repo == repo)
                    .map(|(architecture, _, _)| ModelConfig::Builtin(architecture)),
            },
        };
        let weights = match self.fetch(repo, SAFETENSORS_WEIGHTS) {
            Ok(Some(path)) => path,
            Ok(None) => self.fetch(repo, PYTORCH_WEIGHTS)?.ok_or_else(|| HubError::NoWeights { repo: repo.into() })?,
            // Without the Hub, a cached .bin is used, although the cache cannot show whether safetensors exist.
            Err(error @ (HubError::Offline { .. } | HubError::Connection { .. })) => {
                match RepoCache::new(&self.options.cache_dir, repo).lookup(PYTORCH_WEIGHTS) {
                    Cached::File(path) => path,
                    _ => return Err(error),
                }
            }
            Err(error) => return Err(error),
        };
        Ok(ModelFiles { repo: repo.into(), config, weights })
    }

    /// Returns the cached path of `file` on the main branch of `repo`, downloading it unless the
    /// cache has the current version. Returns `Ok(None)` when the repository has no such file, and
    /// a cached version when the Hub cannot be reached.
    pub fn fetch(&self, repo: &str, file: &str) -> Result<Option<PathBuf>, HubError> {
        let cache = RepoCache::new(&self.options.cache_dir, repo);
        if self.options.offline {
            return cache.lookup_or(file, || HubError::Offline {
                repo: repo.into(),
                file: file.into(),
                cache: self.options.cache_dir.clone(),
            });
        }

        let url = self.file_url(repo, REVISION, file);
        let metadata = match self.head(repo, &url) {
            Ok(Remote::Found(metadata)) => metadata,
            Ok(Remote::Missing { commit }) => {
                if let Some(commit) = commit {
                    cache.write_ref(&commit)?;
                    cache.mark_missing(&commit, file);
                }
                return Ok(None);
            }
            Err(error @ HubError::Connection { .. }) => {
                log::warn!("{error}; looking for {file} of {repo} in the cache");
                return cache.lookup_or(file, || error);
            }
            Err(error) => return Err(error),
        };

        cache.write_ref(&metadata.commit)?;
        let pointer = cache.pointer(&metadata.commit, file);
        if pointer.exists() {
            return Ok(Some(pointer));
        }
        let blob = cache.blob(&metadata.etag);
        if !blob.exists() {
            // The commit in the URL pins the version that the HEAD request described.
            self.download(&self.file_url(repo, &metadata.commit, file), &metadata, &blob, file)?;
        }
        cache.link(&blob, &pointer)?;
        Ok(Some(pointer))
    }

    fn file_url(&self, repo: &str, revision: &str, file: &str) -> String {
        format!("{}/{repo}/resolve/{revision}/{file}", self.options.endpoint)
    }

    /// Sends a request and returns the response whatever its status; only transport failures are errors.
    fn call(&self, agent: &ureq::Agent, method: &str, url: &str, range_start: u64) -> Result<ureq::Response, HubError> {
        // Compression would hide the real size of the file.
        let mut request = agent.request(method, url).set("Accept-Encoding", "identity");
        if let Some(token) = &self.options.token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        if range_start > 0 {
            request = request.set("Range", &format!("bytes={range_start}-"));
        }
        match request.call() {
            Ok(response) | Err(ureq::Error::Status(_, response)) => Ok(response),
            Err(ureq::Error::Transport(transport)) => {
                Err(HubError::Connection { url: url.into(), reason: transport_reason(&transport) })
            }
        }
    }

    /// Reads a file's commit, etag and size the way `huggingface_hub` does: from a HEAD request
    /// that follows only relative redirects, preferring the `X-Linked-*` headers of LFS files.
    fn head(&self, repo: &str, url: &str) -> Result<Remote, HubError> {
        let mut url = url.to_string();
        for _ in 0..=MAX_RELATIVE_REDIRECTS {
            let response = self.call(&self.head_agent, "HEAD", &url, 0)?;
            let status = response.status();
            match status {
                300..=399 => match response.header("Location") {
                    Some(location) if location.starts_with('/') => {
                        url = format!("{}{location}", origin(&url));
                        continue;
                    }
                    _ => return file_metadata(&url, &response).map(Remote::Found),
                },
                200..=299 => return file_metadata(&url, &response).map(Remote::Found),
                404 => return missing_file(repo, &url, &response),
                401 | 403 => {
                    return Err(HubError::Unauthorized { url, status, token_sent: self.options.token.is_some() })
                }
                _ => return Err(HubError::Status { url, status }),
            }
        }
        Err(HubError::BadResponse { url, reason: format!("more than {MAX_RELATIVE_REDIRECTS} redirects") })
    }

    /// Downloads `url` into `blob`, resuming `blob.incomplete` if an earlier attempt left one.
    fn download(&self, url: &str, metadata: &FileMetadata, blob: &Path, file: &str) -> Result<(), HubError> {
        let partial = blob.with_file_name(format!("{}.incomplete", metadata.etag));
        let mut done = fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        if done > metadata.size {
            done = 0;
        }
        let mut hasher = metadata.sha256().map(|_| Sha256::new());
        if done < metadata.size || !partial.exists() {
            self.receive(url, metadata, &partial, done, file, hasher.as_mut())?;
        } else if let Some(hasher) = hasher.as_mut() {
            hash_file(&partial, hasher)?;
        }

        // NOTE: unlike huggingface_hub, no lock file guards a download, so two processes fetching
        // the same file at once append to one `.incomplete` file. The checks below reject the result.
        let length = fs::metadata(&partial).map_err(io_error(&partial))?.len();
        if length != metadata.size {
            fs::remove_file(&partial).map_err(io_error(&partial))?;
            let reason = format!("it has {length} bytes instead of {}; another process may be writing it", metadata.size);
            return Err(HubError::Io { path: partial, source: io::Error::other(reason) });
        }
        if let (Some(expected), Some(hasher)) = (metadata.sha256(), hasher) {
            let actual = hex(&hasher.finalize());
            if !actual.eq_ignore_ascii_case(expected) {
                fs::remove_file(&partial).map_err(io_error(&partial))?;
                return Err(HubError::Checksum { url: url.into(), expected: expected.into(), actual });
            }
        }
        fs::rename(&partial, blob).map_err(io_error(blob))
    }

    /// Appends the bytes after `done` to `partial`, or rewrites it when the server ignores the
    /// Range header. The hasher receives every byte of the file, including the resumed part.
    fn receive(
        &self,
        url: &str,
        metadata: &FileMetadata,
        partial: &Path,
        mut done: u64,
        file: &str,
        mut hasher: Option<&mut Sha256>,
    ) -> Result<(), HubError> {
        let response = self.call(&self.get_agent, "GET", url, done)?;
        let status = response.status();
        let resumed = status == 206;
        match status {
            200 => done = 0,
            206 if response.header("Content-Range").is_some_and(|r| r.starts_with(&format!("bytes {done}-"))) => {}
            206 => {
                let reason = format!("a request for the bytes from {done} on returned another range");
                return Err(HubError::BadResponse { url: url.into(), reason });
            }
            401 | 403 => {
                return Err(HubError::Unauthorized { url: url.into(), status, token_sent: self.options.token.is_some() })
            }
            _ => return Err(HubError::Status { url: url.into(), status }),
        }

        if let Some(parent) = partial.parent() {
            fs::create_dir_all(parent).map_err(io_error(parent))?;
        }
        let mut out = OpenOptions::new().create(true).append(true).open(partial).map_err(io_error(partial))?;
        if resumed {
            if let Some(hasher) = hasher.as_deref_mut() {
                hash_file(partial, hasher)?;
            }
        } else {
            out.set_len(0).map_err(io_error(partial))?;
        }

        let bar = self.progress_bar(file, metadata.size, done);
        // Read at most the announced size, so a server that sends more cannot grow the file.
        let mut body = response.into_reader().take(metadata.size - done);
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let count = match body.read(&mut buffer) {
                Ok(0) => break,
                Ok(count) => count,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    if let Some(bar) = &bar {
                        bar.abandon();
                    }
                    out.flush().map_err(io_error(partial))?;
                    return Err(interrupted(url, done, metadata.size, &error.to_string()));
                }
            };
            out.write_all(&buffer[..count]).map_err(io_error(partial))?;
            if let Some(hasher) = hasher.as_deref_mut() {
                hasher.update(&buffer[..count]);
            }
            done += count as u64;
            if let Some(bar) = &bar {
                bar.set_position(done);
            }
        }
        out.sync_all().map_err(io_error(partial))?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        if done < metadata.size {
            return Err(interrupted(url, done, metadata.size, "the connection closed early"));
        }
        Ok(())
    }

    fn progress_bar(&self, file: &str, size: u64, done: u64) -> Option<indicatif::ProgressBar> {
        self.options.progress.then(|| {
            let bar = indicatif::ProgressBar::new(size).with_message(file.to_string()).with_position(done);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}, {eta} left")
                    .expect("valid template"),
            );
            bar
        })
    }
}

/// Formats a transport error without the URL that its `Display` repeats.
fn transport_reason(transport: &ureq::Transport) -> String {
    let mut reason = transport.kind().to_string();
    if let Some(message) = transport.message() {
        reason.push_str(&format!(": {message}"));
    }
    if let Some(source) = std::error::Error::source(transport) {
        reason.push_str(&format!(": {source}"));
    }
    reason
}

fn interrupted(url: &str, done: u64, total: u64, reason: &str) -> HubError {
    HubError::Interrupted { url: url.into(), done, total, reason: reason.into() }
}

/// Builds the metadata of a HEAD response, rejecting values that could escape the cache folder.
fn file_metadata(url: &str, response: &ureq::Response) -> Result<FileMetadata, HubError> {
    let bad = |reason: String| HubError::BadResponse { url: url.into(), reason };
    let commit = response
        .header(HUGGINGFACE_HEADER_X_REPO_COMMIT)
        .ok_or_else(|| bad(format!("no {HUGGINGFACE_HEADER_X_REPO_COMMIT} header")))?;
    let etag = response
        .header("X-Linked-Etag")
        .or_else(|| response.header("ETag"))
        .map(normalize_etag)
        .ok_or_else(|| bad("no ETag header".into()))?;
    let size = response
        .header("X-Linked-Size")
        .or_else(|| response.header("Content-Length"))
        .and_then(|size| size.trim().parse::<u64>().ok())
        .ok_or_else(|| bad("no valid X-Linked-Size or Content-Length header".into()))?;
    for (name, value) in [("commit", commit), ("ETag", etag)] {
        if !is_path_component(value) {
            return Err(bad(format!("the {name} `{value}` is not made of letters, digits, `-` and `_`")));
        }
    }
    Ok(FileMetadata { commit: commit.into(), etag: etag.into(), size })
}

/// Tells a missing file (the repository exists) from a missing repository in a 404 response.
fn missing_file(repo: &str, url: &str, response: &ureq::Response) -> Result<Remote, HubError> {
    match response.header("X-Error-Code") {
        Some("RepoNotFound") => Err(HubError::RepoNotFound { repo: repo.into(), url: url.into() }),
        Some("RevisionNotFound") => Err(HubError::Status { url: url.into(), status: 404 }),
        _ => {
            let commit = response.header(HUGGINGFACE_HEADER_X_REPO_COMMIT).filter(|c| is_path_component(c));
            Ok(Remote::Missing { commit: commit.map(str::to_string) })
        }
    }
}

/// Strips the weak-validator prefix and the quotes of an ETag header value.
fn normalize_etag(etag: &str) -> &str {
    etag.trim().trim_start_matches("W/").trim_matches('"')
}

fn is_path_component(value: &str) -> bool {
    !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let host_start = url.find("://").map_or(0, |i| i + 3);
    match url[host_start..].find('/') {
        Some(i) => &url[..host_start + i],
        None => url,
    }
}

fn hash_file(path: &Path, hasher: &mut Sha256) -> Result<(), HubError> {
    let mut file = File::open(path).map_err(io_error(path))?;
    io::copy(&mut file, hasher).map_err(io_error(path))?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The cache state of one file in the commit that `refs/main` names.
enum Cached {
    File(PathBuf),
    /// A `.no_exist` marker: the repository has no such file.
    Missing,
    Unknown,
}

/// One repository's folder in the Hugging Face cache.
struct RepoCache {
    root: PathBuf,
}

impl RepoCache {
    fn new(cache_dir: &Path, repo: &str) -> Self {
        RepoCache { root: cache_dir.join(format!("models--{}", repo.replace('/', "--"))) }
    }

    fn ref_path(&self) -> PathBuf {
        self.root.join("refs").join(REVISION)
    }

    fn pointer(&self, commit: &str, file: &str) -> PathBuf {
        self.root.join("snapshots").join(commit).join(file)
    }

    fn blob(&self, etag: &str) -> PathBuf {
        self.root.join("blobs").join(etag)
    }

    fn lookup(&self, file: &str) -> Cached {
        let Some(commit) = fs::read_to_string(self.ref_path()).ok().filter(|c| is_path_component(c.trim())) else {
            return Cached::Unknown;
        };
        let commit = commit.trim();
        let pointer = self.pointer(commit, file);
        if pointer.exists() {
            Cached::File(pointer)
        } else if self.root.join(".no_exist").join(commit).join(file).exists() {
            Cached::Missing
        } else {
            Cached::Unknown
        }
    }

    fn lookup_or(&self, file: &str, error: impl FnOnce() -> HubError) -> Result<Option<PathBuf>, HubError> {
        match self.lookup(file) {
            Cached::File(path) => Ok(Some(path)),
            Cached::Missing => Ok(None),
            Cached::Unknown => Err(error()),
        }
    }

    /// Records the commit of the main branch, without a trailing newline as `huggingface_hub` writes it.
    fn write_ref(&self, commit: &str) -> Result<(), HubError> {
        let path = self.ref_path();
        if fs::read_to_string(&path).is_ok_and(|current| current.trim() == commit) {
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_error(parent))?;
        }
        fs::write(&path, commit).map_err(io_error(&path))
    }

    /// Leaves the `.no_exist` marker that lets offline runs know the file does not exist. A
    /// failure only costs a request later, so it is logged and ignored.
    fn mark_missing(&self, commit: &str, file: &str) {
        let marker = self.root.join(".no_exist").join(commit).join(file);
        let created = marker.parent().map_or(Ok(()), fs::create_dir_all).and_then(|()| File::create(&marker).map(drop));
        if let Err(error) = created {
            log::warn!("failed to write {}: {error}", marker.display());
        }
    }

    /// Points `pointer` at `blob` with a relative symlink, or copies the blob where symlinks fail
    /// (Windows without developer mode), which costs the disk space twice.
    fn link(&self, blob: &Path, pointer: &Path) -> Result<(), HubError> {
        let folder = pointer.parent().expect("pointer paths are inside a snapshot folder");
        fs::create_dir_all(folder).map_err(io_error(folder))?;
        // A link left by an earlier download whose blob was deleted.
        if fs::symlink_metadata(pointer).is_ok() {
            fs::remove_file(pointer).map_err(io_error(pointer))?;
        }
        #[cfg(unix)]
        {
            let file_name = blob.file_name().expect("blob paths end in the etag");
            let relative = Path::new("../../blobs").join(file_name);
            if std::os::unix::fs::symlink(&relative, pointer).is_ok() {
                return Ok(());
            }
        }
        fs::copy(blob, pointer).map(drop).map_err(io_error(pointer))
    }
}
