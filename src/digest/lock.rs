//! The image lock file: a YAML document of kind `ImageLock` that records the digest of every
//! image tag, so pinning works offline, in WASM, and reproducibly in CI.
//!
//! ```yaml
//! # Image digests for kube-harden's pin-image-digests rule.
//! # Written by `kube-harden lock`; entries are sorted, one per image tag and platform.
//! apiVersion: kube-harden.dev/v1alpha1
//! kind: ImageLock
//! images:
//! - image: "nginx:1.27"               # the tag as written in the manifests (no @digest)
//!   digest: "sha256:…"                # the index (or single manifest) digest
//! - image: "nginx:1.27"
//!   platform: linux/arm64             # optional: the digest of that platform's manifest
//!   digest: "sha256:…"
//! ```
//!
//! Rules of the format:
//!
//! - `apiVersion` must be `kube-harden.dev/v1alpha1` and `kind` must be `ImageLock`;
//! - every entry has `image` (a tag reference without digest) and `digest` (`sha256:` and 64
//!   lowercase hex digits), optionally `platform` (`os/arch[/variant]`); other keys are errors,
//!   so typos do not silently drop entries;
//! - version 2 (`kube-harden.dev/v1alpha2`, written whenever an entry carries facts) adds an
//!   optional `facts` mapping per entry ([`crate::facts::ImageFacts`]: the image's user, ports,
//!   volumes, healthcheck, command and filesystem facts); version 1 files still load, and a lock
//!   without facts is still written as version 1, byte for byte as before;
//! - two entries for the same normalised image (`nginx:1.27` and `docker.io/library/nginx:1.27`
//!   are the same) and platform must agree on the digest;
//! - entries are written sorted by normalised name, tag, platform, so updates give small diffs.
//!
//! Lookups ([`ImageLock::get`]) match the spelling as written first, then the normalised name,
//! so a lock written from `nginx:1.27` also serves `docker.io/library/nginx:1.27`.
//!
//! This module does no network I/O and builds for WASM.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::reference::{is_sha256_digest, ImageRef};
use super::{DigestSource, Platform, ResolveError};
use crate::facts::ImageFacts;
use crate::yaml::{emit, split, tree};

/// `apiVersion` of lock files without image facts (version 1).
pub const LOCK_API_VERSION: &str = "kube-harden.dev/v1alpha1";
/// `apiVersion` of lock files whose entries carry image facts (version 2).
pub const LOCK_API_VERSION_FACTS: &str = "kube-harden.dev/v1alpha2";
/// `kind` of lock files.
pub const LOCK_KIND: &str = "ImageLock";

const HEADER: &str = "# Image digests for kube-harden's pin-image-digests rule.\n\
# Written by `kube-harden lock`; entries are sorted, one per image tag and platform.\n";

/// Why a lock file cannot be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// The file could not be read or written.
    #[error("lock file {path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// The operating system's message.
        message: String,
    },
    /// Not valid YAML.
    #[error("lock file: line {line}, column {col}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// What is wrong.
        message: String,
    },
    /// Valid YAML but not an `ImageLock` (wrong kind, apiVersion, shape).
    #[error("lock file: {0}")]
    Document(String),
    /// One entry is wrong; `index` is 0-based in `images`.
    #[error("lock file: images[{index}] ({image}): {reason}")]
    Entry {
        /// 0-based position in `images`.
        index: usize,
        /// The entry's `image`, or `?` when missing.
        image: String,
        /// What is wrong.
        reason: String,
    },
}

/// One lock entry: an image tag (as written), an optional platform, and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockEntry {
    /// The image, tag only (no digest), in the spelling first recorded.
    pub image: ImageRef,
    /// The platform whose manifest `digest` names, or `None` for the index digest.
    pub platform: Option<Platform>,
    /// `sha256:<64 hex>`.
    pub digest: String,
    /// What is known about the image behind `digest` (version 2 locks), `None` when nothing is.
    pub facts: Option<Arc<ImageFacts>>,
}

