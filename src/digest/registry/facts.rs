//! Image facts through the registry client: the manifest for the platform, the config blob,
//! then the layers as streams, top layer first ([`crate::facts::layers`]). Same auth, TLS,
//! retries and concurrency as digest resolution. Every blob is checked against its digest; a
//! layer whose bytes do not hash to its digest makes the filesystem facts unknown.

use std::io::{self, Read};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::{fan_out, RegistrySource, INDEX_TYPES};
use crate::digest::reference::{is_sha256_digest, ImageRef};
use crate::digest::{Platform, ResolveError};
use crate::facts::layers::{self, Questions, Scan};
use crate::facts::{config, passwd, split_user, ImageFacts};

/// The platform whose manifest is read when neither the lock entry nor the policy names one.
pub const DEFAULT_PLATFORM: &str = "linux/amd64";

/// One image whose facts `kube-harden lock` records.
#[derive(Debug, Clone)]
pub struct FactsQuestion {
    /// The image as the manifests name it (registry and repository are what count).
    pub image: ImageRef,
    /// The digest the lock records for it (an index or a single manifest).
    pub digest: String,
    /// The platform to read in an index (default [`DEFAULT_PLATFORM`]).
    pub platform: Option<Platform>,
    /// Paths to ask about besides `/tmp` and the image's `Volumes` (the policy's
    /// `writablePaths`).
    pub paths: Vec<String>,
    /// Read the layers for filesystem facts (false when the policy states them).
    pub filesystem: bool,
}

/// Hashes what passes through.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

impl RegistrySource {
    /// Learns the facts of one image. Manifest and config problems are errors (the image's
    /// digest is in question); a layer that cannot be read leaves the filesystem facts unknown,
    /// with the reason in `unknown`.
    pub fn image_facts(&self, q: &FactsQuestion, budget: u64) -> Result<ImageFacts, ResolveError> {
        let image = &q.image;
        let protocol = |detail: String| ResolveError::Protocol {
            image: image.to_string(),
            registry: image.api_host().to_string(),
            detail,
        };
        let platform = match &q.platform {
            Some(p) => p.clone(),
            None => Platform::parse(DEFAULT_PLATFORM).expect("valid default platform"),
        };
        let manifest = self.blob_json(image, "manifests", &q.digest)?;
        let media_type = manifest
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or("");
        let manifest = if INDEX_TYPES.contains(&media_type) || manifest.get("manifests").is_some() {
            let chosen = manifest
                .get("manifests")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|e| {
                    let p = e.get("platform").unwrap_or(&Value::Null);
                    platform.matches(
                        p.get("os").and_then(Value::as_str).unwrap_or(""),
                        p.get("architecture").and_then(Value::as_str).unwrap_or(""),
                        p.get("variant").and_then(Value::as_str),
                    )
                })
                .and_then(|e| e.get("digest").and_then(Value::as_str))
                .ok_or_else(|| ResolveError::PlatformNotFound {
                    image: image.to_string(),
                    platform: platform.to_string(),
                    available: Vec::new(),
                })?
                .to_string();
            self.blob_json(image, "manifests", &chosen)?
        } else {
            manifest
        };
        let config_digest = manifest
            .pointer("/config/digest")
            .and_then(Value::as_str)
            .ok_or_else(|| protocol("manifest without a config digest".into()))?
            .to_string();
        let config_json = self.blob_json(image, "blobs", &config_digest)?;
        let mut facts = config::from_config(&config_json, config::platform_of(&config_json));
        let user = facts.user.clone().unwrap_or_default();
        let (name, group) = split_user(&user);
        let named = |s: &str| !s.is_empty() && s != "root" && s.parse::<u32>().is_err();
        // A numeric user's primary group and supplementary groups come from the image's
        // accounts too, as runc finds them.
        let accounts = (!matches!(name, "" | "root" | "0") && group.is_none())
            || named(name)
            || group.is_some_and(named);
        let mut paths = vec!["/tmp".to_string()];
        paths.extend(facts.volumes.iter().flatten().cloned());
        paths.extend(q.paths.iter().cloned());
        let questions = Questions {
            accounts,
            filesystem: q.filesystem,
            paths,
        };
        let layers: Vec<&str> = manifest
            .get("layers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|l| l.get("digest").and_then(Value::as_str).unwrap_or(""))
            .collect();
        let mut scan = Scan::new(questions.clone(), budget);
        if questions.accounts || questions.filesystem {
            for (i, digest) in layers.iter().enumerate().rev() {
                if scan.done() {
                    break;
                }
                self.scan_layer(image, digest, &mut scan, i == 0);
            }
        }
        let learned = scan.finish();
        if questions.accounts {
            match passwd::resolve(&user, learned.passwd.as_deref(), learned.group.as_deref()) {
                Some((uid, gid, groups)) => {
                    facts.uid = Some(uid);
                    facts.gid = gid;
                    facts.groups = Some(groups);
                }
                None => facts.unknown.push(format!(
                    "user: {user:?} is not in the image's /etc/passwd and /etc/group"
                )),
            }
        } else if let Some((uid, gid, groups)) = passwd::resolve(&user, None, None) {
            facts.uid = Some(uid);
            facts.gid = gid;
            if !groups.is_empty() {
                facts.groups = Some(groups);
            }
        }
        match learned.filesystem {
            Some(Ok(fs)) => facts.filesystem = Some(fs),
            Some(Err(why)) => facts.unknown.push(format!("filesystem: {why}")),
            None => {}
        }
        Ok(facts)
    }

