//! Concurrency benchmark for the registry client: resolve 200 distinct tags through a local
//! registry endpoint that adds 20 ms to every request, one at a time (concurrency 1) and with the
//! default concurrency (16), in one run, and report both times and the speed-up (target ≥ 8×).
//!
//! The endpoint is an in-process HTTP/1.1 server speaking the distribution API for manifests:
//! each tag has its own manifest body, and the `Docker-Content-Digest` it sends is that body's
//! sha256; every digest the client returns is checked against it.
//!
//! Run: `CARGO_BUILD_JOBS=1 cargo bench --bench registry_concurrency`
//! (`-- --tags N --delay-ms D --concurrency C` change the defaults 200, 20, 16).

#[path = "support/args.rs"]
mod args;
#[path = "../tests/support/http.rs"]
mod http;
use args::arg;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube_harden::digest::auth::CredentialStore;
use kube_harden::digest::{DigestSource, ImageLock, ImageRef, RegistryConfig, RegistrySource};
use kube_harden::prefetch::process_prefetched;
use kube_harden::Options;
use sha2::{Digest as _, Sha256};

fn main() {
    let tags = arg("--tags", 200) as usize;
    let delay = Duration::from_millis(arg("--delay-ms", 20));
    let concurrency = arg("--concurrency", 16) as usize;

    // One manifest per tag, distinct bodies, digests computed here.
    let manifests: HashMap<String, (Vec<u8>, String)> = (0..tags)
        .map(|i| {
            let body = format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{:064x}","size":{i}}},"layers":[]}}"#,
                i
            )
            .into_bytes();
            let digest = format!("sha256:{:x}", Sha256::digest(&body));
            (format!("t{i}"), (body, digest))
        })
        .collect();
    let manifests = Arc::new(manifests);
    let served = Arc::new(AtomicUsize::new(0));
    let (m, s) = (manifests.clone(), served.clone());
    let server = http::serve(move |req: &http::Req| {
        std::thread::sleep(delay);
        s.fetch_add(1, Ordering::Relaxed);
        let tag = req
            .path()
            .strip_prefix("/v2/bench/app/manifests/")
            .unwrap_or("");
        match m.get(tag) {
            Some((body, digest)) => {
                let mut r = http::Resp::status(200)
                    .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                    .header("Docker-Content-Digest", digest);
                r.body = body.clone();
                r
            }
            None => http::Resp::status(404),
        }
    });
    let host = server.host();
    let requests: Vec<_> = (0..tags)
        .map(|i| {
            (
                ImageRef::parse(&format!("{host}/bench/app:t{i}")).unwrap(),
                None,
            )
        })
        .collect();

    // The client under test: plain HTTP to the local endpoint, no credentials, no proxy.
    let client = |concurrency: usize| {
        RegistrySource::new(RegistryConfig {
            concurrency,
            insecure_registries: vec![host.clone()],
            credentials: CredentialStore::none(),
            env_proxy: false,
            ..RegistryConfig::default()
        })
    };
    let run = |concurrency: usize| -> Duration {
        let src = client(concurrency);
        let started = Instant::now();
        let results = src.resolve_all(&requests);
        let elapsed = started.elapsed();
        for (i, r) in results.iter().enumerate() {
            let want = &manifests[&format!("t{i}")].1;
            assert_eq!(r.as_ref().expect("resolved"), want, "tag t{i}");
        }
        assert_eq!(src.requests_made(), tags as u64, "one HEAD per tag");
        elapsed
    };

    println!(
        "registry_concurrency: {tags} distinct tags, +{} ms per request, HEAD with Docker-Content-Digest",
        delay.as_millis()
    );
    let sequential = run(1);
    println!(
        "  concurrency  1: {:>8.1} ms ({:.2} ms/tag)",
        sequential.as_secs_f64() * 1e3,
        sequential.as_secs_f64() * 1e3 / tags as f64
    );
    let concurrent = run(concurrency);
    println!(
        "  concurrency {concurrency:>2}: {:>8.1} ms ({:.2} ms/tag)",
        concurrent.as_secs_f64() * 1e3,
        concurrent.as_secs_f64() * 1e3 / tags as f64
    );
    let ratio = sequential.as_secs_f64() / concurrent.as_secs_f64();
    println!(
        "  speed-up: {ratio:.1}x (target >= 8x) {}",
        if ratio >= 8.0 { "OK" } else { "BELOW TARGET" }
    );

    // The same through the whole pin-image-digests pipeline (what `kube-harden` runs): a stream
    // of 200 Deployments, one image each, first pass against an empty lock, the misses resolved
    // in one batch, second pass writing the digests.
    let stream: String = (0..tags)
        .map(|i| {
            format!(
                "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: {host}/bench/app:t{i}\n"
            )
        })
        .collect();
    let mut options = Options::default();
    options.overrides.enable = vec!["pin-image-digests".into()];
    let pipeline = |concurrency: usize| -> Duration {
        let factory = |_: &kube_harden::config::PolicySpec| -> Option<Box<dyn DigestSource>> {
            Some(Box::new(client(concurrency)))
        };
        let started = Instant::now();
        let out = process_prefetched(
            stream.as_bytes(),
            &options,
            ImageLock::new(),
            &factory,
            &|_, _| {},
        )
        .expect("pipeline");
        let elapsed = started.elapsed();
        assert!(!out.has_errors(), "{:?}", out.problems().next());
        let text = out.text();
        for i in 0..tags {
            let want = &manifests[&format!("t{i}")].1;
            assert!(
                text.contains(&format!("/bench/app:t{i}@{want}")),
                "t{i} pinned to what the endpoint served"
            );
        }
        elapsed
    };
    let sequential = pipeline(1);
    let concurrent = pipeline(concurrency);
    let ratio = sequential.as_secs_f64() / concurrent.as_secs_f64();
    println!(
        "  whole pipeline ({tags} Deployments): concurrency 1 {:.1} ms, concurrency {concurrency} {:.1} ms, speed-up {ratio:.1}x {}",
        sequential.as_secs_f64() * 1e3,
        concurrent.as_secs_f64() * 1e3,
        if ratio >= 8.0 { "OK" } else { "BELOW TARGET" }
    );
    println!("  requests served: {}", served.load(Ordering::Relaxed));
    drop(server);
}
