//! OCI distribution (v2) client that resolves tags to digests (feature `registry`).
//!
//! How a tag is resolved:
//!
//! - **index / single manifest** (no platform): `HEAD /v2/<repo>/manifests/<tag>` with `Accept`
//!   listing OCI index, Docker manifest list, OCI manifest and Docker v2 manifest (registries answer
//!   404 for an index tag when `Accept` lacks the index types). The `Docker-Content-Digest` header is
//!   the answer. Without that header, the manifest is fetched with `GET` and hashed.
//! - **platform pin**: `GET` the manifest; it must hash to its `Docker-Content-Digest`; if it is an
//!   index, the digest of the entry matching the platform is the answer; if it is a single
//!   manifest, its config blob is fetched to check the platform.
//! - **exists** (`--verify-digests`): `HEAD /v2/<repo>/manifests/<digest>`: 200 → true, 404 → false.
//!
//! Whenever a body is fetched, its sha256 must equal the `Docker-Content-Digest` header (when the
//! registry sends one), otherwise the answer is a [`ResolveError::Protocol`] error.
//!
//! Transport: HTTPS with certificates verified against the Mozilla roots (rustls + ring); plain
//! HTTP only for registries listed in [`RegistryConfig::insecure_registries`]. Redirects never
//! carry the `Authorization` header and never downgrade to HTTP for secure registries.
//!
//! Authentication: on a `401`, the `WWW-Authenticate` challenge decides: `Basic` sends the
//! registry's credential; `Bearer` fetches a token from the challenge's `realm` (with `service` and
//! `scope`, anonymously or with the credential as basic auth) and retries with it. Tokens are
//! cached per registry and repository for the run. See [`super::auth`] for where credentials come
//! from. Credentials and tokens never appear in errors or `Debug` output.
//!
//! Proxies: `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` are honoured unless
//! [`RegistryConfig::env_proxy`] is false.
//!
//! Robustness: connect and per-request timeouts; retries with exponential backoff on 429, 5xx,
//! connection failures and timeouts, honouring `Retry-After` (seconds, capped); bounded
//! concurrency in [`DigestSource::resolve_all_with_progress`]; each distinct question (registry,
//! repository, tag, platform) is asked once per [`RegistrySource`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::auth::{query_escape, Challenge, Credential, CredentialStore};
use super::reference::{is_sha256_digest, ImageRef};
use super::{DigestSource, Platform, Request, ResolveError};

/// `Accept` for manifest requests: indexes first, then single manifests.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

mod facts;
pub use facts::{FactsQuestion, DEFAULT_PLATFORM};

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Default of [`RegistryConfig::deadline`] (and of `spec.images.registryTimeoutSeconds`).
pub const DEFAULT_DEADLINE_SECONDS: u64 = 30;

/// Settings of a [`RegistrySource`].
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Most requests in flight at once in `resolve_all` (default 16; 1 = one at a time).
    pub concurrency: usize,
    /// Time limit for opening a connection, including TLS (default 10 s).
    pub connect_timeout: Duration,
    /// Time limit for one whole request, body included (default 30 s).
    pub request_timeout: Duration,
    /// One deadline for all of this client's registry traffic, counted from its creation (default
    /// 30 s): no request, retry or backoff goes past it, and the error says so. `None`: no
    /// deadline beyond the per-request limits (reading image facts, where layers take long).
    pub deadline: Option<Duration>,
    /// Extra attempts after a 429, 5xx, connection failure or timeout (default 3).
    pub retries: u32,
    /// First backoff delay; doubled per attempt (default 500 ms).
    pub backoff: Duration,
    /// Longest wait between attempts, also the cap on `Retry-After` (default 10 s).
    pub max_backoff: Duration,
    /// Registries (`host` or `host:port`, as in image references) reached over plain HTTP.
    /// Every other registry is HTTPS with verified certificates.
    pub insecure_registries: Vec<String>,
    /// Where credentials come from (default: environment variables and the Docker config).
    pub credentials: CredentialStore,
    /// Time limit for fetching one layer blob for image facts (default 10 min).
    pub blob_timeout: Duration,
    /// Largest manifest, config blob or token response read, in bytes (default 4 MiB).
    pub max_body_bytes: u64,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Honour `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` and `NO_PROXY` (default true).
    pub env_proxy: bool,
    /// Trust the system's certificate store (or `SSL_CERT_FILE` / `SSL_CERT_DIR` when set) besides
    /// the bundled Mozilla roots, so a registry behind a private CA works (default true).
    pub system_roots: bool,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            concurrency: 16,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            deadline: Some(Duration::from_secs(DEFAULT_DEADLINE_SECONDS)),
            retries: 3,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            insecure_registries: Vec::new(),
            credentials: CredentialStore::from_environment(),
            blob_timeout: Duration::from_secs(600),
            max_body_bytes: 4 << 20,
            user_agent: format!("kube-harden/{}", env!("CARGO_PKG_VERSION")),
            env_proxy: true,
            system_roots: true,
        }
    }
}