impl LockEntry {
    /// An entry from its written parts, checked the same wherever entries come from (a lock
    /// file, the policy's `spec.images.digests`): `image` a reference without digest, `digest`
    /// sha256, `platform` `os/arch[/variant]`. An error names the field at fault.
    pub(crate) fn from_parts(
        image: &str,
        platform: Option<&str>,
        digest: &str,
    ) -> Result<LockEntry, (&'static str, String)> {
        let image = ImageRef::parse(image).map_err(|e| ("image", e.to_string()))?;
        if image.digest().is_some() {
            return Err((
                "image",
                "image must be a tag without @digest; put the digest in `digest`".into(),
            ));
        }
        if !is_sha256_digest(digest) {
            return Err((
                "digest",
                format!("digest {digest:?} is not sha256: followed by 64 lowercase hex digits"),
            ));
        }
        let platform = platform
            .map(Platform::parse)
            .transpose()
            .map_err(|e| ("platform", e))?;
        Ok(LockEntry {
            image,
            platform,
            digest: digest.to_string(),
            facts: None,
        })
    }

    fn sort_key(&self) -> EntryKey {
        entry_key(&self.image, self.platform.as_ref())
    }
}

/// Repository, tag and platform: see [`entry_key`].
type EntryKey = (String, String, String);

/// The identity of a lock entry, by which entries are sorted and looked up: repository, tag
/// (`latest` when none) and platform.
fn entry_key(image: &ImageRef, platform: Option<&Platform>) -> EntryKey {
    (
        image.name(),
        image.effective_tag().to_string(),
        platform.map(Platform::to_string).unwrap_or_default(),
    )
}

/// An image lock: the parsed `kind: ImageLock` document. Entries are kept sorted and unique per
/// normalised image tag and platform.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageLock {
    entries: Vec<LockEntry>,
}

impl ImageLock {
    /// An empty lock.
    pub fn new() -> Self {
        ImageLock::default()
    }

