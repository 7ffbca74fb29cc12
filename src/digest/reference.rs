//! Container image references (`[registry/]repository[:tag][@digest]`) parsed the way Docker and
//! the OCI distribution reference grammar read them, keeping the user's own spelling.
//!
//! An [`ImageRef`] holds two views of one reference:
//!
//! - **as written** — [`ImageRef::original`], [`ImageRef::written_name`], [`ImageRef::tag`]: exactly
//!   the text from the manifest, so a rule can append `@sha256:…` without rewriting anything the
//!   user chose ([`ImageRef::with_digest`]);
//! - **normalised** — [`ImageRef::registry`], [`ImageRef::repository`], [`ImageRef::reference`],
//!   [`ImageRef::normalized`]: what Docker pulls. Docker Hub names gain `docker.io/` and, for
//!   single-component names, `library/`; `index.docker.io` is `docker.io`; a missing tag is `latest`
//!   ([`ImageRef::tag_is_implicit`]); the API host of Docker Hub is `registry-1.docker.io`
//!   ([`ImageRef::api_host`]).
//!
//! ```
//! use kube_harden::digest::ImageRef;
//! let r = ImageRef::parse("nginx:1.27").unwrap();
//! assert_eq!(r.normalized(), "docker.io/library/nginx:1.27");
//! assert_eq!(r.api_host(), "registry-1.docker.io");
//! let pinned = r.with_digest(&format!("sha256:{}", "a".repeat(64)));
//! assert!(pinned.starts_with("nginx:1.27@sha256:"));
//! ```

use std::fmt;

/// Registry name Docker uses for Docker Hub in normalised references.
pub const DOCKER_HUB: &str = "docker.io";
/// Host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// Tag used when a reference names none.
pub const DEFAULT_TAG: &str = "latest";
/// Longest repository name (registry + path) the reference grammar accepts.
pub const NAME_MAX_LEN: usize = 255;

/// Why a string is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {reference:?}: {reason}")]
pub struct ReferenceError {
    /// The text that was parsed.
    pub reference: String,
    /// What is wrong with it, in words.
    pub reason: String,
}

/// A parsed image reference. Equality and hashing compare the spelling as written; use
/// [`ImageRef::normalized`] to compare what two references pull.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    original: String,
    /// Registry part as written (`None` when the reference has no registry component).
    written_registry: Option<String>,
    /// Repository path as written (without registry).
    written_path: String,
    tag: Option<String>,
    digest: Option<String>,
    /// Normalised registry (`docker.io` for Docker Hub).
    registry: String,
    /// Normalised repository path (`library/nginx`).
    repository: String,
}