/// Cache key: one question to one registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    host: String,
    repository: String,
    reference: String,
    platform: Option<Platform>,
    exists: bool,
}

impl Key {
    fn resolve(image: &ImageRef, platform: Option<&Platform>) -> Key {
        Key {
            host: image.api_host().to_ascii_lowercase(),
            repository: image.repository().to_string(),
            reference: image.effective_tag().to_string(),
            platform: platform.cloned(),
            exists: false,
        }
    }
}

/// An answer as far as this client cares.
struct Reply {
    status: u16,
    digest: Option<String>,
    content_type: Option<String>,
    challenge: Option<String>,
    retry_after: Option<Duration>,
    body: Vec<u8>,
    /// The body as a stream (blob requests for image facts), instead of `body`.
    stream: Option<ureq::BodyReader<'static>>,
}

/// The OCI distribution client. Build one per run: it caches answers and tokens.
pub struct RegistrySource {
    config: RegistryConfig,
    secure: ureq::Agent,
    plain: ureq::Agent,
    cache: Mutex<HashMap<Key, Result<String, ResolveError>>>,
    /// `Authorization` values to send up front, per (host, repository).
    auth_headers: Mutex<HashMap<(String, String), String>>,
    /// Credentials looked up so far, per registry (None = none found).
    credentials: Mutex<HashMap<String, Option<Credential>>>,
    /// Secrets seen in this run, scrubbed from any text that goes into an error.
    secrets: Mutex<Vec<String>>,
    requests: AtomicU64,
    started: std::time::Instant,
}

