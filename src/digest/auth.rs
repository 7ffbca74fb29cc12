//! Registry credentials and `WWW-Authenticate` challenges (feature `registry`).
//!
//! Where credentials come from, first match wins, per registry (normalised name such as
//! `ghcr.io`, `localhost:5000`, `docker.io`):
//!
//! 1. credentials given in code ([`CredentialStore::with`], e.g. from CLI flags);
//! 2. environment variables, when enabled:
//!    - `KUBE_HARDEN_REGISTRY_<HOST>_USERNAME` and `KUBE_HARDEN_REGISTRY_<HOST>_PASSWORD`, where
//!      `<HOST>` is the registry name in uppercase with every other character than `A-Z0-9`
//!      replaced by `_` (`ghcr.io` → `GHCR_IO`, `localhost:5000` → `LOCALHOST_5000`, Docker Hub →
//!      `DOCKER_IO`);
//!    - or `KUBE_HARDEN_REGISTRY_USERNAME` / `KUBE_HARDEN_REGISTRY_PASSWORD` together with
//!      `KUBE_HARDEN_REGISTRY_HOST` naming the one registry they are for (so a password is never
//!      offered to a registry it was not meant for);
//! 3. the Docker client configuration, when enabled: `$DOCKER_CONFIG/config.json`, else
//!    `~/.docker/config.json`: `credHelpers[<registry>]`, then `credsStore`, both run as
//!    `docker-credential-<name> get`, then `auths[<registry>]` (`auth` = base64 `user:password`, or
//!    `username`/`password`). Docker Hub is looked up as `https://index.docker.io/v1/` and its
//!    aliases. Identity tokens (`<token>` user names) are not supported and are skipped.
//!
//! Secrets are held in [`Credential`], whose `Debug` prints neither user name nor password, and
//! they are never put into errors.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine;
use serde_json::Value;

/// A user name and password (or token used as password). `Debug` redacts both.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    username: String,
    secret: String,
}

impl Credential {
    /// A credential from a user name and password.
    pub fn new(username: impl Into<String>, secret: impl Into<String>) -> Self {
        Credential {
            username: username.into(),
            secret: secret.into(),
        }
    }

    /// The `Authorization` header value for HTTP basic auth.
    pub(crate) fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.secret);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// The strings that must never appear in output (password, and the basic header payload).
    pub(crate) fn secrets(&self) -> Vec<String> {
        let mut out = vec![self.basic_header()[6..].to_string()];
        if self.secret.len() >= 4 {
            out.push(self.secret.clone());
        }
        out
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

/// Where a credential was found (for messages: never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialOrigin {
    /// Given in code.
    Explicit,
    /// From an environment variable (its name).
    Environment(String),
    /// From a Docker credential helper (its name).
    Helper(String),
    /// From `auths` in the Docker config file (its path).
    DockerConfig(String),
}

impl std::fmt::Display for CredentialOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialOrigin::Explicit => f.write_str("credentials given on the command line"),
            CredentialOrigin::Environment(v) => write!(f, "credentials from ${v}"),
            CredentialOrigin::Helper(h) => write!(f, "credentials from docker-credential-{h}"),
            CredentialOrigin::DockerConfig(p) => write!(f, "credentials from {p}"),
        }
    }
}

type EnvFn = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Finds credentials for a registry. Cheap to build; looks things up only when asked.
#[derive(Clone)]
pub struct CredentialStore {
    explicit: Vec<(String, Credential)>,
    env: Option<std::sync::Arc<EnvFn>>,
    docker_config: DockerConfigLocation,
    helper_dir: Option<PathBuf>,
    helper_timeout: std::time::Duration,
}

#[derive(Clone, Debug)]
enum DockerConfigLocation {
    Off,
    Default,
    Dir(PathBuf),
}

impl std::fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialStore")
            .field(
                "explicit_registries",
                &self.explicit.iter().map(|(h, _)| h).collect::<Vec<_>>(),
            )
            .field("environment", &self.env.is_some())
            .field("docker_config", &self.docker_config)
            .field("helper_dir", &self.helper_dir)
            .finish()
    }
}

impl Default for CredentialStore {
    /// Same as [`CredentialStore::from_environment`].
    fn default() -> Self {
        CredentialStore::from_environment()
    }
}

impl CredentialStore {
    /// No credentials at all (anonymous access only).
    pub fn none() -> Self {
        CredentialStore {
            explicit: Vec::new(),
            env: None,
            docker_config: DockerConfigLocation::Off,
            helper_dir: None,
            helper_timeout: HELPER_TIMEOUT,
        }
    }