impl ImageRef {
    /// Parses a reference such as `nginx`, `nginx:1.27`, `ghcr.io/org/app:v1`,
    /// `localhost:5000/x@sha256:…`. Leading and trailing whitespace is an error, as is an
    /// uppercase repository path (Docker rejects those too).
    pub fn parse(text: &str) -> Result<ImageRef, ReferenceError> {
        let fail = |reason: &str| ReferenceError {
            reference: text.to_string(),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(fail("empty reference"));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(fail("contains whitespace or control characters"));
        }
        let (name_and_tag, digest) = match text.split_once('@') {
            Some((left, right)) => {
                check_digest(right).map_err(|r| fail(&r))?;
                (left, Some(right.to_string()))
            }
            None => (text, None),
        };
        // The tag is after the last ':' that follows the last '/'.
        let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                let tag = &name_and_tag[at + 1..];
                check_tag(tag).map_err(|r| fail(&r))?;
                (&name_and_tag[..at], Some(tag.to_string()))
            }
            None => (name_and_tag, None),
        };
        if name.is_empty() {
            return Err(fail("missing repository name"));
        }
        if name.len() > NAME_MAX_LEN {
            return Err(fail(&format!(
                "repository name longer than {NAME_MAX_LEN} characters"
            )));
        }
        let (written_registry, path) = split_registry(name);
        if let Some(reg) = written_registry {
            check_registry(reg).map_err(|r| fail(&r))?;
        }
        check_path(path).map_err(|r| fail(&r))?;

        let registry = match written_registry {
            None | Some("docker.io") | Some("index.docker.io") => DOCKER_HUB.to_string(),
            Some(other) => other.to_string(),
        };
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        Ok(ImageRef {
            original: text.to_string(),
            written_registry: written_registry.map(str::to_string),
            written_path: path.to_string(),
            tag,
            digest,
            registry,
            repository,
        })
    }

    /// The reference exactly as written.
    pub fn original(&self) -> &str {
        &self.original
    }

    /// The written reference without its `@digest` part (`nginx:1.27` for
    /// `nginx:1.27@sha256:…`).
    pub fn without_digest(&self) -> &str {
        match self.original.find('@') {
            Some(i) => &self.original[..i],
            None => &self.original,
        }
    }

    /// The written name without tag or digest (`nginx`, `ghcr.io/org/app`).
    pub fn written_name(&self) -> String {
        match &self.written_registry {
            Some(r) => format!("{r}/{}", self.written_path),
            None => self.written_path.clone(),
        }
    }

    /// The registry as written, if the reference names one.
    pub fn written_registry(&self) -> Option<&str> {
        self.written_registry.as_deref()
    }

    /// The tag as written; `None` when the reference has no tag.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The tag Docker pulls: the written one or `latest`.
    pub fn effective_tag(&self) -> &str {
        self.tag.as_deref().unwrap_or(DEFAULT_TAG)
    }

    /// True when no tag is written, so `latest` is implied. A reference with only a digest is
    /// not "implicit latest": it pulls the digest.
    pub fn tag_is_implicit(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// The digest (`sha256:…`) if the reference has one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// Normalised registry name: `docker.io` for Docker Hub, otherwise as written
    /// (`ghcr.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host (and port) that serves the registry API: `registry-1.docker.io` for Docker Hub,
    /// otherwise [`ImageRef::registry`].
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }

    /// Normalised repository path (`library/nginx`, `org/app`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// Normalised name without tag or digest (`docker.io/library/nginx`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What the manifest endpoint is asked for: the digest if there is one, else the effective tag.
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .unwrap_or_else(|| self.effective_tag())
    }

    /// Fully normalised reference: `docker.io/library/nginx:latest`, with `@digest` when present
    /// (a digest-only reference has no `:latest`).
    pub fn normalized(&self) -> String {
        let mut out = self.name();
        if let Some(t) = &self.tag {
            out.push(':');
            out.push_str(t);
        } else if self.digest.is_none() {
            out.push(':');
            out.push_str(DEFAULT_TAG);
        }
        if let Some(d) = &self.digest {
            out.push('@');
            out.push_str(d);
        }
        out
    }

    /// Normalised name and effective tag, ignoring any digest (`docker.io/library/nginx:latest`):
    /// the key lock files and caches use for "this tag".
    pub fn normalized_tag(&self) -> String {
        format!("{}:{}", self.name(), self.effective_tag())
    }

    /// The user's spelling with `@digest` appended (replacing a digest already written):
    /// `nginx:1.27` → `nginx:1.27@sha256:…`. The tag stays for readers.
    pub fn with_digest(&self, digest: &str) -> String {
        format!("{}@{}", self.without_digest(), digest)
    }

    /// This reference with its digest removed (same spelling otherwise).
    pub fn tag_only(&self) -> ImageRef {
        let mut r = self.clone();
        r.original = self.without_digest().to_string();
        r.digest = None;
        r
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl std::str::FromStr for ImageRef {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

/// True for `sha256:` followed by 64 lowercase hex digits (the only algorithm kube-harden writes).
pub fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// Docker's rule: the first component is a registry when it contains `.` or `:`, is
/// `localhost`, or has uppercase letters; otherwise the whole name is a Docker Hub path.
fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase())
                || first.starts_with('[') =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn check_registry(reg: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = reg.strip_prefix('[') {
        // IPv6 literal: [addr] or [addr]:port
        let end = rest
            .find(']')
            .ok_or_else(|| format!("registry {reg:?}: unclosed '['"))?;
        let addr = &rest[..end];
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(format!("registry {reg:?}: invalid IPv6 address"));
        }
        let after = &rest[end + 1..];
        match after.strip_prefix(':') {
            Some(p) => (None, Some(p)),
            None if after.is_empty() => (None, None),
            None => return Err(format!("registry {reg:?}: junk after ']'")),
        }
    } else {
        match reg.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(reg), None),
        }
    };
    if let Some(host) = host {
        if host.is_empty() {
            return Err(format!("registry {reg:?}: empty host"));
        }
        for comp in host.split('.') {
            let ok = !comp.is_empty()
                && comp.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !comp.starts_with('-')
                && !comp.ends_with('-');
            if !ok {
                return Err(format!("registry {reg:?}: invalid host component {comp:?}"));
            }
        }
    }
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("registry {reg:?}: port must be digits"));
        }
    }
    Ok(())
}