    /// Parses lock file text. Errors name the offending entry.
    pub fn from_yaml_str(text: &str) -> Result<ImageLock, LockError> {
        let segments: Vec<_> = split::split_documents(text)
            .into_iter()
            .filter(|s| !s.is_blank())
            .collect();
        let segment = match segments.as_slice() {
            [] => return Err(LockError::Document("empty file".into())),
            [one] => one,
            _ => {
                return Err(LockError::Document(
                    "expected one YAML document, found several".into(),
                ))
            }
        };
        let doc = tree::parse_document(segment.text).map_err(|e| LockError::Syntax {
            line: e.line + segment.first_line - 1,
            col: e.col,
            message: e.message,
        })?;
        let root = doc.root.map(|r| r.to_value()).unwrap_or(Value::Null);
        let map = root
            .as_object()
            .ok_or_else(|| LockError::Document("expected a mapping at the top".into()))?;
        let field = |k: &str| map.get(k).and_then(Value::as_str).unwrap_or("");
        if field("kind") != LOCK_KIND {
            return Err(LockError::Document(format!(
                "kind must be {LOCK_KIND}, found {:?}",
                field("kind")
            )));
        }
        let with_facts = match field("apiVersion") {
            LOCK_API_VERSION => false,
            LOCK_API_VERSION_FACTS => true,
            other => {
                return Err(LockError::Document(format!(
                    "apiVersion must be {LOCK_API_VERSION} or {LOCK_API_VERSION_FACTS}, found {other:?}"
                )))
            }
        };
        for key in map.keys() {
            if !matches!(key.as_str(), "apiVersion" | "kind" | "images" | "metadata") {
                return Err(LockError::Document(format!(
                    "unknown top-level key {key:?}"
                )));
            }
        }
        let items = match map.get("images") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(items)) => items.as_slice(),
            Some(_) => return Err(LockError::Document("images must be a list".into())),
        };
        // Sort once (stable: among entries for the same image the first comes first), then keep
        // one entry per key, refusing two that disagree.
        // A lock kube-harden wrote is in order already: then the check is all the sorting.
        let mut parsed: Vec<(EntryKey, usize, LockEntry)> = items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                parse_entry(index, item, with_facts).map(|e| (e.sort_key(), index, e))
            })
            .collect::<Result<_, _>>()?;
        if !parsed.is_sorted_by(|a, b| a.0 <= b.0) {
            parsed.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let mut lock = ImageLock::new();
        lock.entries.reserve_exact(parsed.len());
        let mut last_key = None;
        for (key, index, entry) in parsed {
            if last_key.as_ref() == Some(&key) {
                let prev = lock.entries.last().expect("an entry with this key");
                if prev.digest != entry.digest || prev.facts != entry.facts {
                    return Err(LockError::Entry {
                        index,
                        image: entry.image.to_string(),
                        reason: format!(
                            "conflicts with entry {} for the same image{}: {} vs {} (or different facts)",
                            prev.image,
                            entry
                                .platform
                                .as_ref()
                                .map(|p| format!(" and platform {p}"))
                                .unwrap_or_default(),
                            prev.digest,
                            entry.digest
                        ),
                    });
                }
                continue;
            }
            last_key = Some(key);
            lock.entries.push(entry);
        }
        Ok(lock)
    }

    /// Reads and parses a lock file.
    pub fn load(path: &Path) -> Result<ImageLock, LockError> {
        let text = std::fs::read_to_string(path).map_err(|e| LockError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        ImageLock::from_yaml_str(&text).map_err(|e| match e {
            LockError::Syntax { line, col, message } => LockError::Document(format!(
                "{}: line {line}, column {col}: {message}",
                path.display()
            )),
            LockError::Document(m) => LockError::Document(format!("{}: {m}", path.display())),
            LockError::Entry {
                index,
                image,
                reason,
            } => LockError::Entry {
                index,
                image,
                reason: format!("{reason} (in {})", path.display()),
            },
            other => other,
        })
    }

    /// The lock as YAML text: a short header comment, then the document with entries sorted.
    /// Writing the same lock twice gives the same bytes.
    pub fn to_yaml_string(&self) -> String {
        let mut root = Map::new();
        let version = if self.entries.iter().any(|e| e.facts.is_some()) {
            LOCK_API_VERSION_FACTS
        } else {
            LOCK_API_VERSION
        };
        root.insert("apiVersion".into(), Value::from(version));
        root.insert("kind".into(), Value::from(LOCK_KIND));
        let images: Vec<Value> = self
            .entries
            .iter()
            .map(|e| {
                let mut m = Map::new();
                m.insert("image".into(), Value::from(e.image.original()));
                if let Some(p) = &e.platform {
                    m.insert("platform".into(), Value::from(p.to_string()));
                }
                m.insert("digest".into(), Value::from(e.digest.as_str()));
                if let Some(f) = &e.facts {
                    m.insert(
                        "facts".into(),
                        serde_json::to_value(f.as_ref()).expect("facts serialize"),
                    );
                }
                Value::Object(m)
            })
            .collect();
        root.insert("images".into(), Value::Array(images));
        let mut out = String::from(HEADER);
        out.push_str(&emit::document(
            &Value::Object(root),
            &emit::Layout::default(),
        ));
        out
    }

    /// Writes the lock to `path` (through a temporary file in the same directory, then a rename,
    /// so readers never see half a file).
    pub fn save(&self, path: &Path) -> Result<(), LockError> {
        let io = |e: std::io::Error| LockError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "lock".into());
        let tmp = path.with_file_name(format!(".{file_name}.tmp{}", std::process::id()));
        std::fs::write(&tmp, self.to_yaml_string()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
    }

    /// All entries, sorted.
    pub fn entries(&self) -> &[LockEntry] {
        &self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry for `image`'s tag (any digest in `image` is ignored) and `platform`: an entry
    /// with the same spelling if there is one, else one with the same normalised name and tag.
    pub fn get(&self, image: &ImageRef, platform: Option<&Platform>) -> Option<&LockEntry> {
        let spelled = image.without_digest();
        self.entries
            .iter()
            .find(|e| e.platform.as_ref() == platform && e.image.original() == spelled)
            .or_else(|| self.get_exact_key(image, platform))
    }

    /// The digest recorded for `image`'s tag and `platform`.
    pub fn digest(&self, image: &ImageRef, platform: Option<&Platform>) -> Option<&str> {
        self.get(image, platform).map(|e| e.digest.as_str())
    }

    /// Records `digest` for `image`'s tag and `platform`, replacing the digest of an existing
    /// entry for the same normalised image (whose spelling is kept, for small diffs). Returns
    /// the previous digest if there was one. Panics if `digest` is not `sha256:<64 hex>`.
    pub fn set(
        &mut self,
        image: &ImageRef,
        platform: Option<&Platform>,
        digest: &str,
    ) -> Option<String> {
        assert!(
            is_sha256_digest(digest),
            "ImageLock::set: not a sha256 digest"
        );
        match self.position(image, platform) {
            Ok(i) => {
                let entry = &mut self.entries[i];
                if entry.digest != digest {
                    // The facts describe the old digest's image.
                    entry.facts = None;
                }
                Some(std::mem::replace(&mut entry.digest, digest.to_string()))
            }
            Err(at) => {
                self.entries.insert(
                    at,
                    LockEntry {
                        image: image.tag_only(),
                        platform: platform.cloned(),
                        digest: digest.to_string(),
                        facts: None,
                    },
                );
                None
            }
        }
    }

    /// Records `facts` on the entry for `image`'s tag and `platform` (which must exist); returns
    /// false when there is no such entry.
    pub fn set_facts(
        &mut self,
        image: &ImageRef,
        platform: Option<&Platform>,
        facts: Option<ImageFacts>,
    ) -> bool {
        match self.position(image, platform) {
            Ok(i) => {
                self.entries[i].facts = facts.map(Arc::new);
                true
            }
            Err(_) => false,
        }
    }

    /// Removes the entry for `image`'s tag and `platform`, returning it.
    pub fn remove(&mut self, image: &ImageRef, platform: Option<&Platform>) -> Option<LockEntry> {
        let i = self.position(image, platform).ok()?;
        Some(self.entries.remove(i))
    }

    /// Keeps only the entries for which `keep` returns true (e.g. to prune images no manifest
    /// uses any more).
    pub fn retain(&mut self, keep: impl FnMut(&LockEntry) -> bool) {
        self.entries.retain(keep);
    }

    /// Keeps only the entries one of `requests` asks for (`kube-harden lock --prune`); returns
    /// how many were removed.
    pub fn retain_requested(&mut self, requests: &[super::Request]) -> usize {
        let used: HashSet<_> = requests
            .iter()
            .map(|(image, platform)| entry_key(image, platform.as_ref()))
            .collect();
        let before = self.entries.len();
        self.entries.retain(|e| used.contains(&e.sort_key()));
        before - self.entries.len()
    }

    /// True when some entry for `image`'s repository records `digest` (any tag or platform).
    pub fn has_digest(&self, image: &ImageRef, digest: &str) -> bool {
        let name = image.name();
        self.entries
            .iter()
            .any(|e| e.digest == digest && e.image.name() == name)
    }

    fn get_exact_key(&self, image: &ImageRef, platform: Option<&Platform>) -> Option<&LockEntry> {
        self.position(image, platform)
            .ok()
            .map(|i| &self.entries[i])
    }

    /// Where the entry for this key is (`Ok`) or would go (`Err`): entries are sorted and unique
    /// by (normalised name, tag, platform): [`LockEntry`]'s sort key.
    fn position(&self, image: &ImageRef, platform: Option<&Platform>) -> Result<usize, usize> {
        let key = entry_key(image, platform);
        self.entries.binary_search_by(|e| e.sort_key().cmp(&key))
    }
}

fn parse_entry(index: usize, item: &Value, with_facts: bool) -> Result<LockEntry, LockError> {
    let image_text = item
        .get("image")
        .and_then(Value::as_str)
        .map(str::to_string);
    let fail = |reason: String| LockError::Entry {
        index,
        image: image_text.clone().unwrap_or_else(|| "?".into()),
        reason,
    };
    let map = item
        .as_object()
        .ok_or_else(|| fail("expected a mapping with image and digest".into()))?;
    for key in map.keys() {
        let allowed = matches!(key.as_str(), "image" | "digest" | "platform")
            || (with_facts && key == "facts");
        if !allowed {
            return Err(fail(if key == "facts" {
                format!("`facts` needs apiVersion {LOCK_API_VERSION_FACTS}")
            } else {
                format!("unknown key {key:?} (allowed: image, platform, digest, facts)")
            }));
        }
    }
    let text = image_text
        .as_deref()
        .ok_or_else(|| fail("missing image (a string)".into()))?;
    let digest = map
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| fail("missing digest (a string)".into()))?;
    let platform = match map.get("platform") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(p.as_str()),
        Some(_) => return Err(fail("platform must be a string like linux/amd64".into())),
    };
    let mut entry =
        LockEntry::from_parts(text, platform, digest).map_err(|(_, reason)| fail(reason))?;
    match map.get("facts") {
        None | Some(Value::Null) => {}
        Some(v) => {
            let facts: ImageFacts = serde_path_to_error::deserialize(v)
                .map_err(|e| fail(format!("facts.{}: {}", e.path(), e.inner())))?;
            entry.facts = Some(Arc::new(facts));
        }
    }
    Ok(entry)
}