    /// Environment variables and the default Docker config (`$DOCKER_CONFIG` or
    /// `~/.docker/config.json`).
    pub fn from_environment() -> Self {
        CredentialStore {
            explicit: Vec::new(),
            env: Some(std::sync::Arc::new(|k: &str| std::env::var(k).ok())),
            docker_config: DockerConfigLocation::Default,
            helper_dir: None,
            helper_timeout: HELPER_TIMEOUT,
        }
    }

    /// Adds a credential for `registry` (normalised name: `ghcr.io`, `localhost:5000`,
    /// `docker.io`), checked before any other source.
    pub fn with(mut self, registry: &str, credential: Credential) -> Self {
        self.explicit
            .push((registry.to_ascii_lowercase(), credential));
        self
    }

    /// Reads variables through `lookup` instead of the process environment (`None` turns
    /// environment credentials off).
    pub fn with_env_lookup(
        mut self,
        lookup: Option<impl Fn(&str) -> Option<String> + Send + Sync + 'static>,
    ) -> Self {
        self.env = lookup.map(|f| std::sync::Arc::new(f) as std::sync::Arc<EnvFn>);
        self
    }

    /// Uses `dir/config.json` as the Docker config (`None` turns Docker config lookups off).
    pub fn with_docker_config_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.docker_config = match dir {
            Some(d) => DockerConfigLocation::Dir(d),
            None => DockerConfigLocation::Off,
        };
        self
    }

    /// Runs `docker-credential-<name>` helpers from `dir` instead of searching `PATH`
    /// (`None`: search `PATH`, the default).
    pub fn with_helper_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.helper_dir = dir;
        self
    }

    /// How long a credential helper may take before it is killed and the registry is asked
    /// without a credential (default [`HELPER_TIMEOUT`]).
    pub fn with_helper_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.helper_timeout = timeout;
        self
    }

    /// The environment variable names checked for `registry`'s user name and password.
    pub fn env_var_names(registry: &str) -> (String, String) {
        let host: String = registry
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        (
            format!("KUBE_HARDEN_REGISTRY_{host}_USERNAME"),
            format!("KUBE_HARDEN_REGISTRY_{host}_PASSWORD"),
        )
    }

    /// Finds a credential for `registry` (normalised name), with where it came from.
    pub fn lookup(&self, registry: &str) -> Option<(Credential, CredentialOrigin)> {
        let registry = registry.to_ascii_lowercase();
        if let Some((_, c)) = self.explicit.iter().find(|(h, _)| *h == registry) {
            return Some((c.clone(), CredentialOrigin::Explicit));
        }
        if let Some(env) = &self.env {
            let (u, p) = Self::env_var_names(&registry);
            if let (Some(user), Some(pass)) = (env(&u), env(&p)) {
                return Some((
                    Credential::new(user, pass),
                    CredentialOrigin::Environment(p),
                ));
            }
            let host_matches = env("KUBE_HARDEN_REGISTRY_HOST")
                .is_some_and(|h| normalise_config_key(&h) == registry);
            if host_matches {
                if let (Some(user), Some(pass)) = (
                    env("KUBE_HARDEN_REGISTRY_USERNAME"),
                    env("KUBE_HARDEN_REGISTRY_PASSWORD"),
                ) {
                    return Some((
                        Credential::new(user, pass),
                        CredentialOrigin::Environment("KUBE_HARDEN_REGISTRY_PASSWORD".into()),
                    ));
                }
            }
        }
        let path = match &self.docker_config {
            DockerConfigLocation::Off => return None,
            DockerConfigLocation::Dir(d) => d.join("config.json"),
            DockerConfigLocation::Default => default_docker_config()?,
        };
        let text = std::fs::read_to_string(&path).ok()?;
        let config: Value = serde_json::from_str(&text).ok()?;
        docker_config_lookup(
            &config,
            &registry,
            &path.display().to_string(),
            self.helper_dir.as_deref(),
            self.helper_timeout,
        )
    }
}

fn default_docker_config() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    let home = std::env::var_os("HOME")?;
    Some(PathBuf::from(home).join(".docker").join("config.json"))
}

/// The names Docker may have used as a config key for `registry`.
fn config_keys(registry: &str) -> Vec<String> {
    if registry == super::DOCKER_HUB {
        vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
            "registry-1.docker.io".into(),
        ]
    } else {
        vec![registry.to_string()]
    }
}