/// Path components: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, separated by `/`.
fn check_path(path: &str) -> Result<(), String> {
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("repository name must be lowercase".to_string());
    }
    for comp in path.split('/') {
        if comp.is_empty() {
            return Err("empty path component (double or trailing '/')".to_string());
        }
        let b = comp.as_bytes();
        let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return Err(format!(
                "path component {comp:?} must start and end with a letter or digit"
            ));
        }
        let mut i = 0;
        while i < b.len() {
            if alnum(b[i]) {
                i += 1;
                continue;
            }
            // A separator run: '.', '_', '__', or one or more '-'.
            let start = i;
            while i < b.len() && !alnum(b[i]) {
                i += 1;
            }
            let sep = &comp[start..i];
            let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
            if !ok {
                return Err(format!(
                    "path component {comp:?} has invalid separator {sep:?}"
                ));
            }
        }
    }
    Ok(())
}

/// Tags: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn check_tag(tag: &str) -> Result<(), String> {
    let b = tag.as_bytes();
    if b.is_empty() {
        return Err("empty tag after ':'".to_string());
    }
    if b.len() > 128 {
        return Err("tag longer than 128 characters".to_string());
    }
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    if !word(b[0]) || !b.iter().all(|&c| word(c) || c == b'.' || c == b'-') {
        return Err(format!("invalid tag {tag:?}"));
    }
    Ok(())
}