/// A [`DigestSource`] backed by an [`ImageLock`] alone: never touches the network. Unknown
/// images give [`ResolveError::NotInLock`]; `exists` answers `true` only for digests the lock
/// records for that repository and otherwise [`ResolveError::Offline`]. Lookups are hashed, so
/// a lock with thousands of entries costs no more per image than a small one; the indexes hold
/// a hash and an entry number per entry (no copy of any key), and a lookup compares the
/// entries whose hash matches field by field.
#[derive(Debug, Clone, Default)]
pub struct LockSource {
    lock: ImageLock,
    /// By the spelling as written and the platform.
    spelled: HashIndex,
    /// By the normalised repository, effective tag and platform.
    normalized: HashIndex,
    /// By the normalised repository and digest.
    by_digest: HashIndex,
}

/// Entry numbers sorted by (hash of the key, entry number): the entries with one key are
/// adjacent, first entry first.
#[derive(Debug, Clone, Default)]
struct HashIndex(Vec<(u64, u32)>);

impl HashIndex {
    fn build(entries: &[LockEntry], key: impl Fn(&LockEntry) -> u64) -> HashIndex {
        let mut index: Vec<(u64, u32)> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (key(e), i as u32))
            .collect();
        index.sort_unstable();
        HashIndex(index)
    }

    /// The entries whose key hashes to `hash`, in entry order (the caller compares the keys).
    fn candidates(&self, hash: u64) -> impl Iterator<Item = usize> + '_ {
        let from = self.0.partition_point(|(h, _)| *h < hash);
        self.0[from..]
            .iter()
            .take_while(move |(h, _)| *h == hash)
            .map(|(_, i)| *i as usize)
    }
}