impl std::fmt::Debug for RegistrySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrySource")
            .field("config", &self.config)
            .field("requests", &self.requests.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl RegistrySource {
    /// A client with these settings.
    pub fn new(config: RegistryConfig) -> Self {
        let agent = |https_only: bool| {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .https_only(https_only)
                .max_redirects(5)
                .redirect_auth_headers(ureq::config::RedirectAuthHeaders::Never)
                .timeout_connect(Some(config.connect_timeout))
                .timeout_global(Some(config.request_timeout))
                .max_idle_connections(config.concurrency.max(1) * 2)
                .max_idle_connections_per_host(config.concurrency.max(1))
                .user_agent(config.user_agent.as_str())
                .proxy(if config.env_proxy {
                    ureq::Proxy::try_from_env()
                } else {
                    None
                })
                .tls_config(
                    ureq::tls::TlsConfig::builder()
                        .root_certs(if config.system_roots {
                            trust_roots()
                        } else {
                            ureq::tls::RootCerts::WebPki
                        })
                        .build(),
                )
                .build()
                .new_agent()
        };
        RegistrySource {
            secure: agent(true),
            plain: agent(false),
            config,
            cache: Mutex::new(HashMap::new()),
            auth_headers: Mutex::new(HashMap::new()),
            credentials: Mutex::new(HashMap::new()),
            secrets: Mutex::new(Vec::new()),
            requests: AtomicU64::new(0),
            started: std::time::Instant::now(),
        }
    }

    /// Time left before the run's deadline (`Duration::MAX` without one).
    fn left(&self) -> Duration {
        match self.config.deadline {
            Some(d) => d.saturating_sub(self.started.elapsed()),
            None => Duration::MAX,
        }
    }

    /// The error for a request the deadline stopped.
    fn past_deadline(&self, image: &ImageRef, host: &str, attempts: u32) -> ResolveError {
        ResolveError::Timeout {
            image: image.to_string(),
            registry: host.to_string(),
            after: self.config.deadline.unwrap_or(self.config.request_timeout),
            attempts,
        }
    }

    /// Waits before retry `attempt`, unless the wait would pass the deadline: then false.
    fn pause(&self, attempt: u32, retry_after: Option<Duration>) -> bool {
        let wait = self.backoff(attempt, retry_after);
        if wait >= self.left() {
            return false;
        }
        std::thread::sleep(wait);
        true
    }

    /// The settings.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// HTTP requests made so far (registry and token service), for tests and statistics.
    pub fn requests_made(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn is_insecure(&self, host: &str) -> bool {
        self.config
            .insecure_registries
            .iter()
            .any(|h| h.trim().eq_ignore_ascii_case(host))
    }

    fn base_url(&self, image: &ImageRef) -> String {
        let host = image.api_host();
        let scheme = if self.is_insecure(host) || self.is_insecure(image.registry()) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{host}/v2/{}", image.repository())
    }

    fn credential(&self, registry: &str) -> Option<Credential> {
        let mut known = self.credentials.lock().unwrap();
        if let Some(c) = known.get(registry) {
            return c.clone();
        }
        let found = self.config.credentials.lookup(registry).map(|(c, _)| c);
        if let Some(c) = &found {
            self.secrets.lock().unwrap().extend(c.secrets());
        }
        known.insert(registry.to_string(), found.clone());
        found
    }

    /// Removes every secret seen in this run from `text`.
    fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.secrets.lock().unwrap().iter() {
            if !s.is_empty() {
                out = out.replace(s.as_str(), "<redacted>");
            }
        }
        out
    }

    /// One HTTP exchange, no retries.
    fn call(
        &self,
        method: &str,
        url: &str,
        accept: Option<&str>,
        authorization: Option<&str>,
        insecure: bool,
        stream: bool,
    ) -> Result<Reply, ureq::Error> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let agent = if insecure { &self.plain } else { &self.secure };
        let mut builder = match method {
            "HEAD" => agent.head(url),
            _ => agent.get(url),
        };
        if stream {
            builder = builder
                .config()
                .timeout_global(Some(self.config.blob_timeout))
                .build();
        } else if self.config.deadline.is_some() {
            let left = self.left();
            builder = builder
                .config()
                .timeout_global(Some(self.config.request_timeout.min(left)))
                .timeout_connect(Some(self.config.connect_timeout.min(left)))
                .build();
        }
        if let Some(a) = accept {
            builder = builder.header("Accept", a);
        }
        if let Some(a) = authorization {
            builder = builder.header("Authorization", a);
        }
        let mut resp = builder.call()?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_string())
        };
        let status = resp.status().as_u16();
        let digest = header("docker-content-digest");
        let content_type = header("content-type");
        let challenge = header("www-authenticate");
        let retry_after = header("retry-after")
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let (body, stream) = if method == "HEAD" || status != 200 {
            (Vec::new(), None)
        } else if stream {
            let reader = resp.into_body().into_with_config().limit(u64::MAX).reader();
            (Vec::new(), Some(reader))
        } else {
            let body = resp
                .body_mut()
                .with_config()
                .limit(self.config.max_body_bytes)
                .read_to_vec()?;
            (body, None)
        };
        Ok(Reply {
            status,
            digest,
            content_type,
            challenge,
            retry_after,
            body,
            stream,
        })
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .config
            .backoff
            .saturating_mul(1u32 << (attempt - 1).min(16));
        let base = retry_after.unwrap_or(exp).min(self.config.max_backoff);
        // Up to 25% jitter so concurrent workers do not retry in lockstep.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        base + base.mul_f64(f64::from(nanos % 1000) / 4000.0)
    }

    /// An exchange with retries and authentication; `path` is relative to `/v2/<repo>/`.
    fn request(&self, image: &ImageRef, method: &str, path: &str) -> Result<Reply, ResolveError> {
        self.exchange(image, method, path, false)
    }

    /// [`Self::request`], with the body left as a stream when `stream`.
    fn exchange(
        &self,
        image: &ImageRef,
        method: &str,
        path: &str,
        stream: bool,
    ) -> Result<Reply, ResolveError> {
        let host = image.api_host().to_string();
        let insecure = self.is_insecure(&host) || self.is_insecure(image.registry());
        let url = format!("{}/{path}", self.base_url(image));
        let auth_key = (host.clone(), image.repository().to_string());
        let mut authorization = self.auth_headers.lock().unwrap().get(&auth_key).cloned();
        let mut challenged = false;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if !stream && self.left().is_zero() {
                return Err(self.past_deadline(image, &host, attempt - 1));
            }
            let result = self.call(
                method,
                &url,
                Some(MANIFEST_ACCEPT),
                authorization.as_deref(),
                insecure,
                stream,
            );
            match result {
                Ok(reply) if reply.status == 401 && !challenged => {
                    challenged = true;
                    attempt -= 1;
                    let header = self.authenticate(image, reply.challenge.as_deref(), insecure)?;
                    self.auth_headers
                        .lock()
                        .unwrap()
                        .insert(auth_key.clone(), header.clone());
                    authorization = Some(header);
                }
                Ok(reply)
                    if (reply.status == 429 || (500..600).contains(&reply.status))
                        && attempt <= self.config.retries
                        && self.pause(attempt, reply.retry_after) => {}
                Ok(reply) => {
                    return match reply.status {
                        200..=299 => Ok(reply),
                        401 | 403 => Err(ResolveError::Unauthorized {
                            image: image.to_string(),
                            registry: host,
                            detail: if authorization.is_some() {
                                format!("HTTP {}: the credentials were refused", reply.status)
                            } else {
                                format!("HTTP {}: no credentials found", reply.status)
                            },
                        }),
                        404 => Err(ResolveError::NotFound {
                            image: image.to_string(),
                            registry: host,
                            detail: String::new(),
                        }),
                        429 | 500..=599 => Err(ResolveError::Network {
                            image: image.to_string(),
                            registry: host,
                            detail: format!("HTTP {} after {attempt} attempt(s)", reply.status),
                        }),
                        s => Err(ResolveError::Protocol {
                            image: image.to_string(),
                            registry: host,
                            detail: format!("HTTP {s} for {method} {path}"),
                        }),
                    };
                }
                Err(e) => {
                    let transient = matches!(
                        e,
                        ureq::Error::Timeout(_)
                            | ureq::Error::Io(_)
                            | ureq::Error::ConnectionFailed
                            | ureq::Error::HostNotFound
                    );
                    if transient && attempt <= self.config.retries && self.pause(attempt, None) {
                        continue;
                    }
                    return Err(self.transport_error(image, &host, e, attempt));
                }
            }
        }
    }

    fn transport_error(
        &self,
        image: &ImageRef,
        host: &str,
        e: ureq::Error,
        attempts: u32,
    ) -> ResolveError {
        let timed_out = match &e {
            ureq::Error::Timeout(_) => true,
            ureq::Error::Io(io) => matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ),
            _ => false,
        };
        if timed_out {
            // Cut short by the run's deadline: say that limit, not the per-request one.
            if self.config.deadline.is_some() && self.left() < Duration::from_millis(100) {
                return self.past_deadline(image, host, attempts);
            }
            return ResolveError::Timeout {
                image: image.to_string(),
                registry: host.to_string(),
                after: self.config.request_timeout,
                attempts,
            };
        }
        let detail = match &e {
            ureq::Error::RequireHttpsOnly(_) => {
                "refusing plain HTTP (list the registry as insecure to allow it)".to_string()
            }
            other => self.scrub(&other.to_string()),
        };
        ResolveError::Network {
            image: image.to_string(),
            registry: host.to_string(),
            detail: format!("{detail} (after {attempts} attempt(s))"),
        }
    }

    /// Answers a 401 challenge: returns the `Authorization` value to retry with.
    fn authenticate(
        &self,
        image: &ImageRef,
        challenge: Option<&str>,
        registry_insecure: bool,
    ) -> Result<String, ResolveError> {
        let host = image.api_host().to_string();
        let unauthorized = |detail: String| ResolveError::Unauthorized {
            image: image.to_string(),
            registry: host.clone(),
            detail,
        };
        let challenge = challenge.and_then(Challenge::parse).ok_or_else(|| {
            unauthorized("HTTP 401 without a usable WWW-Authenticate challenge".into())
        })?;
        let credential = self.credential(image.registry());
        match challenge.scheme.as_str() {
            "basic" => credential.map(|c| c.basic_header()).ok_or_else(|| {
                let (u, p) = CredentialStore::env_var_names(image.registry());
                unauthorized(format!(
                    "the registry wants a user name and password and none were found (docker login, or ${u} and ${p})"
                ))
            }),
            "bearer" => {
                let realm = challenge
                    .params
                    .get("realm")
                    .ok_or_else(|| unauthorized("Bearer challenge without realm".into()))?;
                let realm_insecure = match realm.strip_prefix("http://") {
                    Some(rest) => {
                        let realm_host = rest.split('/').next().unwrap_or("");
                        if !(self.is_insecure(realm_host)
                            || (registry_insecure && realm_host.eq_ignore_ascii_case(&host)))
                        {
                            return Err(unauthorized(format!(
                                "token service {realm_host} is plain HTTP and not listed as insecure"
                            )));
                        }
                        true
                    }
                    None if realm.starts_with("https://") => false,
                    None => return Err(unauthorized("token realm is not an http(s) URL".into())),
                };
                let scope = challenge
                    .params
                    .get("scope")
                    .cloned()
                    .unwrap_or_else(|| format!("repository:{}:pull", image.repository()));
                let mut url = realm.clone();
                let mut sep = if url.contains('?') { '&' } else { '?' };
                if let Some(service) = challenge.params.get("service") {
                    url.push_str(&format!("{sep}service={}", query_escape(service)));
                    sep = '&';
                }
                url.push_str(&format!("{sep}scope={}", query_escape(&scope)));
                let basic = credential.as_ref().map(Credential::basic_header);
                self.fetch_token(image, &url, basic.as_deref(), realm_insecure)
                    .map(|t| format!("Bearer {t}"))
            }
            other => Err(unauthorized(format!(
                "unsupported authentication scheme {other:?}"
            ))),
        }
    }

    fn fetch_token(
        &self,
        image: &ImageRef,
        url: &str,
        basic: Option<&str>,
        insecure: bool,
    ) -> Result<String, ResolveError> {
        let host = image.api_host().to_string();
        let mut attempt = 0u32;
        let reply = loop {
            attempt += 1;
            if self.left().is_zero() {
                return Err(self.past_deadline(image, &host, attempt - 1));
            }
            match self.call("GET", url, Some("application/json"), basic, insecure, false) {
                Ok(r)
                    if (r.status == 429 || (500..600).contains(&r.status))
                        && attempt <= self.config.retries
                        && self.pause(attempt, r.retry_after) => {}
                Ok(r) => break r,
                Err(e) => {
                    let transient = matches!(
                        e,
                        ureq::Error::Timeout(_)
                            | ureq::Error::Io(_)
                            | ureq::Error::ConnectionFailed
                    );
                    if transient && attempt <= self.config.retries && self.pause(attempt, None) {
                        continue;
                    }
                    return Err(self.transport_error(image, &host, e, attempt));
                }
            }
        };
        if reply.status != 200 {
            return Err(ResolveError::Unauthorized {
                image: image.to_string(),
                registry: host,
                detail: format!(
                    "token service answered HTTP {}{}",
                    reply.status,
                    if basic.is_some() {
                        " (credentials refused?)"
                    } else {
                        " (anonymous access refused; credentials needed)"
                    }
                ),
            });
        }
        let v: Value = serde_json::from_slice(&reply.body).map_err(|_| ResolveError::Protocol {
            image: image.to_string(),
            registry: host.clone(),
            detail: "token service answered something that is not JSON".into(),
        })?;
        let token = v
            .get("token")
            .or_else(|| v.get("access_token"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ResolveError::Protocol {
                image: image.to_string(),
                registry: host,
                detail: "token service answered without a token".into(),
            })?;
        self.secrets.lock().unwrap().push(token.to_string());
        Ok(token.to_string())
    }

    /// Checks the body against the header and returns the body's digest.
    fn body_digest(&self, image: &ImageRef, reply: &Reply) -> Result<String, ResolveError> {
        let computed = format!("sha256:{:x}", Sha256::digest(&reply.body));
        if let Some(header) = &reply.digest {
            if header.starts_with("sha256:") && *header != computed {
                return Err(ResolveError::Protocol {
                    image: image.to_string(),
                    registry: image.api_host().to_string(),
                    detail: format!(
                        "manifest body hashes to {computed} but Docker-Content-Digest says {header}"
                    ),
                });
            }
        }
        Ok(computed)
    }

    fn resolve_uncached(
        &self,
        image: &ImageRef,
        platform: Option<&Platform>,
    ) -> Result<String, ResolveError> {
        let path = format!("manifests/{}", image.effective_tag());
        let protocol = |detail: String| ResolveError::Protocol {
            image: image.to_string(),
            registry: image.api_host().to_string(),
            detail,
        };
        let Some(platform) = platform else {
            let head = self.request(image, "HEAD", &path)?;
            if let Some(d) = head.digest.filter(|d| is_sha256_digest(d)) {
                return Ok(d);
            }
            let get = self.request(image, "GET", &path)?;
            return self.body_digest(image, &get);
        };
        let get = self.request(image, "GET", &path)?;
        let manifest_digest = self.body_digest(image, &get)?;
        let doc: Value = serde_json::from_slice(&get.body)
            .map_err(|e| protocol(format!("manifest is not JSON: {e}")))?;
        let media_type = doc
            .get("mediaType")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| {
                get.content_type
                    .as_deref()
                    .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
            })
            .unwrap_or_default();
        let is_index = INDEX_TYPES.contains(&media_type.as_str())
            || (media_type.is_empty() && doc.get("manifests").is_some());
        if is_index {
            let entries = doc
                .get("manifests")
                .and_then(Value::as_array)
                .ok_or_else(|| protocol("index without manifests".into()))?;
            let mut available = Vec::new();
            for e in entries {
                let Some(p) = e.get("platform") else { continue };
                let os = p.get("os").and_then(Value::as_str).unwrap_or("");
                let arch = p.get("architecture").and_then(Value::as_str).unwrap_or("");
                let variant = p.get("variant").and_then(Value::as_str);
                if platform.matches(os, arch, variant) {
                    let d = e.get("digest").and_then(Value::as_str).unwrap_or("");
                    if !is_sha256_digest(d) {
                        return Err(protocol(format!("index entry has an invalid digest {d:?}")));
                    }
                    return Ok(d.to_string());
                }
                available.push(match variant {
                    Some(v) => format!("{os}/{arch}/{v}"),
                    None => format!("{os}/{arch}"),
                });
            }
            return Err(ResolveError::PlatformNotFound {
                image: image.to_string(),
                platform: platform.to_string(),
                available,
            });
        }
        // A single manifest: its config says which platform it is for.
        let config_digest = doc
            .pointer("/config/digest")
            .and_then(Value::as_str)
            .filter(|d| is_sha256_digest(d))
            .ok_or_else(|| protocol("manifest without a sha256 config digest".into()))?
            .to_string();
        let blob = self.request(image, "GET", &format!("blobs/{config_digest}"))?;
        let got = format!("sha256:{:x}", Sha256::digest(&blob.body));
        if got != config_digest {
            return Err(protocol(format!(
                "config blob hashes to {got}, expected {config_digest}"
            )));
        }
        let config: Value = serde_json::from_slice(&blob.body)
            .map_err(|e| protocol(format!("config blob is not JSON: {e}")))?;
        let os = config.get("os").and_then(Value::as_str).unwrap_or("");
        let arch = config
            .get("architecture")
            .and_then(Value::as_str)
            .unwrap_or("");
        let variant = config.get("variant").and_then(Value::as_str);
        if platform.matches(os, arch, variant) {
            Ok(manifest_digest)
        } else {
            Err(ResolveError::PlatformNotFound {
                image: image.to_string(),
                platform: platform.to_string(),
                available: vec![match variant {
                    Some(v) => format!("{os}/{arch}/{v}"),
                    None => format!("{os}/{arch}"),
                }],
            })
        }
    }

    fn cached(
        &self,
        key: Key,
        compute: impl FnOnce() -> Result<String, ResolveError>,
    ) -> Result<String, ResolveError> {
        if let Some(hit) = self.cache.lock().unwrap().get(&key) {
            return hit.clone();
        }
        let result = compute();
        self.cache.lock().unwrap().insert(key, result.clone());
        result
    }
}

