//! `pin-image-digests`: every container image (and every image field of a custom resource
//! named in the policy) gets `@sha256:…` appended to the tag as written, so every node runs the
//! bytes that were reviewed. Digests come from the policy's `images.digests`, then the run's
//! [`DigestSource`](crate::digest::DigestSource) (a lock file, the registry); an image that
//! cannot be pinned is an error (fail closed) or, with `onUnresolved: warn`, a warning.

use std::collections::HashSet;

use serde_json::Value;

use super::{Rule, StreamIndex};
use crate::change::Findings;
use crate::config::{FieldStep, OnUnresolved, Policy};
use crate::digest::{DigestSource, ImageRef, Platform, ResolveError};
use crate::model::path::{FieldPath, Pointer};
use crate::model::workload::{api_version_matches, opted_out, pod_location, PodView};

/// The rule id.
pub const ID: &str = "pin-image-digests";

/// Appends the digest of each image's tag.
pub struct PinImageDigests;

impl Rule for PinImageDigests {
    fn id(&self) -> &'static str {
        ID
    }

    fn summary(&self) -> &'static str {
        "pins every container image (and policy-named image fields) to its sha256 digest"
    }

    fn docs(&self) -> &'static str {
        include_str!("../../docs/rules/pin-image-digests.md")
    }

    fn check(&self, pod: &PodView<'_>, policy: &Policy, out: &mut Findings) {
        if pod.skips(ID) {
            return;
        }
        let platform = pod_platform(pod, policy, out);
        for c in &pod.containers {
            if c.skips(ID) {
                continue;
            }
            if let Some(Value::String(image)) = c.value.get("image") {
                pin(image, c.path.key("image"), platform.as_ref(), policy, out);
            }
        }
    }

    fn reads_object(&self, api_version: &str, kind: &str, policy: &Policy) -> bool {
        has_fields(api_version, kind, policy)
    }

    /// The image fields the policy names for the kind (custom resources), except the pod's
    /// container images, which [`Rule::check`] pinned already.
    fn check_object(
        &self,
        object: &Value,
        policy: &Policy,
        _index: &StreamIndex,
        out: &mut Findings,
    ) {
        let s = |k: &str| object.get(k).and_then(Value::as_str).unwrap_or("");
        let done = pod_location(s("apiVersion"), s("kind"), policy)
            .and_then(|location| PodView::new(object, location).ok().flatten())
            .map(|view| container_paths(&view))
            .unwrap_or_default();
        check_fields(object, &done, policy, out);
    }
}

/// The platform to pin for this pod: the policy's, unless the pod says it runs elsewhere
/// (`spec.os.name`, `kubernetes.io/os` / `kubernetes.io/arch` node selectors), where the index
/// (which serves every platform) is the safe choice.
fn pod_platform(pod: &PodView<'_>, policy: &Policy, out: &mut Findings) -> Option<Platform> {
    let wanted = policy.images().platform.clone()?;
    let selector = |k: &str| {
        pod.spec
            .get("nodeSelector")
            .and_then(|s| s.get(k))
            .and_then(Value::as_str)
    };
    let os = pod
        .spec
        .at("/os/name")
        .and_then(Value::as_str)
        .or_else(|| selector("kubernetes.io/os"));
    let arch = selector("kubernetes.io/arch");
    let conflict =
        os.is_some_and(|o| o != wanted.os) || arch.is_some_and(|a| a != wanted.architecture);
    if conflict {
        out.info(
            ID,
            Some(pod.location.spec.clone()),
            format!(
                "the pod runs on {}/{}, not {wanted}: its images are pinned to the multi-arch index",
                os.unwrap_or(&wanted.os),
                arch.unwrap_or("*")
            ),
        );
        return None;
    }
    Some(wanted)
}

/// Pins one image field (or reports why it cannot).
fn pin(
    text: &str,
    path: FieldPath,
    platform: Option<&Platform>,
    policy: &Policy,
    out: &mut Findings,
) {
    let image = match ImageRef::parse(text) {
        Ok(image) => image,
        Err(e) => {
            let error = ResolveError::BadReference {
                image: text.to_string(),
                detail: e.reason,
            };
            return unresolved(error, path, policy, out);
        }
    };
    if let Some(digest) = image.digest() {
        if policy.spec.images.verify_digests {
            match exists(policy, &image, digest) {
                Ok(true) => out.info(
                    ID,
                    Some(path),
                    format!("{text}: the registry has this digest"),
                ),
                Ok(false) => out.error(
                    ID,
                    Some(path),
                    format!(
                        "{text}: the registry has no manifest with this digest (fix the digest, or drop it and let {ID} pin the tag)"
                    ),
                ),
                Err(e) => unresolved(e, path, policy, out),
            }
        }
        return;
    }
    match resolve(policy, &image, platform) {
        Ok(digest) => {
            let what = match platform {
                Some(p) => format!("its {p} manifest"),
                None => "its digest".to_string(),
            };
            let pinned = image.with_digest(&digest);
            let message = if image.tag_is_implicit() {
                format!("{text} has no tag: pins {what}, the image `latest` points to now")
            } else {
                format!("pins {text} to {what}")
            };
            out.replace(
                ID,
                path,
                Value::String(text.to_string()),
                Value::String(pinned),
                message,
            );
        }
        Err(e) => unresolved(e, path, policy, out),
    }
}