    /// [`Self::image_facts`] for many images, up to [`super::RegistryConfig::concurrency`] at
    /// once; results in question order.
    pub fn image_facts_all(
        &self,
        questions: &[FactsQuestion],
        budget: u64,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Vec<Result<ImageFacts, ResolveError>> {
        fan_out(questions.len(), self.config.concurrency, progress, |n| {
            self.image_facts(&questions[n], budget)
        })
    }

    /// A manifest or config blob, checked against its digest, as JSON.
    fn blob_json(&self, image: &ImageRef, kind: &str, digest: &str) -> Result<Value, ResolveError> {
        let protocol = |detail: String| ResolveError::Protocol {
            image: image.to_string(),
            registry: image.api_host().to_string(),
            detail,
        };
        if !is_sha256_digest(digest) {
            return Err(protocol(format!("{digest:?} is not a sha256 digest")));
        }
        let reply = self.request(image, "GET", &format!("{kind}/{digest}"))?;
        let got = format!("sha256:{:x}", Sha256::digest(&reply.body));
        if got != digest {
            return Err(protocol(format!("{kind}/{digest} hashes to {got}")));
        }
        serde_json::from_slice(&reply.body)
            .map_err(|e| protocol(format!("{kind}/{digest} is not JSON: {e}")))
    }

    /// Streams one layer into the scan; any failure becomes the scan's reason for unknown
    /// filesystem facts.
    fn scan_layer(&self, image: &ImageRef, digest: &str, scan: &mut Scan, last: bool) {
        if !is_sha256_digest(digest) {
            scan.fail(format!("a layer has the invalid digest {digest:?}"));
            return;
        }
        let reply = match self.exchange(image, "GET", &format!("blobs/{digest}"), true) {
            Ok(r) => r,
            Err(e) => {
                scan.fail(format!("layer {digest} could not be fetched: {e}"));
                return;
            }
        };
        let Some(body) = reply.stream else {
            scan.fail(format!("layer {digest}: no body"));
            return;
        };
        let mut hashing = Hashing {
            inner: body,
            hasher: Sha256::new(),
        };
        let result = layers::decompressed(&mut hashing).and_then(|tar| {
            scan.layer(tar, last)
                .map_err(|e| io::Error::other(e.to_string()))
        });
        if let Err(e) = result {
            // The scan has recorded its own errors; this records a failure to start.
            scan.fail(format!("layer {digest}: {e}"));
            return;
        }
        // The rest of the blob (tar padding, compression trailer) still counts for the digest.
        if let Err(e) = io::copy(&mut hashing, &mut io::sink()) {
            scan.fail(format!("layer {digest} could not be fetched: {e}"));
            return;
        }
        let got = format!("sha256:{:x}", hashing.hasher.finalize());
        if got != digest {
            scan.fail(format!("layer {digest} hashes to {got}"));
        }
    }
}