impl DigestSource for RegistrySource {
    fn resolve(
        &self,
        image: &ImageRef,
        platform: Option<&Platform>,
    ) -> Result<String, ResolveError> {
        self.cached(Key::resolve(image, platform), || {
            self.resolve_uncached(image, platform)
        })
    }

    fn exists(&self, image: &ImageRef, digest: &str) -> Result<bool, ResolveError> {
        if !is_sha256_digest(digest) {
            return Err(ResolveError::Invalid {
                image: image.to_string(),
                detail: format!("{digest:?} is not a sha256 digest"),
            });
        }
        let key = Key {
            host: image.api_host().to_ascii_lowercase(),
            repository: image.repository().to_string(),
            reference: digest.to_string(),
            platform: None,
            exists: true,
        };
        let answer = self.cached(key, || {
            match self.request(image, "HEAD", &format!("manifests/{digest}")) {
                Ok(reply) => match reply.digest {
                    Some(d) if is_sha256_digest(&d) && d != digest => Err(ResolveError::Protocol {
                        image: image.to_string(),
                        registry: image.api_host().to_string(),
                        detail: format!("asked for {digest}, registry answered {d}"),
                    }),
                    _ => Ok("yes".to_string()),
                },
                Err(ResolveError::NotFound { .. }) => Ok("no".to_string()),
                Err(e) => Err(e),
            }
        })?;
        Ok(answer == "yes")
    }