/// `https://ghcr.io/v1/` → `ghcr.io`; Docker Hub aliases → `docker.io`.
fn normalise_config_key(key: &str) -> String {
    let k = key.trim().to_ascii_lowercase();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(&k);
    let host = k.split('/').next().unwrap_or("");
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => super::DOCKER_HUB.to_string(),
        other => other.to_string(),
    }
}

fn docker_config_lookup(
    config: &Value,
    registry: &str,
    path: &str,
    helper_dir: Option<&std::path::Path>,
    timeout: std::time::Duration,
) -> Option<(Credential, CredentialOrigin)> {
    let keys = config_keys(registry);
    let find_in = |section: &str| -> Option<&Value> {
        let map = config.get(section)?.as_object()?;
        map.iter()
            .find(|(k, _)| keys.iter().any(|want| *k == want))
            .or_else(|| {
                map.iter()
                    .find(|(k, _)| normalise_config_key(k) == registry)
            })
            .map(|(_, v)| v)
    };
    if let Some(helper) = find_in("credHelpers").and_then(Value::as_str) {
        if let Some(c) = run_helper(helper, &keys[0], helper_dir, timeout) {
            return Some((c, CredentialOrigin::Helper(helper.to_string())));
        }
    }
    if let Some(store) = config.get("credsStore").and_then(Value::as_str) {
        if let Some(c) = run_helper(store, &keys[0], helper_dir, timeout) {
            return Some((c, CredentialOrigin::Helper(store.to_string())));
        }
    }
    let entry = find_in("auths")?;
    let origin = CredentialOrigin::DockerConfig(path.to_string());
    if let Some(auth) = entry.get("auth").and_then(Value::as_str) {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (user, pass) = raw.split_once(':')?;
        return Some((Credential::new(user, pass), origin));
    }
    let user = entry.get("username").and_then(Value::as_str)?;
    let pass = entry.get("password").and_then(Value::as_str)?;
    Some((Credential::new(user, pass), origin))
}

/// Runs `docker-credential-<helper> get` with the server URL on stdin. Any failure (helper
/// missing, "credentials not found", bad output) counts as "no credential"; its output is never
/// echoed.
/// How long a credential helper may take to answer.
pub const HELPER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn run_helper(
    helper: &str,
    server: &str,
    dir: Option<&std::path::Path>,
    timeout: std::time::Duration,
) -> Option<Credential> {
    if helper.is_empty()
        || !helper
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return None;
    }
    let program = format!("docker-credential-{helper}");
    let program = match dir {
        Some(d) => d.join(program),
        None => PathBuf::from(program),
    };
    let mut child = Command::new(program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    // A helper that never answers (a locked keychain waiting for a prompt) must not hang the
    // run: its answer is read on a thread, and after HELPER_TIMEOUT it is killed and the registry
    // is asked without a credential.
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ =
            std::io::Read::read_to_end(&mut std::io::Read::take(&mut stdout, 1 << 20), &mut buf);
        buf
    });
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading closes the pipe: not an error by itself.
        let _ = stdin.write_all(server.as_bytes());
    }
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    };
    let out = reader.join().ok()?;
    if !status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out).ok()?;
    let user = v.get("Username").and_then(Value::as_str)?;
    let secret = v.get("Secret").and_then(Value::as_str)?;
    if user == "<token>" || secret.is_empty() {
        return None;
    }
    Some(Credential::new(user, secret))
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `basic` or `bearer` (lowercase).
    pub scheme: String,
    /// Parameters (`realm`, `service`, `scope`, …), keys lowercase.
    pub params: HashMap<String, String>,
}