fn resolve(
    policy: &Policy,
    image: &ImageRef,
    platform: Option<&Platform>,
) -> Result<String, ResolveError> {
    ask(policy, |source| source.resolve(image, platform))
}

fn exists(policy: &Policy, image: &ImageRef, digest: &str) -> Result<bool, ResolveError> {
    ask(policy, |source| source.exists(image, digest))
}

/// Puts one question to the policy's own digests (`spec.images.digests`), then, when they do not
/// know, to the run's source (lock file, registry).
fn ask<T>(
    policy: &Policy,
    question: impl Fn(&dyn DigestSource) -> Result<T, ResolveError>,
) -> Result<T, ResolveError> {
    match question(&policy.images().inline) {
        Err(e) if e.is_unknown() => match &policy.digests {
            Some(source) => question(source.0.as_ref()),
            None => Err(e),
        },
        other => other,
    }
}

fn unresolved(error: ResolveError, path: FieldPath, policy: &Policy, out: &mut Findings) {
    let message = format!("{error}; {}", error.hint());
    match policy.spec.images.on_unresolved.unwrap_or_default() {
        OnUnresolved::Fail => out.error(ID, Some(path), message),
        OnUnresolved::Warn => out.findings.push(crate::change::Finding {
            rule: ID,
            severity: crate::change::Severity::Warning,
            path: Some(path),
            current: None,
            proposed: None,
            message: format!("keeps the tag: {message}"),
        }),
    }
    out.unresolved.push(error);
}

/// True when the policy names image fields for this kind.
pub fn has_fields(api_version: &str, kind: &str, policy: &Policy) -> bool {
    policy
        .images()
        .fields
        .iter()
        .any(|(av, k, _)| k == kind && api_version_matches(av, api_version))
}

/// Pins the image fields the policy names for this object's kind, except the paths in `done`
/// (container images the pod part already handled).
pub fn check_fields(
    object: &Value,
    done: &HashSet<FieldPath>,
    policy: &Policy,
    out: &mut Findings,
) {
    let s = |k: &str| object.get(k).and_then(Value::as_str).unwrap_or("");
    let (api_version, kind) = (s("apiVersion"), s("kind"));
    if opted_out(object.at("/metadata/annotations"), ID) {
        return;
    }
    let mut seen = HashSet::new();
    for (av, k, steps) in &policy.images().fields {
        if k != kind || !api_version_matches(av, api_version) {
            continue;
        }
        let mut found = Vec::new();
        walk(object, steps, FieldPath::root(), &mut found);
        for (path, text) in found {
            if done.contains(&path) || !seen.insert(path.clone()) {
                continue;
            }
            pin(text, path, policy.images().platform.as_ref(), policy, out);
        }
    }
}

fn walk<'v>(
    value: &'v Value,
    steps: &[FieldStep],
    at: FieldPath,
    out: &mut Vec<(FieldPath, &'v str)>,
) {
    let Some((step, rest)) = steps.split_first() else {
        if let Value::String(s) = value {
            out.push((at, s));
        }
        return;
    };
    match (step, value) {
        (FieldStep::Key(k), Value::Object(m)) => {
            if let Some(v) = m.get(k) {
                walk(v, rest, at.key(k), out);
            }
        }
        (FieldStep::Index(i), Value::Array(items)) => {
            if let Some(v) = items.get(*i) {
                walk(v, rest, at.index(*i), out);
            }
        }
        (FieldStep::Each, Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, rest, at.index(i), out);
            }
        }
        _ => {}
    }
}

/// The container image paths of a pod (so [`check_fields`] does not pin them twice).
pub fn container_paths(pod: &PodView<'_>) -> HashSet<FieldPath> {
    pod.containers.iter().map(|c| c.path.key("image")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{changes, findings, pod, policy, run};
    use serde_json::json;

    #[test]
    fn pins_from_the_policy_digests_and_fails_without_a_source() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let with =
            policy(json!({"images": {"digests": [{"image": "nginx:1.27", "digest": digest}]}}));
        let out = run(&PinImageDigests, &pod(json!({}), json!({})), &with);
        assert_eq!(
            changes(&out),
            [format!(
                "spec.containers[0].image = \"nginx:1.27@{digest}\""
            )]
        );
        let out = run(
            &PinImageDigests,
            &pod(json!({}), json!({})),
            &policy(json!({})),
        );
        assert!(out.changes.is_empty());
        assert!(
            findings(&out)[0].starts_with("error: nginx:1.27: not in the lock file"),
            "{:?}",
            findings(&out)
        );
        let warn = policy(json!({"images": {"onUnresolved": "warn"}}));
        let out = run(&PinImageDigests, &pod(json!({}), json!({})), &warn);
        assert!(
            findings(&out)[0].starts_with("warning: "),
            "{:?}",
            findings(&out)
        );
    }
}