    /// Resolves with up to [`RegistryConfig::concurrency`] requests in flight, each distinct
    /// (registry, repository, tag, platform) once. `progress(done, total)` counts distinct
    /// questions.
    fn resolve_all_with_progress(
        &self,
        requests: &[Request],
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Vec<Result<String, ResolveError>> {
        let mut unique: Vec<usize> = Vec::new();
        let mut slot_of: HashMap<Key, usize> = HashMap::new();
        let slots: Vec<usize> = requests
            .iter()
            .enumerate()
            .map(|(i, (image, platform))| {
                *slot_of
                    .entry(Key::resolve(image, platform.as_ref()))
                    .or_insert_with(|| {
                        unique.push(i);
                        unique.len() - 1
                    })
            })
            .collect();
        let total = unique.len();
        let answers = fan_out(total, self.config.concurrency, progress, |n| {
            let (image, platform) = &requests[unique[n]];
            self.resolve(image, platform.as_ref())
        });
        slots.into_iter().map(|s| answers[s].clone()).collect()
    }

    /// Asks with up to [`RegistryConfig::concurrency`] requests in flight.
    fn exists_all(
        &self,
        questions: &[(ImageRef, String)],
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Vec<Result<bool, ResolveError>> {
        fan_out(questions.len(), self.config.concurrency, progress, |n| {
            self.exists(&questions[n].0, &questions[n].1)
        })
    }
}

/// The bundled Mozilla roots plus the system's certificate store, read once per process. The
/// system store is what `rustls-native-certs` finds: `SSL_CERT_FILE` / `SSL_CERT_DIR` when set,
/// else the distribution's bundle (`/etc/ssl/certs/ca-certificates.crt` and the like), so a
/// private CA installed the usual way (`update-ca-certificates`) is trusted.
fn trust_roots() -> ureq::tls::RootCerts {
    static ROOTS: std::sync::OnceLock<ureq::tls::RootCerts> = std::sync::OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut certs: Vec<ureq::tls::Certificate<'static>> =
                webpki_root_certs::TLS_SERVER_ROOT_CERTS
                    .iter()
                    .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
                    .collect();
            // Unreadable or malformed system certificates are skipped; the bundled roots stay.
            let native = rustls_native_certs::load_native_certs();
            certs.extend(
                native
                    .certs
                    .iter()
                    .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned()),
            );
            ureq::tls::RootCerts::new_with_certs(&certs)
        })
        .clone()
}