impl Challenge {
    /// Parses the first challenge of a `WWW-Authenticate` value: `Bearer realm="…",service="…"`.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = match header.find(|c: char| c.is_ascii_whitespace()) {
            Some(i) => (&header[..i], header[i..].trim_start()),
            None => (header, ""),
        };
        if scheme.is_empty() {
            return None;
        }
        let mut params = HashMap::new();
        let bytes = rest.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            while i < bytes.len() && (bytes[i] == b',' || bytes[i].is_ascii_whitespace()) {
                i += 1;
            }
            let key_start = i;
            while i < bytes.len() && bytes[i] != b'=' && bytes[i] != b',' {
                i += 1;
            }
            let key = rest[key_start..i].trim().to_ascii_lowercase();
            if i >= bytes.len() || bytes[i] != b'=' {
                // A token without '=' starts the next challenge: stop at the first one.
                break;
            }
            i += 1;
            let mut value = String::new();
            if i < bytes.len() && bytes[i] == b'"' {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' && i + 1 < bytes.len() {
                        i += 1;
                    }
                    let ch = rest[i..].chars().next()?;
                    value.push(ch);
                    i += ch.len_utf8();
                }
                i += 1;
            } else {
                let start = i;
                while i < bytes.len() && bytes[i] != b',' {
                    i += 1;
                }
                value = rest[start..i].trim().to_string();
            }
            if !key.is_empty() {
                params.insert(key, value);
            }
        }
        Some(Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params,
        })
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.docker.io/token");
        assert_eq!(c.params["service"], "registry.docker.io");
        assert_eq!(c.params["scope"], "repository:library/nginx:pull");
        let c = Challenge::parse(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.params["realm"], "Registry Realm");
        let c = Challenge::parse(r#"Bearer realm=x, error="a\"b""#).unwrap();
        assert_eq!(c.params["realm"], "x");
        assert_eq!(c.params["error"], "a\"b");
        assert!(Challenge::parse("").is_none());
    }

    #[test]
    fn env_names_and_lookup() {
        assert_eq!(
            CredentialStore::env_var_names("localhost:5000").0,
            "KUBE_HARDEN_REGISTRY_LOCALHOST_5000_USERNAME"
        );
        assert_eq!(
            CredentialStore::env_var_names("ghcr.io").1,
            "KUBE_HARDEN_REGISTRY_GHCR_IO_PASSWORD"
        );
        let vars: HashMap<String, String> = [
            ("KUBE_HARDEN_REGISTRY_GHCR_IO_USERNAME", "u1"),
            ("KUBE_HARDEN_REGISTRY_GHCR_IO_PASSWORD", "p1"),
            ("KUBE_HARDEN_REGISTRY_HOST", "https://quay.io/"),
            ("KUBE_HARDEN_REGISTRY_USERNAME", "u2"),
            ("KUBE_HARDEN_REGISTRY_PASSWORD", "p2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let store = CredentialStore::none()
            .with_env_lookup(Some(move |k: &str| vars.get(k).cloned()))
            .with("example.com", Credential::new("e", "x"));
        assert_eq!(
            store.lookup("ghcr.io").unwrap().0,
            Credential::new("u1", "p1")
        );
        assert_eq!(
            store.lookup("quay.io").unwrap().0,
            Credential::new("u2", "p2")
        );
        assert_eq!(
            store.lookup("example.com").unwrap().1,
            CredentialOrigin::Explicit
        );
        // The generic pair is only for the named host.
        assert!(store.lookup("docker.io").is_none());
        assert_eq!(
            format!("{:?}", Credential::new("user", "hunter2")),
            "Credential(<redacted>)"
        );
    }

    #[test]
    fn docker_config_auths() {
        let dir = std::env::temp_dir().join(format!("kh-dockercfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret:with:colons");
        std::fs::write(
            dir.join("config.json"),
            format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"https://reg.example:5000":{{"username":"bob","password":"pw"}}}},
                   "credHelpers":{{"helper.example":"kube-harden-test-missing-helper"}}}}"#
            ),
        )
        .unwrap();
        let store = CredentialStore::none().with_docker_config_dir(Some(dir.clone()));
        let (c, origin) = store.lookup("docker.io").unwrap();
        assert_eq!(c, Credential::new("alice", "s3cret:with:colons"));
        assert!(matches!(origin, CredentialOrigin::DockerConfig(_)));
        assert_eq!(
            store.lookup("reg.example:5000").unwrap().0,
            Credential::new("bob", "pw")
        );
        // A helper that is not installed means no credential, not an error.
        assert!(store.lookup("helper.example").is_none());
        assert!(store.lookup("other.example").is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_helper_that_never_answers_times_out() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("kh-hanghelper-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let helper = dir.join("docker-credential-hang");
        std::fs::write(&helper, "#!/bin/sh\nexec sleep 600\n").unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("config.json"), r#"{"credsStore":"hang"}"#).unwrap();
        let store = CredentialStore::none()
            .with_docker_config_dir(Some(dir.clone()))
            .with_helper_dir(Some(dir.clone()))
            .with_helper_timeout(std::time::Duration::from_millis(300));
        let start = std::time::Instant::now();
        assert!(store.lookup("reg.example").is_none());
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn escapes_queries() {
        assert_eq!(
            query_escape("repository:a/b:pull"),
            "repository%3Aa%2Fb%3Apull"
        );
    }
}