/// A fixed hash of `key` (the same in every run; the indexes are rebuilt with each lock).
fn hash_of(key: impl std::hash::Hash) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(key)
}

fn spelled_hash(spelling: &str, platform: Option<&Platform>) -> u64 {
    hash_of((spelling, platform))
}

fn normalized_hash(image: &ImageRef, platform: Option<&Platform>) -> u64 {
    hash_of((
        image.registry(),
        image.repository(),
        image.effective_tag(),
        platform,
    ))
}

fn digest_hash(image: &ImageRef, digest: &str) -> u64 {
    hash_of((image.registry(), image.repository(), digest))
}

/// Whether `a` and `b` name the same repository (`name()` without building it).
fn same_repository(a: &ImageRef, b: &ImageRef) -> bool {
    a.registry() == b.registry() && a.repository() == b.repository()
}

impl LockSource {
    /// Wraps a lock.
    pub fn new(lock: ImageLock) -> Self {
        let mut lock = lock;
        // It lives for the whole run: give back the slack of the vector's growth.
        lock.entries.shrink_to_fit();
        let entries = &lock.entries;
        let spelled = HashIndex::build(entries, |e| {
            spelled_hash(e.image.original(), e.platform.as_ref())
        });
        let normalized =
            HashIndex::build(entries, |e| normalized_hash(&e.image, e.platform.as_ref()));
        let by_digest = HashIndex::build(entries, |e| digest_hash(&e.image, &e.digest));
        LockSource {
            lock,
            spelled,
            normalized,
            by_digest,
        }
    }

    /// The lock.
    pub fn lock(&self) -> &ImageLock {
        &self.lock
    }

    fn entry(&self, image: &ImageRef, platform: Option<&Platform>) -> Option<&LockEntry> {
        let entries = &self.lock.entries;
        let spelling = image.without_digest();
        let spelled = self
            .spelled
            .candidates(spelled_hash(spelling, platform))
            .find(|&i| {
                entries[i].image.original() == spelling && entries[i].platform.as_ref() == platform
            });
        let i = spelled.or_else(|| {
            self.normalized
                .candidates(normalized_hash(image, platform))
                .find(|&i| {
                    let e = &entries[i];
                    same_repository(&e.image, image)
                        && e.image.effective_tag() == image.effective_tag()
                        && e.platform.as_ref() == platform
                })
        })?;
        entries.get(i)
    }

    /// The first entry with facts recording `digest` for `image`'s repository, else the first
    /// entry recording it at all.
    fn by_digest(&self, image: &ImageRef, digest: &str) -> Option<&LockEntry> {
        let entries = &self.lock.entries;
        let mut first = None;
        for i in self.by_digest.candidates(digest_hash(image, digest)) {
            let e = &entries[i];
            if e.digest == digest && same_repository(&e.image, image) {
                if e.facts.is_some() {
                    return Some(e);
                }
                first = first.or(Some(e));
            }
        }
        first
    }
}