/// Runs `job(0..total)` on up to `workers` threads; results in index order.
fn fan_out<R: Send>(
    total: usize,
    workers: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
    job: impl Fn(usize) -> R + Sync,
) -> Vec<R> {
    let answers: Vec<Mutex<Option<R>>> = (0..total).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let workers = workers.max(1).min(total);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let r = job(n);
                *answers[n].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            });
        }
    });
    answers
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .expect("every slot answered")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_only_when_listed() {
        let src = RegistrySource::new(RegistryConfig {
            insecure_registries: vec!["localhost:5000".into()],
            credentials: CredentialStore::none(),
            ..RegistryConfig::default()
        });
        let local = ImageRef::parse("localhost:5000/a/b:1").unwrap();
        assert_eq!(src.base_url(&local), "http://localhost:5000/v2/a/b");
        let other = ImageRef::parse("localhost:5001/a:1").unwrap();
        assert_eq!(src.base_url(&other), "https://localhost:5001/v2/a");
        let hub = ImageRef::parse("nginx").unwrap();
        assert_eq!(
            src.base_url(&hub),
            "https://registry-1.docker.io/v2/library/nginx"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let src = RegistrySource::new(RegistryConfig {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            credentials: CredentialStore::none(),
            ..RegistryConfig::default()
        });
        let b1 = src.backoff(1, None);
        let b3 = src.backoff(3, None);
        assert!(b1 >= Duration::from_millis(100) && b1 <= Duration::from_millis(125));
        assert!(b3 >= Duration::from_millis(400) && b3 <= Duration::from_millis(500));
        assert!(src.backoff(10, None) <= Duration::from_millis(1250));
        let ra = src.backoff(1, Some(Duration::from_secs(60)));
        assert!(ra <= Duration::from_millis(1250));
    }
}