/// Digests: `algorithm:hex`; `sha256` needs 64 lowercase hex digits, `sha512` 128, other
/// algorithms at least 32 hex digits.
fn check_digest(d: &str) -> Result<(), String> {
    let (alg, hex) = d
        .split_once(':')
        .ok_or_else(|| format!("digest {d:?} lacks 'algorithm:'"))?;
    let alg_ok = !alg.is_empty()
        && alg.as_bytes()[0].is_ascii_alphabetic()
        && alg
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'+' | b'.'));
    if !alg_ok {
        return Err(format!("digest {d:?}: invalid algorithm"));
    }
    let lower_hex = hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    let want = match alg {
        "sha256" => Some(64),
        "sha512" => Some(128),
        _ => None,
    };
    match want {
        Some(n) if hex.len() != n || !lower_hex => Err(format!(
            "digest {d:?}: {alg} needs {n} lowercase hex digits"
        )),
        None if hex.len() < 32 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) => {
            Err(format!("digest {d:?}: needs at least 32 hex digits"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn docker_hub_short_names() {
        let r = ImageRef::parse("nginx").unwrap();
        assert_eq!(r.original(), "nginx");
        assert_eq!(r.written_registry(), None);
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.repository(), "library/nginx");
        assert_eq!(r.tag(), None);
        assert_eq!(r.effective_tag(), "latest");
        assert!(r.tag_is_implicit());
        assert_eq!(r.normalized(), "docker.io/library/nginx:latest");
        assert_eq!(r.reference(), "latest");
        assert_eq!(r.with_digest(&d('a')), format!("nginx@{}", d('a')));
    }

    #[test]
    fn docker_hub_spellings_normalise_alike() {
        let want = "docker.io/library/nginx:1.27";
        for s in [
            "nginx:1.27",
            "library/nginx:1.27",
            "docker.io/nginx:1.27",
            "docker.io/library/nginx:1.27",
            "index.docker.io/library/nginx:1.27",
            "index.docker.io/nginx:1.27",
        ] {
            let r = ImageRef::parse(s).unwrap();
            assert_eq!(r.normalized(), want, "{s}");
            assert_eq!(r.api_host(), DOCKER_HUB_API_HOST);
            assert!(!r.tag_is_implicit());
            // The user's spelling survives pinning.
            assert_eq!(r.with_digest(&d('b')), format!("{s}@{}", d('b')));
        }
        let r = ImageRef::parse("bitnami/redis:7").unwrap();
        assert_eq!(r.repository(), "bitnami/redis");
        assert_eq!(r.normalized(), "docker.io/bitnami/redis:7");
    }

    #[test]
    fn other_registries() {
        let r = ImageRef::parse("ghcr.io/a/b:tag").unwrap();
        assert_eq!(r.registry(), "ghcr.io");
        assert_eq!(r.api_host(), "ghcr.io");
        assert_eq!(r.repository(), "a/b");
        assert_eq!(r.tag(), Some("tag"));
        assert_eq!(r.written_name(), "ghcr.io/a/b");

        let r = ImageRef::parse("localhost:5000/x").unwrap();
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.repository(), "x");
        assert_eq!(r.tag(), None);
        assert_eq!(r.normalized(), "localhost:5000/x:latest");

        let r = ImageRef::parse("localhost/x:1").unwrap();
        assert_eq!(r.registry(), "localhost");
        assert_eq!(r.repository(), "x");

        let r = ImageRef::parse("[::1]:5000/x/y:2").unwrap();
        assert_eq!(r.registry(), "[::1]:5000");
        assert_eq!(r.repository(), "x/y");

        let r = ImageRef::parse("127.0.0.1:5000/a_b/c--d/e.f__g:1.0-rc_1").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "a_b/c--d/e.f__g");
        assert_eq!(r.tag(), Some("1.0-rc_1"));
        // Uppercase in the first component makes it a registry.
        let r = ImageRef::parse("Registry/app").unwrap();
        assert_eq!(r.registry(), "Registry");
    }

    #[test]
    fn digests() {
        let s = format!("host:5000/a/b:t@{}", d('c'));
        let r = ImageRef::parse(&s).unwrap();
        assert_eq!(r.registry(), "host:5000");
        assert_eq!(r.repository(), "a/b");
        assert_eq!(r.tag(), Some("t"));
        assert_eq!(r.digest(), Some(d('c').as_str()));
        assert_eq!(r.reference(), d('c'));
        assert_eq!(r.without_digest(), "host:5000/a/b:t");
        assert_eq!(r.normalized(), s);
        assert_eq!(r.normalized_tag(), "host:5000/a/b:t");
        // Re-pinning replaces the digest.
        assert_eq!(
            r.with_digest(&d('e')),
            format!("host:5000/a/b:t@{}", d('e'))
        );
        assert_eq!(r.tag_only().original(), "host:5000/a/b:t");
        assert_eq!(r.tag_only().digest(), None);

        let r = ImageRef::parse(&format!("nginx@{}", d('f'))).unwrap();
        assert_eq!(r.tag(), None);
        assert!(!r.tag_is_implicit());
        assert_eq!(
            r.normalized(),
            format!("docker.io/library/nginx@{}", d('f'))
        );
        assert!(is_sha256_digest(&d('0')));
        assert!(!is_sha256_digest("sha256:abc"));
        assert!(!is_sha256_digest(&d('A')));
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            "",
            "Nginx",
            "nginx:",
            "nginx:-x",
            ":tag",
            "nginx@sha256:abc",
            &format!("nginx@sha256:{}", "A".repeat(64)),
            "nginx@:abc",
            "a//b",
            "a/b/",
            "/a",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "ghcr.io/Org/app",
            "ghcr.io/org/App:v1",
            " nginx",
            "nginx ",
            "ngi nx",
            "host:port/x",
            "ho_st.io/x",
            "-host.io/x",
            "[zz]:5000/x",
            "a:b:c",
            &format!("a:{}", "t".repeat(129)),
            &format!("{}:1", "a".repeat(256)),
        ] {
            let err = ImageRef::parse(bad);
            assert!(err.is_err(), "{bad:?} should be rejected, got {err:?}");
        }
        let e = ImageRef::parse("ghcr.io/Org/app").unwrap_err();
        assert!(e.to_string().contains("lowercase"), "{e}");
        assert!(e.to_string().contains("ghcr.io/Org/app"), "{e}");
    }

    #[test]
    fn max_lengths_accepted() {
        assert!(ImageRef::parse(&format!("a:{}", "t".repeat(128))).is_ok());
        assert!(ImageRef::parse(&"a".repeat(255)).is_ok());
        assert!(ImageRef::parse(&format!("x@sha512:{}", "0".repeat(128))).is_ok());
        assert!(ImageRef::parse(&format!("x@blake3:{}", "0".repeat(64))).is_ok());
    }
}