impl LockSource {
    /// The facts recorded for the image `image` names: by its digest when it has one (a pinned
    /// image, on a second run), else by its tag for `platform`, then for the index.
    pub fn facts_for(
        &self,
        image: &ImageRef,
        platform: Option<&Platform>,
    ) -> Option<Arc<ImageFacts>> {
        if let Some(digest) = image.digest() {
            return self.by_digest(image, digest)?.facts.clone();
        }
        platform
            .and_then(|p| self.entry(image, Some(p)))
            .and_then(|e| e.facts.clone())
            .or_else(|| self.entry(image, None)?.facts.clone())
    }
}

impl DigestSource for LockSource {
    fn facts(&self, image: &ImageRef, platform: Option<&Platform>) -> Option<Arc<ImageFacts>> {
        self.facts_for(image, platform)
    }

    fn resolve(
        &self,
        image: &ImageRef,
        platform: Option<&Platform>,
    ) -> Result<String, ResolveError> {
        self.entry(image, platform)
            .map(|e| e.digest.clone())
            .ok_or_else(|| ResolveError::NotInLock {
                image: image.to_string(),
                platform: platform.map(Platform::to_string),
            })
    }

    fn exists(&self, image: &ImageRef, digest: &str) -> Result<bool, ResolveError> {
        if self.by_digest(image, digest).is_some() {
            Ok(true)
        } else {
            Err(ResolveError::Offline {
                image: image.to_string(),
                what: format!("whether {digest} exists"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn r(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    #[test]
    fn facts_round_trip_and_version() {
        let mut lock = ImageLock::new();
        lock.set(&r("nginx:1.27"), None, &d('1'));
        // Without facts the file stays version 1, as before.
        assert!(lock.to_yaml_string().contains(LOCK_API_VERSION));
        let facts = ImageFacts {
            user: Some("101".into()),
            exposed_ports: Some(vec!["8080/tcp".into()]),
            ..Default::default()
        };
        assert!(lock.set_facts(&r("nginx:1.27"), None, Some(facts.clone())));
        assert!(!lock.set_facts(&r("redis:7"), None, Some(facts.clone())));
        let text = lock.to_yaml_string();
        assert!(text.contains(LOCK_API_VERSION_FACTS), "{text}");
        let back = ImageLock::from_yaml_str(&text).unwrap();
        assert_eq!(back, lock);
        assert_eq!(back.to_yaml_string(), text);
        // Lookups: by tag, and by digest once the manifest is pinned.
        let source = LockSource::new(back);
        assert_eq!(
            source.facts_for(&r("nginx:1.27"), None).as_deref(),
            Some(&facts)
        );
        let pinned = r(&format!("nginx:1.27@{}", d('1')));
        assert_eq!(source.facts_for(&pinned, None).as_deref(), Some(&facts));
        let other = r(&format!("nginx:1.27@{}", d('9')));
        assert_eq!(source.facts_for(&other, None), None);
        // A new digest drops facts that describe the old one.
        lock.set(&r("nginx:1.27"), None, &d('2'));
        assert!(lock.entries()[0].facts.is_none());
    }

    #[test]
    fn a_large_lock_answers_by_spelling_name_platform_and_digest() {
        let mut lock = ImageLock::new();
        for i in 0..500 {
            lock.set(
                &r(&format!("registry.example.com/app-{i}:1.{i}")),
                None,
                &d('1'),
            );
        }
        let amd = Platform::parse("linux/amd64").unwrap();
        lock.set(&r("nginx:1.27"), None, &d('a'));
        lock.set(&r("nginx:1.27"), Some(&amd), &d('b'));
        // The same digest under two tags: only the second has facts.
        lock.set(&r("nginx:1.28"), None, &d('c'));
        lock.set(&r("nginx:1.29"), None, &d('c'));
        let facts = ImageFacts {
            user: Some("101".into()),
            ..Default::default()
        };
        assert!(lock.set_facts(&r("nginx:1.29"), None, Some(facts.clone())));
        let source = LockSource::new(lock);
        for i in [0, 17, 499] {
            let image = r(&format!("registry.example.com/app-{i}:1.{i}"));
            assert_eq!(source.resolve(&image, None).unwrap(), d('1'));
            assert!(source.resolve(&image, Some(&amd)).is_err());
        }
        assert!(source
            .resolve(&r("registry.example.com/app-500:1.500"), None)
            .is_err());
        // As spelled, normalised, and per platform.
        assert_eq!(source.resolve(&r("nginx:1.27"), None).unwrap(), d('a'));
        assert_eq!(
            source
                .resolve(&r("docker.io/library/nginx:1.27"), None)
                .unwrap(),
            d('a')
        );
        assert_eq!(
            source.resolve(&r("nginx:1.27"), Some(&amd)).unwrap(),
            d('b')
        );
        // By digest: the entry with facts wins, the repository must match.
        let pinned = r(&format!("nginx@{}", d('c')));
        assert_eq!(source.facts_for(&pinned, None).as_deref(), Some(&facts));
        assert!(source.exists(&r("nginx:9"), &d('c')).unwrap());
        assert!(source.exists(&r("redis:7"), &d('c')).is_err());
        assert!(source
            .exists(&r("registry.example.com/app-3:x"), &d('1'))
            .unwrap());
    }

    #[test]
    fn facts_need_version_2_and_are_checked() {
        let v1 = format!(
            "apiVersion: {LOCK_API_VERSION}\nkind: ImageLock\nimages:\n- image: a:1\n  digest: {}\n  facts: {{user: x}}\n",
            d('1')
        );
        let e = ImageLock::from_yaml_str(&v1).unwrap_err().to_string();
        assert!(e.contains("v1alpha2"), "{e}");
        let bad = v1
            .replace(LOCK_API_VERSION, LOCK_API_VERSION_FACTS)
            .replace("{user: x}", "{usr: x}");
        let e = ImageLock::from_yaml_str(&bad).unwrap_err().to_string();
        assert!(e.contains("usr"), "{e}");
        let ok = v1.replace(LOCK_API_VERSION, LOCK_API_VERSION_FACTS);
        let lock = ImageLock::from_yaml_str(&ok).unwrap();
        assert_eq!(
            lock.entries()[0].facts.as_ref().unwrap().user.as_deref(),
            Some("x")
        );
    }

    #[test]
    fn retain_requested_keeps_what_is_asked_for_however_spelled() {
        let mut lock = ImageLock::new();
        let amd = Platform::parse("linux/amd64").unwrap();
        lock.set(&r("nginx:1.27"), None, &d('1'));
        lock.set(&r("redis:7"), None, &d('2'));
        lock.set(&r("redis:7"), Some(&amd), &d('3'));
        lock.set(&r("alpine"), None, &d('4'));
        let requests = vec![
            (r("docker.io/library/nginx:1.27"), None),
            (r("redis:7"), Some(amd.clone())),
            (r("alpine:latest"), None),
        ];
        assert_eq!(lock.retain_requested(&requests), 1);
        assert_eq!(lock.len(), 3);
        assert_eq!(lock.digest(&r("redis:7"), None), None);
        assert_eq!(
            lock.digest(&r("redis:7"), Some(&amd)),
            Some(d('3').as_str())
        );
        assert_eq!(lock.digest(&r("alpine"), None), Some(d('4').as_str()));
        assert_eq!(lock.retain_requested(&[]), 3);
        assert_eq!(lock.len(), 0);
    }

    #[test]
    fn write_is_sorted_stable_and_round_trips() {
        let mut lock = ImageLock::new();
        let arm = Platform::parse("linux/arm64").unwrap();
        lock.set(&r("zeta:1"), None, &d('1'));
        lock.set(&r("ghcr.io/org/app:v2"), None, &d('2'));
        lock.set(&r("nginx:1.27"), Some(&arm), &d('3'));
        lock.set(&r("nginx:1.27"), None, &d('4'));
        lock.set(&r("alpha"), None, &d('5'));
        let text = lock.to_yaml_string();
        let expected = format!(
            "{HEADER}apiVersion: kube-harden.dev/v1alpha1\nkind: ImageLock\nimages:\n\
- image: alpha\n  digest: {}\n\
- image: nginx:1.27\n  digest: {}\n\
- image: nginx:1.27\n  platform: linux/arm64\n  digest: {}\n\
- image: zeta:1\n  digest: {}\n\
- image: ghcr.io/org/app:v2\n  digest: {}\n",
            d('5'),
            d('4'),
            d('3'),
            d('1'),
            d('2')
        );
        assert_eq!(text, expected);
        let back = ImageLock::from_yaml_str(&text).unwrap();
        assert_eq!(back, lock);
        assert_eq!(back.to_yaml_string(), text);
    }

    #[test]
    fn update_keeps_unrelated_entries_and_spelling() {
        let mut lock = ImageLock::new();
        lock.set(&r("nginx:1.27"), None, &d('1'));
        lock.set(&r("redis:7"), None, &d('2'));
        let before = lock.to_yaml_string();
        let prev = lock.set(&r("docker.io/library/nginx:1.27"), None, &d('3'));
        assert_eq!(prev, Some(d('1')));
        assert_eq!(lock.len(), 2);
        let after = lock.to_yaml_string();
        // Only the one digest line changed.
        let changed: Vec<_> = before
            .lines()
            .zip(after.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert_eq!(lock.entries()[0].image.original(), "nginx:1.27");
        assert!(lock.remove(&r("redis:7"), None).is_some());
        assert_eq!(lock.len(), 1);
    }

    #[test]
    fn lookup_by_spelling_then_normalised() {
        let text = format!(
            "apiVersion: kube-harden.dev/v1alpha1\nkind: ImageLock\nimages:\n\
- image: nginx\n  digest: {}\n\
- image: nginx:1.27\n  platform: linux/amd64\n  digest: {}\n",
            d('a'),
            d('b')
        );
        let lock = ImageLock::from_yaml_str(&text).unwrap();
        assert_eq!(lock.digest(&r("nginx"), None), Some(d('a').as_str()));
        assert_eq!(
            lock.digest(&r("docker.io/library/nginx:latest"), None),
            Some(d('a').as_str())
        );
        let amd = Platform::parse("linux/amd64").unwrap();
        assert_eq!(lock.digest(&r("nginx:1.27"), None), None);
        assert_eq!(
            lock.digest(&r("nginx:1.27"), Some(&amd)),
            Some(d('b').as_str())
        );
        // A digest already in the reference is ignored for lookup.
        assert_eq!(
            lock.digest(&r(&format!("nginx@{}", d('c'))), None),
            Some(d('a').as_str())
        );
        let src = LockSource::new(lock);
        assert!(src.exists(&r("nginx:9"), &d('b')).unwrap());
        assert!(matches!(
            src.exists(&r("nginx:9"), &d('c')),
            Err(ResolveError::Offline { .. })
        ));
        assert!(matches!(
            src.resolve(&r("redis"), None),
            Err(ResolveError::NotInLock { .. })
        ));
    }

    #[test]
    fn errors_name_the_entry() {
        let head = "apiVersion: kube-harden.dev/v1alpha1\nkind: ImageLock\nimages:\n";
        let cases = [
            (format!("{head}- image: a:1\n  digest: sha256:abc\n"), "images[0] (a:1)"),
            (format!("{head}- image: a:1\n  digest: {}\n- image: Bad\n  digest: {}\n", d('1'), d('1')), "images[1] (Bad)"),
            (format!("{head}- digest: {}\n", d('1')), "images[0] (?)"),
            (format!("{head}- image: a:1\n  digets: {}\n", d('1')), "unknown key \"digets\""),
            (format!("{head}- image: a@{}\n  digest: {}\n", d('1'), d('1')), "without @digest"),
            (format!("{head}- image: a\n  platform: linux\n  digest: {}\n", d('1')), "invalid platform"),
            (format!("{head}- image: a\n  digest: {}\n- image: docker.io/library/a:latest\n  digest: {}\n", d('1'), d('2')), "conflicts with entry a"),
            ("apiVersion: v1\nkind: ImageLock\n".to_string(), "apiVersion must be"),
            ("apiVersion: kube-harden.dev/v1alpha1\nkind: Lock\n".to_string(), "kind must be ImageLock"),
            (format!("{head}  bad: [\n"), "line"),
            ("".to_string(), "empty file"),
            (format!("{head}- image: a\n  digest: {}\n---\nkind: x\n", d('1')), "several"),
        ];
        for (text, want) in cases {
            let e = ImageLock::from_yaml_str(&text).unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} should contain {want:?}");
        }
        // Same digest twice is tolerated and merged.
        let ok = ImageLock::from_yaml_str(&format!(
            "{head}- image: a\n  digest: {}\n- image: docker.io/library/a\n  digest: {}\n",
            d('1'),
            d('1')
        ))
        .unwrap();
        assert_eq!(ok.len(), 1);
        // No images at all is an empty lock.
        let empty =
            ImageLock::from_yaml_str("apiVersion: kube-harden.dev/v1alpha1\nkind: ImageLock\n")
                .unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn save_and_load() {
        let dir = std::env::temp_dir().join(format!("kh-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("images.lock.yaml");
        let mut lock = ImageLock::new();
        lock.set(&r("a:1"), None, &d('9'));
        lock.save(&path).unwrap();
        assert_eq!(ImageLock::load(&path).unwrap(), lock);
        let missing = ImageLock::load(&dir.join("nope.yaml")).unwrap_err();
        assert!(matches!(missing, LockError::Io { .. }));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
