//! Digest resolution against a real OCI registry: Debian's `docker-registry` (distribution 2.8) on
//! 127.0.0.1, images built with `umoci` and pushed with `skopeo`. Small in-test HTTP servers put a
//! bearer-token front, 429/503 answers, header tampering and a black hole in front of it.
//!
//! Every digest the client returns is compared with what the registry serves (`skopeo inspect
//! --raw`, hashed here). Tools come from `scripts/registry-setup.sh`; without them the tests are
//! reported as ignored with the reason (set `KUBE_HARDEN_REQUIRE_REGISTRY=1` to make that a failure).
#![cfg(all(feature = "registry", not(target_family = "wasm")))]

#[path = "support/http.rs"]
mod http;
#[path = "support/oci_push.rs"]
mod oci_push;
#[path = "support/trials.rs"]
mod trials;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use http::{Req, Resp};
use kube_harden::digest::auth::{Credential, CredentialStore};
use kube_harden::digest::{
    ChainSource, DigestSource, ImageLock, ImageRef, LockSource, Platform, RegistryConfig,
    RegistrySource, ResolveError,
};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

const TOOLS: [&str; 4] = ["docker-registry", "skopeo", "umoci", "htpasswd"];
const USER: &str = "kh-user";

/// The shared registries: one open, one behind htpasswd basic auth, same storage.
struct Fixture {
    open: String,
    auth: String,
    password: String,
}

static FIXTURE: OnceLock<Result<Fixture, String>> = OnceLock::new();

/// Starts the registries and pushes the images, once per test process.
fn init_fixture() -> Result<Fixture, String> {
    if let Some(missing) = TOOLS.iter().find(|t| which(t).is_none()) {
        return Err(format!(
            "`{missing}` is not installed (run `bash scripts/registry-setup.sh`)"
        ));
    }
    // Children are started from a thread that lives as long as the test process, with
    // PR_SET_PDEATHSIG, so the registries stop when the tests end.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(build_fixture)
            .unwrap_or_else(|_| Err("fixture setup panicked".to_string()));
        let (fixture, children) = match r {
            Ok((f, c)) => (Ok(f), c),
            Err(e) => (Err(e), Vec::new()),
        };
        tx.send(fixture).unwrap();
        let _keep = children;
        loop {
            std::thread::park();
        }
    });
    rx.recv().unwrap()
}

fn fixture() -> Option<&'static Fixture> {
    let f = FIXTURE.get_or_init(init_fixture);
    match f {
        Ok(f) => Some(f),
        // The REGISTRY probe reports this before a test runs (ignored, or failed under
        // KUBE_HARDEN_REQUIRE_REGISTRY); a test that gets here anyway fails.
        Err(reason) => panic!("registry tests need a local registry: {reason}"),
    }
}

/// The local registries ([`fixture`]): without them a test is ignored with the reason, or fails
/// when `KUBE_HARDEN_REQUIRE_REGISTRY` is set.
const REGISTRY: trials::Needs = trials::Needs {
    probe: || {
        FIXTURE
            .get_or_init(init_fixture)
            .as_ref()
            .map(|_| ())
            .map_err(|reason| format!("registry tests need a local registry: {reason}"))
    },
    strict_switch: "KUBE_HARDEN_REQUIRE_REGISTRY",
    strict: || std::env::var_os("KUBE_HARDEN_REQUIRE_REGISTRY").is_some(),
};

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

fn run(cmd: &str, args: &[&str], cwd: &Path) -> Vec<u8> {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn nonce() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}-{}", std::process::id(), t.as_nanos())
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

fn base_dir() -> PathBuf {
    let base = std::env::temp_dir().join("kube-harden-registry-tests");
    // Remove what earlier runs left behind (their process is gone).
    if let Ok(entries) = std::fs::read_dir(&base) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !Path::new("/proc").join(&name).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = base.join(std::process::id().to_string());
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// TLS for a registry: its certificate and key files.
type Tls<'a> = (&'a Path, &'a Path);

fn start_registry(
    dir: &Path,
    name: &str,
    htpasswd: Option<&Path>,
    tls: Option<Tls<'_>>,
) -> Result<(Child, String), String> {
    use std::os::unix::process::CommandExt;
    let port = free_port();
    let tls_config = tls
        .map(|(cert, key)| {
            format!(
                ", tls: {{certificate: {}, key: {}}}",
                cert.display(),
                key.display()
            )
        })
        .unwrap_or_default();
    let auth = htpasswd
        .map(|p| {
            format!(
                "auth: {{htpasswd: {{realm: kh-test, path: {}}}}}\n",
                p.display()
            )
        })
        .unwrap_or_default();
    let config = format!(
        "version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\nhttp: {{addr: 127.0.0.1:{port}{tls_config}}}\n{auth}",
        dir.join("data").display()
    );
    let cfg = dir.join(format!("{name}.yml"));
    std::fs::write(&cfg, config).unwrap();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let mut cmd = Command::new("docker-registry");
    cmd.arg("serve")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to signal the child when the
    // spawning thread (which lives as long as the test process) exits.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| format!("docker-registry: {e}"))?;
    let host = format!("127.0.0.1:{port}");
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .new_agent();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        // A TLS registry's certificate is the caller's to trust: it is up when it accepts.
        let up = if tls.is_some() {
            std::net::TcpStream::connect(&host).is_ok()
        } else {
            agent
                .get(&format!("http://{host}/v2/"))
                .call()
                .is_ok_and(|r| matches!(r.status().as_u16(), 200 | 401))
        };
        if up {
            return Ok((child, host));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("docker-registry on {host} did not come up"))
}

type Built = (Fixture, Vec<Child>);

fn build_fixture() -> Result<Built, String> {
    let dir = base_dir();
    let password = format!("pw-{}", nonce());
    let htpasswd = dir.join("htpasswd");
    let out = run("htpasswd", &["-Bbn", USER, &password], &dir);
    std::fs::write(&htpasswd, out).unwrap();
    let (open_child, open) = start_registry(&dir, "open", None, None)?;
    let (auth_child, auth) = start_registry(&dir, "auth", Some(&htpasswd), None)?;

    // Two single-arch images and an OCI index over them, in one OCI layout.
    let layout = "layout";
    run("umoci", &["init", "--layout", layout], &dir);
    let n = nonce();
    for arch in ["amd64", "arm64"] {
        let image = format!("{layout}:{arch}");
        run("umoci", &["new", "--image", &image], &dir);
        let file = dir.join(format!("hello-{arch}"));
        std::fs::write(&file, format!("hello from {arch} {n}\n")).unwrap();
        run(
            "umoci",
            &[
                "insert",
                "--image",
                &image,
                file.to_str().unwrap(),
                "/hello",
            ],
            &dir,
        );
        run(
            "umoci",
            &[
                "config",
                "--image",
                &image,
                "--os",
                "linux",
                "--architecture",
                arch,
                "--config.cmd",
                "/hello",
            ],
            &dir,
        );
    }
    let index_path = dir.join(layout).join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let descriptor = |arch: &str| -> Value {
        let d = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == arch)
            .unwrap_or_else(|| panic!("no {arch} in index.json"));
        serde_json::json!({
            "mediaType": d["mediaType"], "digest": d["digest"], "size": d["size"],
            "platform": {"architecture": arch, "os": "linux"}
        })
    };
    let multi = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [descriptor("amd64"), descriptor("arm64")],
    });
    let bytes = serde_json::to_vec(&multi).unwrap();
    let digest = sha256_hex(&bytes);
    let blob = dir
        .join(layout)
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    std::fs::write(&blob, &bytes).unwrap();
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest, "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"}
        }));
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();

    let push = |src: &str, dest: &str, all: bool| {
        let dest = format!("docker://{open}/{dest}");
        let src = format!("oci:{layout}:{src}");
        let mut args = vec!["copy", "--quiet", "--dest-tls-verify=false"];
        if all {
            args.extend(["--all", "--preserve-digests"]);
        }
        args.extend([src.as_str(), dest.as_str()]);
        run("skopeo", &args, &dir);
    };
    push("amd64", "demo/single:v1", false);
    push("amd64", "demo/single:latest", false);
    push("multi", "demo/multi:v1", true);
    Ok((
        Fixture {
            open,
            auth,
            password,
        },
        vec![open_child, auth_child],
    ))
}

/// The digest the registry serves for `reference` (`host/repo:tag` or `@digest`): the sha256 of
/// the raw manifest skopeo fetches.
fn served(reference: &str) -> String {
    let out = run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ],
        Path::new("."),
    );
    sha256_hex(&out)
}

/// The digest of `arch`'s manifest in the index the registry serves, checked by fetching it.
fn served_platform(reference: &str, arch: &str) -> String {
    let raw = run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ],
        Path::new("."),
    );
    let index: Value = serde_json::from_slice(&raw).unwrap();
    let d = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == arch)
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let repo = reference.rsplit_once(':').unwrap().0;
    assert_eq!(served(&format!("{repo}@{d}")), d);
    d
}

fn config(insecure: &[&str], credentials: CredentialStore) -> RegistryConfig {
    RegistryConfig {
        insecure_registries: insecure.iter().map(|s| s.to_string()).collect(),
        credentials,
        request_timeout: Duration::from_secs(10),
        backoff: Duration::from_millis(50),
        env_proxy: false,
        ..RegistryConfig::default()
    }
}

fn img(s: &str) -> ImageRef {
    ImageRef::parse(s).unwrap()
}

fn assert_no_secret(text: &str, password: &str) {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
    assert!(!text.contains(password), "password leaked: {text}");
    assert!(!text.contains(&basic), "basic auth leaked: {text}");
}

/// Forwards a GET/HEAD to `upstream` and copies what the client needs back.
fn forward(upstream: &str, req: &Req) -> Resp {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .build()
        .new_agent();
    let url = format!("http://{upstream}{}", req.target);
    let mut b = if req.method == "HEAD" {
        agent.head(&url)
    } else {
        agent.get(&url)
    };
    if let Some(a) = req.header("accept") {
        b = b.header("Accept", a);
    }
    let mut r = b.call().expect("upstream registry");
    let mut resp = Resp::status(r.status().as_u16());
    for name in ["content-type", "docker-content-digest", "www-authenticate"] {
        if let Some(v) = r.headers().get(name).and_then(|v| v.to_str().ok()) {
            resp.headers.push((name.to_string(), v.to_string()));
        }
    }
    if req.method == "HEAD" {
        if let Some(v) = r
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
        {
            resp.headers.push(("content-length".into(), v.to_string()));
        }
    } else {
        resp.body = r.body_mut().read_to_vec().unwrap();
    }
    resp
}

fn single_arch_tag_matches_registry_and_is_resolved_once() {
    let Some(f) = fixture() else { return };
    let src = RegistrySource::new(config(&[&f.open], CredentialStore::none()));
    let reference = format!("{}/demo/single:v1", f.open);
    let want = served(&reference);
    assert_eq!(src.resolve(&img(&reference), None).unwrap(), want);
    assert_eq!(src.requests_made(), 1, "one HEAD, digest from the header");

    // Duplicates (and the implicit latest tag) are asked once per run.
    let fresh = RegistrySource::new(config(&[&f.open], CredentialStore::none()));
    let implicit = format!("{}/demo/single", f.open);
    let requests: Vec<_> = [&reference, &reference, &implicit, &reference]
        .iter()
        .map(|r| (img(r), None))
        .collect();
    let progress = Mutex::new(Vec::new());
    let out =
        fresh.resolve_all_with_progress(&requests, &|d, t| progress.lock().unwrap().push((d, t)));
    assert_eq!(out[0].as_ref().unwrap(), &want);
    assert_eq!(out[1].as_ref().unwrap(), &want);
    assert_eq!(out[3].as_ref().unwrap(), &want);
    assert_eq!(
        out[2].as_ref().unwrap(),
        &served(&format!("{implicit}:latest"))
    );
    assert_eq!(fresh.requests_made(), 2);
    let mut p = progress.into_inner().unwrap();
    p.sort();
    assert_eq!(p, vec![(1, 2), (2, 2)]);

    // What a rule writes: the user's spelling plus the digest, which the registry then serves.
    let pinned = img(&reference).with_digest(&want);
    assert_eq!(pinned, format!("{reference}@{want}"));
    assert_eq!(served(&format!("{}/demo/single@{want}", f.open)), want);

    let missing = src.resolve(&img(&format!("{}/demo/single:nope", f.open)), None);
    assert!(
        matches!(missing, Err(ResolveError::NotFound { .. })),
        "{missing:?}"
    );
}

fn multi_arch_index_digest_and_platform_pin() {
    let Some(f) = fixture() else { return };
    let src = RegistrySource::new(config(&[&f.open], CredentialStore::none()));
    let reference = format!("{}/demo/multi:v1", f.open);
    let image = img(&reference);
    let index = served(&reference);
    assert_eq!(src.resolve(&image, None).unwrap(), index);

    let arm = Platform::parse("linux/arm64").unwrap();
    let amd = Platform::parse("linux/amd64").unwrap();
    let arm_digest = src.resolve(&image, Some(&arm)).unwrap();
    let amd_digest = src.resolve(&image, Some(&amd)).unwrap();
    assert_eq!(arm_digest, served_platform(&reference, "arm64"));
    assert_eq!(amd_digest, served_platform(&reference, "amd64"));
    assert_ne!(arm_digest, amd_digest);
    assert_ne!(arm_digest, index);

    let s390x = Platform::parse("linux/s390x").unwrap();
    match src.resolve(&image, Some(&s390x)) {
        Err(ResolveError::PlatformNotFound { available, .. }) => {
            assert_eq!(available, vec!["linux/amd64", "linux/arm64"]);
        }
        other => panic!("expected PlatformNotFound, got {other:?}"),
    }

    // A platform pin on a single-arch image checks the image's config.
    let single = img(&format!("{}/demo/single:v1", f.open));
    assert_eq!(
        src.resolve(&single, Some(&amd)).unwrap(),
        served(&format!("{}/demo/single:v1", f.open))
    );
    assert!(matches!(
        src.resolve(&single, Some(&arm)),
        Err(ResolveError::PlatformNotFound { .. })
    ));
}

fn basic_auth_with_htpasswd() {
    let Some(f) = fixture() else { return };
    let reference = format!("{}/demo/single:v1", f.auth);
    let image = img(&reference);
    let want = served(&format!("{}/demo/single:v1", f.open));
    let mut outputs = Vec::new();

    let anon = RegistrySource::new(config(&[&f.auth], CredentialStore::none()));
    let e = anon.resolve(&image, None).unwrap_err();
    assert!(matches!(e, ResolveError::Unauthorized { .. }), "{e:?}");
    assert!(
        e.to_string().contains("KUBE_HARDEN_REGISTRY_127_0_0_1_"),
        "{e}"
    );
    outputs.push(format!("{e} {e:?} {anon:?}"));

    let wrong = RegistrySource::new(config(
        &[&f.auth],
        CredentialStore::none().with(&f.auth, Credential::new(USER, format!("{}x", f.password))),
    ));
    let e = wrong.resolve(&image, None).unwrap_err();
    assert!(matches!(e, ResolveError::Unauthorized { .. }), "{e:?}");
    outputs.push(format!("{e} {e:?} {wrong:?} {:?}", wrong.config()));

    let explicit = RegistrySource::new(config(
        &[&f.auth],
        CredentialStore::none().with(&f.auth, Credential::new(USER, f.password.clone())),
    ));
    assert_eq!(explicit.resolve(&image, None).unwrap(), want);
    outputs.push(format!("{explicit:?} {:?}", explicit.config()));
    let made_up = format!("sha256:{}", "0".repeat(64));
    assert!(!explicit.exists(&image, &made_up).unwrap());

    // Environment variables (read through a lookup so the test does not touch the process env).
    let (u, p) = CredentialStore::env_var_names(&f.auth);
    let vars = [(u, USER.to_string()), (p, f.password.clone())];
    let env = RegistrySource::new(config(
        &[&f.auth],
        CredentialStore::none().with_env_lookup(Some(move |k: &str| {
            vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })),
    ));
    assert_eq!(env.resolve(&image, None).unwrap(), want);

    // A Docker config file with `auths`.
    let dir = std::env::temp_dir().join(format!("kh-docker-config-{}", nonce()));
    std::fs::create_dir_all(&dir).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{}", f.password));
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, f.auth),
    )
    .unwrap();
    let docker = RegistrySource::new(config(
        &[&f.auth],
        CredentialStore::none().with_docker_config_dir(Some(dir.clone())),
    ));
    assert_eq!(docker.resolve(&image, None).unwrap(), want);
    outputs.push(format!("{docker:?}"));

    // Credential helpers: `credHelpers` for this registry, and `credsStore` for any registry.
    // The helper is a script speaking the docker-credential protocol (`get`, server on stdin).
    let helper = dir.join("docker-credential-khtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\n[ \"$server\" = \"{}\" ] || {{ echo 'credentials not found in native keychain'; exit 1; }}\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{}\"}}' \"$server\"\n",
            f.auth, f.password
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for config_json in [
        format!(r#"{{"credHelpers":{{"{}":"khtest"}}}}"#, f.auth),
        r#"{"credsStore":"khtest"}"#.to_string(),
    ] {
        std::fs::write(dir.join("config.json"), &config_json).unwrap();
        let via_helper = RegistrySource::new(config(
            &[&f.auth],
            CredentialStore::none()
                .with_docker_config_dir(Some(dir.clone()))
                .with_helper_dir(Some(dir.clone())),
        ));
        assert_eq!(
            via_helper.resolve(&image, None).unwrap(),
            want,
            "{config_json}"
        );
        outputs.push(format!("{via_helper:?}"));
    }
    // A helper that does not know the registry means no credentials: Unauthorized.
    std::fs::write(dir.join("config.json"), r#"{"credsStore":"khtest"}"#).unwrap();
    let other = img(&format!(
        "localhost:{}/demo/single:v1",
        f.auth.rsplit(':').next().unwrap()
    ));
    let unknown = RegistrySource::new(config(
        &[other.registry()],
        CredentialStore::none()
            .with_docker_config_dir(Some(dir.clone()))
            .with_helper_dir(Some(dir.clone())),
    ));
    let e = unknown.resolve(&other, None).unwrap_err();
    assert!(matches!(e, ResolveError::Unauthorized { .. }), "{e:?}");
    outputs.push(format!("{e} {e:?}"));
    std::fs::remove_dir_all(&dir).unwrap();

    for o in &outputs {
        assert_no_secret(o, &f.password);
    }
}

/// `(service, scope)` of every token request.
type TokenLog = Arc<Mutex<Vec<(Option<String>, Option<String>)>>>;

/// A registry front that demands bearer tokens from its own `/token` endpoint (optionally only
/// for basic-auth credentials), then proxies to the real registry. distribution's own token auth
/// needs a signing certificate and JWTs; the client only sees the challenge/token/retry exchange,
/// which this front reproduces exactly, while every manifest still comes from the real registry.
struct TokenFront {
    server: http::Server,
    token_requests: TokenLog,
    token: String,
}

fn token_front(upstream: &str, require: Option<(String, String)>) -> TokenFront {
    let token = format!("tok-{}", nonce());
    let realm_host: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
    let log: TokenLog = Arc::new(Mutex::new(Vec::new()));
    let (t, rh, l, up) = (
        token.clone(),
        realm_host.clone(),
        log.clone(),
        upstream.to_string(),
    );
    let server = http::serve(move |req: &Req| {
        if req.path() == "/token" {
            l.lock()
                .unwrap()
                .push((req.query("service"), req.query("scope")));
            if let Some((u, p)) = &require {
                let want = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
                );
                if req.header("authorization") != Some(want.as_str()) {
                    return Resp::status(401);
                }
            }
            let mut r = Resp::status(200).header("Content-Type", "application/json");
            r.body = format!(r#"{{"token":"{t}","expires_in":300}}"#).into_bytes();
            return r;
        }
        if req.header("authorization") == Some(format!("Bearer {t}").as_str()) {
            return forward(&up, req);
        }
        let repo = req
            .path()
            .trim_start_matches("/v2/")
            .split("/manifests/")
            .next()
            .unwrap_or("")
            .split("/blobs/")
            .next()
            .unwrap_or("")
            .to_string();
        Resp::status(401).header(
            "WWW-Authenticate",
            &format!(
                r#"Bearer realm="http://{}/token",service="kh-test",scope="repository:{repo}:pull""#,
                rh.get().unwrap()
            ),
        )
    });
    realm_host.set(server.host()).unwrap();
    TokenFront {
        server,
        token_requests: log,
        token,
    }
}

fn bearer_token_challenge_flow() {
    let Some(f) = fixture() else { return };
    let want = served(&format!("{}/demo/multi:v1", f.open));

    // Anonymous tokens.
    let front = token_front(&f.open, None);
    let host = front.server.host();
    let src = RegistrySource::new(config(&[&host], CredentialStore::none()));
    let image = img(&format!("{host}/demo/multi:v1"));
    assert_eq!(src.resolve(&image, None).unwrap(), want);
    let arm = Platform::parse("linux/arm64").unwrap();
    assert_eq!(
        src.resolve(&image, Some(&arm)).unwrap(),
        served_platform(&format!("{}/demo/multi:v1", f.open), "arm64")
    );
    let log = front.token_requests.lock().unwrap().clone();
    assert_eq!(
        log.len(),
        1,
        "the token is reused for the repository: {log:?}"
    );
    assert_eq!(log[0].0.as_deref(), Some("kh-test"));
    assert_eq!(log[0].1.as_deref(), Some("repository:demo/multi:pull"));
    assert!(!format!("{src:?}").contains(&front.token));

    // Tokens only for credentials, sent as basic auth to the token service.
    let secret = format!("bearer-{}", nonce());
    let front = token_front(&f.open, Some((USER.into(), secret.clone())));
    let host = front.server.host();
    let image = img(&format!("{host}/demo/multi:v1"));
    let with = RegistrySource::new(config(
        &[&host],
        CredentialStore::none().with(&host, Credential::new(USER, secret.clone())),
    ));
    assert_eq!(with.resolve(&image, None).unwrap(), want);
    let without = RegistrySource::new(config(&[&host], CredentialStore::none()));
    let e = without.resolve(&image, None).unwrap_err();
    assert!(matches!(e, ResolveError::Unauthorized { .. }), "{e:?}");
    let wrong = RegistrySource::new(config(
        &[&host],
        CredentialStore::none().with(&host, Credential::new(USER, format!("{secret}-no"))),
    ));
    let e2 = wrong.resolve(&image, None).unwrap_err();
    assert!(matches!(e2, ResolveError::Unauthorized { .. }), "{e2:?}");
    for o in [
        format!("{e} {e:?} {e2} {e2:?}"),
        format!("{with:?} {without:?} {wrong:?} {:?}", with.config()),
    ] {
        assert_no_secret(&o, &secret);
        assert!(!o.contains(&front.token), "token leaked: {o}");
    }

    // A registry that is not listed as insecure is only spoken to over HTTPS: the plain-HTTP
    // front fails the TLS handshake instead of being used in the clear.
    let front = token_front(&f.open, None);
    let host = front.server.host();
    let strict = RegistrySource::new(RegistryConfig {
        retries: 0,
        request_timeout: Duration::from_secs(2),
        ..config(&[], CredentialStore::none())
    });
    let e = strict
        .resolve(&img(&format!("{host}/demo/multi:v1")), None)
        .unwrap_err();
    assert!(
        matches!(
            e,
            ResolveError::Network { .. } | ResolveError::Timeout { .. }
        ),
        "HTTPS is required: {e:?}"
    );
    assert!(front.token_requests.lock().unwrap().is_empty());
}

fn retries_after_429_and_503_then_succeeds() {
    let Some(f) = fixture() else { return };
    let want = served(&format!("{}/demo/single:v1", f.open));
    let count = Arc::new(AtomicUsize::new(0));
    let (c, up) = (count.clone(), f.open.clone());
    let flaky = http::serve(move |req: &Req| match c.fetch_add(1, Ordering::SeqCst) {
        0 => Resp::status(429).header("Retry-After", "1"),
        1 => Resp::status(503),
        _ => forward(&up, req),
    });
    let host = flaky.host();
    let src = RegistrySource::new(config(&[&host], CredentialStore::none()));
    let started = Instant::now();
    let got = src.resolve(&img(&format!("{host}/demo/single:v1")), None);
    assert_eq!(got.unwrap(), want);
    assert_eq!(count.load(Ordering::SeqCst), 3);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After honoured"
    );

    // Always 429: gives up after the configured retries.
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let busy = http::serve(move |_: &Req| {
        c.fetch_add(1, Ordering::SeqCst);
        Resp::status(429)
    });
    let host = busy.host();
    let src = RegistrySource::new(RegistryConfig {
        retries: 2,
        ..config(&[&host], CredentialStore::none())
    });
    let e = src
        .resolve(&img(&format!("{host}/demo/single:v1")), None)
        .unwrap_err();
    assert!(matches!(e, ResolveError::Network { .. }), "{e:?}");
    assert!(e.to_string().contains("HTTP 429 after 3 attempt(s)"), "{e}");
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

fn registry_that_never_answers_times_out() {
    let hole = http::black_hole();
    let host = hole.host();
    let src = RegistrySource::new(RegistryConfig {
        request_timeout: Duration::from_millis(700),
        retries: 1,
        backoff: Duration::from_millis(50),
        ..config(&[&host], CredentialStore::none())
    });
    let started = Instant::now();
    let e = src
        .resolve(&img(&format!("{host}/demo/single:v1")), None)
        .unwrap_err();
    match &e {
        ResolveError::Timeout { attempts, .. } => assert_eq!(*attempts, 2),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(e.hint().contains("--offline"));
}

fn lock_write_then_offline_read_round_trip() {
    let Some(f) = fixture() else { return };
    let src = RegistrySource::new(config(&[&f.open], CredentialStore::none()));
    let arm = Platform::parse("linux/arm64").unwrap();
    let requests = vec![
        (img(&format!("{}/demo/single:v1", f.open)), None),
        (img(&format!("{}/demo/multi:v1", f.open)), None),
        (img(&format!("{}/demo/multi:v1", f.open)), Some(arm.clone())),
    ];
    let results = src.resolve_all(&requests);
    let mut lock = ImageLock::new();
    for ((image, platform), digest) in requests.iter().zip(&results) {
        lock.set(image, platform.as_ref(), digest.as_ref().unwrap());
    }
    let dir = std::env::temp_dir().join(format!("kh-lock-rt-{}", nonce()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("images.lock.yaml");
    lock.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("kind: ImageLock"), "{text}");

    let loaded = ImageLock::load(&path).unwrap();
    assert_eq!(loaded, lock);
    // Offline: the lock alone, and a chain whose registry is never asked.
    let offline = LockSource::new(loaded.clone());
    let unreachable = RegistrySource::new(config(&[], CredentialStore::none()));
    let chain = ChainSource::new(LockSource::new(loaded), unreachable);
    let expected = [
        served(&format!("{}/demo/single:v1", f.open)),
        served(&format!("{}/demo/multi:v1", f.open)),
        served_platform(&format!("{}/demo/multi:v1", f.open), "arm64"),
    ];
    for (i, (image, platform)) in requests.iter().enumerate() {
        assert_eq!(
            offline.resolve(image, platform.as_ref()).unwrap(),
            expected[i]
        );
    }
    let via_chain = chain.resolve_all(&requests);
    for (got, want) in via_chain.iter().zip(&expected) {
        assert_eq!(got.as_ref().unwrap(), want);
    }
    assert_eq!(
        chain.second().requests_made(),
        0,
        "offline: no request made"
    );
    let unknown = offline.resolve(&img(&format!("{}/demo/other:v1", f.open)), None);
    assert!(matches!(unknown, Err(ResolveError::NotInLock { .. })));

    // Updating keeps the file stable: writing again gives the same bytes.
    let mut again = ImageLock::load(&path).unwrap();
    again.set(&requests[0].0, None, &expected[0]);
    assert_eq!(again.to_yaml_string(), text);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn verify_digests_finds_real_and_rejects_made_up() {
    let Some(f) = fixture() else { return };
    let src = RegistrySource::new(config(&[&f.open], CredentialStore::none()));
    let single = img(&format!("{}/demo/single:v1", f.open));
    let multi = img(&format!("{}/demo/multi:v1", f.open));
    assert!(src
        .exists(&single, &served(&format!("{}/demo/single:v1", f.open)))
        .unwrap());
    assert!(src
        .exists(&multi, &served(&format!("{}/demo/multi:v1", f.open)))
        .unwrap());
    let arm = served_platform(&format!("{}/demo/multi:v1", f.open), "arm64");
    assert!(src.exists(&multi, &arm).unwrap());
    let made_up = sha256_hex(format!("no such manifest {}", nonce()).as_bytes());
    assert!(!src.exists(&single, &made_up).unwrap());
    assert!(src.exists(&single, "sha256:abc").is_err());
}

fn get_fallback_without_digest_header_and_mismatch_detection() {
    let Some(f) = fixture() else { return };
    let want = served(&format!("{}/demo/multi:v1", f.open));

    // No Docker-Content-Digest at all: the body is fetched and hashed.
    let up = f.open.clone();
    let stripped = http::serve(move |req: &Req| {
        let mut r = forward(&up, req);
        r.headers.retain(|(k, _)| k != "docker-content-digest");
        r
    });
    let host = stripped.host();
    let src = RegistrySource::new(config(&[&host], CredentialStore::none()));
    assert_eq!(
        src.resolve(&img(&format!("{host}/demo/multi:v1")), None)
            .unwrap(),
        want
    );
    assert_eq!(src.requests_made(), 2, "HEAD, then GET");

    // A header that disagrees with the body is caught.
    let up = f.open.clone();
    let lying = http::serve(move |req: &Req| {
        let mut r = forward(&up, req);
        r.headers.retain(|(k, _)| k != "docker-content-digest");
        if req.method == "GET" {
            r.headers.push((
                "docker-content-digest".into(),
                format!("sha256:{}", "e".repeat(64)),
            ));
        }
        r
    });
    let host = lying.host();
    let src = RegistrySource::new(config(&[&host], CredentialStore::none()));
    let e = src
        .resolve(&img(&format!("{host}/demo/multi:v1")), None)
        .unwrap_err();
    assert!(matches!(e, ResolveError::Protocol { .. }), "{e:?}");
    let arm = Platform::parse("linux/arm64").unwrap();
    let e = src
        .resolve(&img(&format!("{host}/demo/multi:v1")), Some(&arm))
        .unwrap_err();
    assert!(matches!(e, ResolveError::Protocol { .. }), "{e:?}");
}

// ---------------------------------------------------------------------------------------------
// The pin-image-digests rule end to end: the kube-harden command against the real registry.

/// Runs the kube-harden binary with only the pin rule, no lock from the environment, and a
/// Docker config dir that holds nothing.
fn harden(args: &[&str], input: &str, env: &[(String, String)]) -> (bool, String, String) {
    use std::io::Write;
    let empty = base_dir().join("no-docker-config");
    std::fs::create_dir_all(&empty).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kube-harden"));
    cmd.args(args)
        .env_remove("KUBE_HARDEN_LOCK")
        .env("DOCKER_CONFIG", &empty)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `kube-harden lock MANIFEST -o OUT --insecure-registry=REGISTRY EXTRA…`.
fn lock_with(
    registry: &str,
    manifest: &Path,
    out: &Path,
    extra: &[&str],
) -> (bool, String, String) {
    let insecure = format!("--insecure-registry={registry}");
    let mut args = vec![
        "lock",
        manifest.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        &insecure,
    ];
    args.extend_from_slice(extra);
    harden(&args, "", &[])
}

const ONLY_PIN: &str = "--disable=run-as-non-root,seccomp,no-privilege-escalation,drop-capabilities,read-only-root-filesystem,writable-tmp,default-probes,pod-disruption-budget";

fn pod(images: &[(&str, &str)], init: &[(&str, &str)]) -> String {
    let list = |items: &[(&str, &str)]| {
        items
            .iter()
            .map(|(n, i)| format!("  - name: {n}\n    image: {i}\n"))
            .collect::<String>()
    };
    let mut text = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: demo\nspec:\n  containers:\n{}",
        list(images)
    );
    if !init.is_empty() {
        text.push_str(&format!("  initContainers:\n{}", list(init)));
    }
    text
}

/// The image fields of the output's pod, in order (containers, then init containers).
fn images_of(output: &str) -> Vec<String> {
    let doc = kube_harden::yaml::tree::parse_document(output).unwrap();
    let v = doc.root.unwrap().to_value();
    ["containers", "initContainers"]
        .iter()
        .flat_map(|k| v["spec"][k].as_array().cloned().unwrap_or_default())
        .map(|c| c["image"].as_str().unwrap().to_string())
        .collect()
}

fn cli_pins_every_image_to_the_digest_the_registry_serves() {
    let Some(f) = fixture() else { return };
    let single = format!("{}/demo/single:v1", f.open);
    let multi = format!("{}/demo/multi:v1", f.open);
    let implicit = format!("{}/demo/single", f.open);
    let input = pod(&[("a", &single), ("b", &multi)], &[("init", &implicit)]);
    let insecure = format!("--insecure-registry={}", f.open);
    let (ok, out, err) = harden(&[ONLY_PIN, &insecure], &input, &[]);
    assert!(ok, "{err}");
    let pinned = images_of(&out);
    assert_eq!(
        pinned,
        vec![
            format!("{single}@{}", served(&single)),
            format!("{multi}@{}", served(&multi)),
            format!("{implicit}@{}", served(&format!("{implicit}:latest"))),
        ]
    );
    // Every digest written is one the registry serves under that name.
    for p in &pinned {
        let (name, digest) = p.split_once('@').unwrap();
        let repo = img(name).written_name();
        assert_eq!(&served(&format!("{repo}@{digest}")), digest);
    }
    // A second run finds nothing to do (and needs no registry: the digests are written).
    let (ok, again, err) = harden(&[ONLY_PIN, "--offline"], &out, &[]);
    assert!(ok, "{err}");
    assert_eq!(again, out);

    // Platform pin from the policy: the arm64 manifest inside the index.
    let dir = base_dir();
    let policy = dir.join("platform-policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: kube-harden.dev/v1alpha1\nkind: HardeningPolicy\nspec:\n  images:\n    platform: linux/arm64\n",
    )
    .unwrap();
    let input = pod(&[("b", &multi)], &[]);
    let (ok, out, err) = harden(
        &[ONLY_PIN, &insecure, "--config", policy.to_str().unwrap()],
        &input,
        &[],
    );
    assert!(ok, "{err}");
    assert_eq!(
        images_of(&out),
        vec![format!("{multi}@{}", served_platform(&multi, "arm64"))]
    );
}

fn cli_lock_then_offline_and_fail_closed() {
    let Some(f) = fixture() else { return };
    let dir = base_dir().join(format!("lock-{}", nonce()));
    std::fs::create_dir_all(&dir).unwrap();
    let single = format!("{}/demo/single:v1", f.open);
    let multi = format!("{}/demo/multi:v1", f.open);
    let manifest = dir.join("pod.yaml");
    std::fs::write(&manifest, pod(&[("a", &single), ("b", &multi)], &[])).unwrap();
    let lock = dir.join("images.lock");
    let insecure = format!("--insecure-registry={}", f.open);
    let lock_cmd =
        |manifest: &Path, out: &Path, extra: &[&str]| lock_with(&f.open, manifest, out, extra);
    let (ok, _, err) = lock_cmd(&manifest, &lock, &[]);
    assert!(ok, "{err}");
    assert!(err.contains("2 images (2 added"), "{err}");
    let text = std::fs::read_to_string(&lock).unwrap();
    let parsed = ImageLock::from_yaml_str(&text).unwrap();
    assert_eq!(
        parsed.digest(&img(&single), None),
        Some(served(&single).as_str())
    );
    assert_eq!(
        parsed.digest(&img(&multi), None),
        Some(served(&multi).as_str())
    );

    // Offline with the lock: the same output as online, and no registry needed.
    let input = std::fs::read_to_string(&manifest).unwrap();
    let (ok, offline, err) = harden(
        &[ONLY_PIN, "--offline", "--lock", lock.to_str().unwrap()],
        &input,
        &[],
    );
    assert!(ok, "{err}");
    let (ok, online, err) = harden(&[ONLY_PIN, &insecure], &input, &[]);
    assert!(ok, "{err}");
    assert_eq!(offline, online);

    // Updating the lock: unchanged when nothing changed (same bytes), new images added.
    let (ok, _, err) = lock_cmd(&manifest, &lock, &[]);
    assert!(ok, "{err}");
    assert!(
        err.contains("(0 added, 0 updated, 0 removed, facts read for 0)"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), text);

    // --prune drops the entries no input asks for any more (here: the multi-arch image), keeping
    // the others as they were; without --prune they stay.
    let pruned = dir.join("pruned.lock");
    std::fs::copy(&lock, &pruned).unwrap();
    let only_single = dir.join("single.yaml");
    std::fs::write(&only_single, pod(&[("a", &single)], &[])).unwrap();
    let (ok, _, err) = lock_cmd(&only_single, &pruned, &[]);
    assert!(ok, "{err}");
    assert!(
        err.contains("(0 added, 0 updated, 0 removed, facts read for 0)"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&pruned).unwrap(), text);
    let (ok, _, err) = lock_cmd(&only_single, &pruned, &["--prune"]);
    assert!(ok, "{err}");
    assert!(err.contains("1 removed"), "{err}");
    let after = ImageLock::from_yaml_str(&std::fs::read_to_string(&pruned).unwrap()).unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(
        after.digest(&img(&single), None),
        Some(served(&single).as_str())
    );
    assert_eq!(after.digest(&img(&multi), None), None);

    // Offline without the image in the lock: fail closed, nothing on stdout, every image named
    // with how to fix it.
    let extra = format!("{}/demo/single:latest", f.open);
    let input = pod(
        &[
            ("a", &single),
            ("c", &extra),
            ("d", "ghcr.io/acme/nothing:1"),
        ],
        &[],
    );
    let (ok, out, err) = harden(
        &[ONLY_PIN, "--offline", "--lock", lock.to_str().unwrap()],
        &input,
        &[],
    );
    assert!(!ok);
    assert!(out.is_empty(), "stdout must stay empty: {out}");
    assert!(err.contains("2 images could not be pinned"), "{err}");
    assert!(
        err.contains(&extra) && err.contains("ghcr.io/acme/nothing:1"),
        "{err}"
    );
    assert!(
        err.contains("How to fix") && err.contains("kube-harden lock"),
        "{err}"
    );

    // onUnresolved: warn keeps the tag and says why; the rest is pinned.
    let policy = dir.join("warn.yaml");
    std::fs::write(
        &policy,
        "apiVersion: kube-harden.dev/v1alpha1\nkind: HardeningPolicy\nspec:\n  images:\n    onUnresolved: warn\n",
    )
    .unwrap();
    let input = pod(
        &[
            ("a", &single),
            ("z", &format!("{}/demo/single:nope", f.open)),
        ],
        &[],
    );
    let (ok, out, err) = harden(
        &[ONLY_PIN, &insecure, "--config", policy.to_str().unwrap()],
        &input,
        &[],
    );
    assert!(ok, "{err}");
    assert_eq!(
        images_of(&out),
        vec![
            format!("{single}@{}", served(&single)),
            format!("{}/demo/single:nope", f.open)
        ]
    );
    assert!(
        err.contains("warning") && err.contains("not found"),
        "{err}"
    );
}

fn cli_verify_digests_catches_a_digest_that_does_not_exist() {
    let Some(f) = fixture() else { return };
    let single = format!("{}/demo/single:v1", f.open);
    let real = format!("{single}@{}", served(&single));
    let made_up = format!("{single}@sha256:{}", "0".repeat(64));
    let insecure = format!("--insecure-registry={}", f.open);
    let (ok, out, err) = harden(
        &[ONLY_PIN, &insecure, "--verify-digests"],
        &pod(&[("a", &real)], &[]),
        &[],
    );
    assert!(ok, "{err}");
    assert_eq!(images_of(&out), vec![real.clone()]);
    let (ok, out, err) = harden(
        &[ONLY_PIN, &insecure, "--verify-digests"],
        &pod(&[("a", &real), ("b", &made_up)], &[]),
        &[],
    );
    assert!(!ok && out.is_empty(), "{err}");
    assert!(
        err.contains("no manifest with this digest") && err.contains(&made_up),
        "{err}"
    );
    // Without --verify-digests an existing digest is never questioned.
    let (ok, _, err) = harden(&[ONLY_PIN, "--offline"], &pod(&[("b", &made_up)], &[]), &[]);
    assert!(ok, "{err}");
}

fn cli_credentials_from_the_environment_never_appear_in_output() {
    let Some(f) = fixture() else { return };
    let reference = format!("{}/demo/single:v1", f.auth);
    let want = served(&format!("{}/demo/single:v1", f.open));
    let (u, p) = CredentialStore::env_var_names(&f.auth);
    let dir = base_dir();
    let results = dir.join(format!("creds-results-{}.yaml", nonce()));
    let insecure = format!("--insecure-registry={}", f.auth);
    let env = [
        (u.clone(), USER.to_string()),
        (p.clone(), f.password.clone()),
    ];
    let (ok, out, err) = harden(
        &[ONLY_PIN, &insecure, "--results", results.to_str().unwrap()],
        &pod(&[("a", &reference)], &[]),
        &env,
    );
    assert!(ok, "{err}");
    assert_eq!(images_of(&out), vec![format!("{reference}@{want}")]);
    let written = std::fs::read_to_string(&results).unwrap();
    for text in [&out, &err, &written] {
        assert_no_secret(text, &f.password);
    }
    // A wrong password: an error naming the registry and how to log in, not the password.
    let wrong = [(u, USER.to_string()), (p, format!("{}x", f.password))];
    let (ok, out, err) = harden(
        &[ONLY_PIN, &insecure],
        &pod(&[("a", &reference)], &[]),
        &wrong,
    );
    assert!(!ok && out.is_empty());
    assert!(err.contains("access denied"), "{err}");
    assert_no_secret(&err, &f.password);
}

// ---------------------------------------------------------------------------------------------
// Image facts: `kube-harden lock` reads the config and the layers (streamed, top layer first)
// through the same client, and the hardening run decides from them.

/// One entry of a test layer.
enum Entry<'a> {
    Dir(&'a str, u64, u32),
    File(&'a str, u32, &'a str),
    Capability(&'a str),
}

fn tar_layer(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        match e {
            Entry::Dir(p, owner, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_uid(*owner);
                h.set_gid(*owner);
                h.set_mode(*mode);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            Entry::File(p, mode, text) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(text.len() as u64);
                b.append_data(&mut h, p, text.as_bytes()).unwrap();
            }
            Entry::Capability(p) => {
                // cap_net_bind_service+ep, as `setcap` writes it and Docker exports it.
                let cap: [u8; 20] = [1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                b.append_pax_extensions([("SCHILY.xattr.security.capability", &cap[..])])
                    .unwrap();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o755);
                h.set_size(3);
                b.append_data(&mut h, p, &b"elf"[..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Uploads a blob (monolithic POST + PUT) and returns its digest.
fn push_blob(host: &str, repo: &str, bytes: &[u8]) -> String {
    let digest = sha256_hex(bytes);
    oci_push::upload(
        &ureq::Agent::new_with_defaults(),
        host,
        repo,
        &digest,
        &mut &bytes[..],
    );
    digest
}

/// Pushes an image (layers bottom first, each with its media type) under `repo:tag`.
fn push_image(host: &str, repo: &str, tag: &str, config: &Value, layers: &[(Vec<u8>, &str)]) {
    let config = serde_json::to_vec(config).unwrap();
    let config_digest = push_blob(host, repo, &config);
    let layers: Vec<Value> = layers
        .iter()
        .map(|(bytes, media)| {
            serde_json::json!({"mediaType": media, "digest": push_blob(host, repo, bytes), "size": bytes.len()})
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": layers,
    });
    ureq::Agent::new_with_defaults()
        .put(&format!("http://{host}/v2/{repo}/manifests/{tag}"))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .send(&serde_json::to_vec(&manifest).unwrap()[..])
        .unwrap();
}

const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A named-user app: passwd in the lower (gzip) layer, a whiteout and a setuid helper in the
/// upper (plain tar) layer, a file-capability binary, VOLUME /data, a HEALTHCHECK.
fn push_named_user_app(host: &str, repo: &str) {
    let base = tar_layer(&[
        Entry::Dir("etc/", 0, 0o755),
        Entry::File(
            "etc/passwd",
            0o644,
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        ),
        Entry::File(
            "etc/group",
            0o644,
            "root:x:0:\napp:x:1000:\nweb:x:2000:app\n",
        ),
        Entry::Dir("tmp/", 0, 0o1777),
        Entry::Dir("var/", 0, 0o755),
        Entry::Dir("var/cache/", 0, 0o755),
        Entry::Dir("var/cache/app/", 1000, 0o755),
        Entry::File("var/cache/app/stale.db", 0o600, "x"),
        Entry::Dir("srv/", 0, 0o755),
        Entry::File("srv/index.html", 0o644, "hello"),
        Entry::Dir("usr/", 0, 0o755),
        Entry::Dir("usr/bin/", 0, 0o755),
        Entry::Capability("usr/bin/ping"),
    ]);
    let top = tar_layer(&[
        Entry::Dir("var/cache/app/", 1000, 0o755),
        Entry::File("var/cache/app/.wh.stale.db", 0o644, ""),
        Entry::Dir("usr/local/", 0, 0o755),
        Entry::Dir("usr/local/bin/", 0, 0o755),
        Entry::File("usr/local/bin/helper", 0o4755, "elf"),
        Entry::File("usr/local/bin/app", 0o755, "elf"),
    ]);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {
            "User": "app",
            "ExposedPorts": {"8080/tcp": {}},
            "Volumes": {"/data": {}},
            "Entrypoint": ["/usr/local/bin/app"],
            "Env": ["PATH=/usr/local/bin:/usr/bin"],
            "Healthcheck": {"Test": ["CMD", "/usr/local/bin/app", "check"], "Interval": 15_000_000_000u64, "Retries": 2}
        },
        "rootfs": {"type": "layers", "diff_ids": []}
    });
    push_image(
        host,
        repo,
        "v1",
        &config,
        &[(gzip(&base), TAR_GZIP), (top, TAR)],
    );
}

fn lock_facts(lock_path: &Path, image: &str) -> Value {
    let lock: Value =
        kube_harden::yaml::tree::parse_document(&std::fs::read_to_string(lock_path).unwrap())
            .unwrap()
            .root
            .unwrap()
            .to_value();
    lock["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["image"] == image)
        .unwrap_or_else(|| panic!("{image} not in the lock: {lock}"))["facts"]
        .clone()
}

fn cli_lock_records_image_facts_and_the_run_decides_from_them() {
    let Some(f) = fixture() else { return };
    let repo = format!("facts/app-{}", nonce());
    push_named_user_app(&f.open, &repo);
    let image = format!("{}/{repo}:v1", f.open);
    let root_repo = format!("facts/root-{}", nonce());
    let root_layer = tar_layer(&[
        Entry::Dir("tmp/", 0, 0o1777),
        Entry::Dir("var/www/", 0, 0o755),
    ]);
    push_image(
        &f.open,
        &root_repo,
        "v1",
        &serde_json::json!({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["httpd"]}}),
        &[(gzip(&root_layer), TAR_GZIP)],
    );
    let root_image = format!("{}/{root_repo}:v1", f.open);
    let dir = base_dir().join(format!("facts-{}", nonce()));
    std::fs::create_dir_all(&dir).unwrap();
    let lock = dir.join("images.lock");
    let input = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  selector:\n    matchLabels: {{app: a}}\n  template:\n    metadata:\n      labels: {{app: a}}\n    spec:\n      containers:\n      - name: app\n        image: {image}\n      - name: web\n        image: {root_image}\n"
    );
    let manifests = dir.join("app.yaml");
    std::fs::write(&manifests, &input).unwrap();
    let lock_cmd = |extra: &[&str]| lock_with(&f.open, &manifests, &lock, extra);
    let (ok, _, err) = lock_cmd(&[]);
    assert!(ok, "{err}");
    assert!(err.contains("facts read for 2"), "{err}");
    let facts = lock_facts(&lock, &image);
    assert_eq!(facts["user"], "app");
    assert_eq!(
        (facts["uid"].as_u64(), facts["gid"].as_u64()),
        (Some(1000), Some(1000))
    );
    assert_eq!(facts["groups"], serde_json::json!([2000]));
    assert_eq!(facts["exposedPorts"], serde_json::json!(["8080/tcp"]));
    assert_eq!(facts["volumes"], serde_json::json!(["/data"]));
    assert_eq!(facts["healthcheck"]["intervalSeconds"], 15);
    let dirs = facts["filesystem"]["dirs"].as_array().unwrap();
    let d = |p: &str| {
        dirs.iter()
            .find(|d| d["path"] == p)
            .unwrap_or_else(|| panic!("{p}: {dirs:?}"))
            .clone()
    };
    assert_eq!(d("/tmp")["mode"], "1777");
    assert_eq!(d("/tmp")["files"], false);
    assert_eq!(d("/var/cache/app")["uid"], 1000);
    assert_eq!(
        d("/var/cache/app")["files"],
        false,
        "the upper layer's whiteout removed the file"
    );
    assert!(
        d("/data").get("uid").is_none(),
        "VOLUME path absent from the layers"
    );
    let privileged = &facts["filesystem"]["privilegedFiles"];
    assert_eq!(
        privileged,
        &serde_json::json!([
            {"path": "/usr/bin/ping", "capabilities": true},
            {"path": "/usr/local/bin/helper", "setuid": true}
        ])
    );
    let root = lock_facts(&lock, &root_image);
    assert_eq!(
        (root["user"].as_str(), root["uid"].as_u64()),
        (Some(""), Some(0))
    );

    // The hardening run, offline from the lock: the named user gets its numeric uid, the app's
    // writable directories and VOLUME get emptyDirs; the root image keeps root and a writable
    // root filesystem, with a warning.
    let lock_flag = format!("--lock={}", lock.display());
    let (ok, out, err) = harden(&["--offline", &lock_flag], &input, &[]);
    assert!(ok, "{err}");
    let doc = kube_harden::yaml::tree::parse_document(&out)
        .unwrap()
        .root
        .unwrap()
        .to_value();
    let pod = &doc["spec"]["template"]["spec"];
    let app = &pod["containers"][0];
    assert_eq!(app["securityContext"]["runAsUser"], 1000, "{out}");
    assert_eq!(
        app["securityContext"]["readOnlyRootFilesystem"], true,
        "{out}"
    );
    let mounts: Vec<&str> = app["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert_eq!(mounts, ["/tmp", "/data", "/var/cache/app"], "{out}");
    let web = &pod["containers"][1];
    assert!(
        web["securityContext"].get("runAsNonRoot").is_none(),
        "{out}"
    );
    assert!(
        web["securityContext"]
            .get("readOnlyRootFilesystem")
            .is_none(),
        "{out}"
    );
    assert!(
        pod["securityContext"].get("runAsNonRoot").is_none(),
        "a root container: not at pod level"
    );
    assert!(
        err.contains("runs as root") || err.contains("uid 0"),
        "{err}"
    );

    // Unchanged images: a second `lock` reads nothing and leaves the file byte for byte.
    let before = std::fs::read(&lock).unwrap();
    let (ok, _, err) = lock_cmd(&[]);
    assert!(ok, "{err}");
    assert!(err.contains("facts read for 0"), "{err}");
    assert_eq!(std::fs::read(&lock).unwrap(), before);

    // A layer budget too small for the layers: the filesystem facts are unknown, with the reason;
    // the config facts and the passwd lookup stand only when the layers were read.
    let policy = dir.join("budget.yaml");
    std::fs::write(
        &policy,
        "apiVersion: kube-harden.dev/v1alpha1\nkind: HardeningPolicy\nspec:\n  images:\n    layerBudget: 1Ki\n",
    )
    .unwrap();
    let (ok, _, err) = lock_cmd(&["--refresh", "--config", policy.to_str().unwrap()]);
    assert!(ok, "{err}");
    let facts = lock_facts(&lock, &image);
    assert!(facts.get("filesystem").is_none(), "{facts}");
    let unknown = facts["unknown"].to_string();
    assert!(
        unknown.contains("layer budget of 1 KiB exceeded"),
        "{unknown}"
    );
    assert!(err.contains("layer budget of 1 KiB exceeded"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// TLS with a private CA: the system trust store (SSL_CERT_FILE here) is honoured besides the
// bundled Mozilla roots.

/// Starts a TLS registry over the shared storage with a certificate from a fresh private CA;
/// returns it, its host and the CA certificate's path.
fn start_tls_registry(dir: &Path) -> Result<(Child, String, PathBuf), String> {
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&tls)
            .output()
            .map_err(|e| format!("openssl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=kh test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ])?;
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ])?;
    std::fs::write(
        tls.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        "server.pem",
        "-extfile",
        "ext.cnf",
    ])?;
    let (child, host) = start_registry(
        dir,
        "tls",
        None,
        Some((&tls.join("server.pem"), &tls.join("server.key"))),
    )?;
    Ok((child, host, tls.join("ca.pem")))
}

fn https_registry_behind_a_private_ca_via_ssl_cert_file() {
    let Some(f) = fixture() else { return };
    let dir = base_dir();
    let (mut child, host, ca) = match start_tls_registry(&dir) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    let image = format!("{host}/demo/single:v1");
    let served_digest = served(&format!("{}/demo/single:v1", f.open));
    let input = pod(&[("a", &image)], &[]);
    // The CA in SSL_CERT_FILE: verified TLS, the same digest the plain registry serves.
    let with_ca = [("SSL_CERT_FILE".to_string(), ca.display().to_string())];
    let (ok, out, err) = harden(&[ONLY_PIN], &input, &with_ca);
    assert!(ok, "{err}");
    assert_eq!(images_of(&out), vec![format!("{image}@{served_digest}")]);
    // Without it the certificate is unknown: fail closed, saying why.
    let empty = dir.join("empty-ca.pem");
    std::fs::write(&empty, "").unwrap();
    let without = [("SSL_CERT_FILE".to_string(), empty.display().to_string())];
    let (ok, out, err) = harden(&[ONLY_PIN], &input, &without);
    assert!(!ok, "an unknown CA must not be trusted: {out}");
    assert!(out.is_empty());
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("UnknownIssuer"),
        "{err}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

fn one_deadline_bounds_the_whole_run() {
    // A registry that accepts and never answers, with the default retries and a per-request
    // limit longer than the deadline: the run ends at the deadline, which the error names.
    let hole = http::black_hole();
    let host = hole.host();
    let src = RegistrySource::new(RegistryConfig {
        deadline: Some(Duration::from_secs(2)),
        ..config(&[&host], CredentialStore::none())
    });
    let started = Instant::now();
    let e = src
        .resolve(&img(&format!("{host}/demo/single:v1")), None)
        .unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2600), "{took:?}");
    match &e {
        ResolveError::Timeout { after, .. } => assert_eq!(*after, Duration::from_secs(2)),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(e.to_string().contains("within 2.0s"), "{e}");
    assert!(e.hint().contains("registryTimeoutSeconds"), "{}", e.hint());

    // `Retry-After: 3600`: no waiting past the deadline; the answer comes at once.
    let busy = http::serve(|_: &Req| Resp::status(503).header("Retry-After", "3600"));
    let host = busy.host();
    let src = RegistrySource::new(RegistryConfig {
        deadline: Some(Duration::from_secs(2)),
        max_backoff: Duration::from_secs(3600),
        ..config(&[&host], CredentialStore::none())
    });
    let started = Instant::now();
    let e = src
        .resolve(&img(&format!("{host}/demo/single:v1")), None)
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(e.to_string().contains("HTTP 503"), "{e}");

    // The CLI: --registry-timeout, and the policy's registryTimeoutSeconds.
    let hole = http::black_hole();
    let host = hole.host();
    let input = pod(&[("a", &format!("{host}/demo/single:v1"))], &[]);
    let insecure = format!("--insecure-registry={host}");
    let started = Instant::now();
    let (ok, out, err) = harden(&[ONLY_PIN, &insecure, "--registry-timeout=1"], &input, &[]);
    assert!(!ok && out.is_empty());
    assert!(
        started.elapsed() < Duration::from_millis(1800),
        "{:?}",
        started.elapsed()
    );
    assert!(err.contains("within 1.0s"), "{err}");
    let policy = base_dir().join("deadline-policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: kube-harden.dev/v1alpha1\nkind: HardeningPolicy\nspec:\n  images:\n    registryTimeoutSeconds: 1\n",
    )
    .unwrap();
    let started = Instant::now();
    let (ok, _, err) = harden(
        &[ONLY_PIN, &insecure, "--config", policy.to_str().unwrap()],
        &input,
        &[],
    );
    assert!(!ok);
    assert!(
        started.elapsed() < Duration::from_millis(1800),
        "{:?}",
        started.elapsed()
    );
    assert!(err.contains("within 1.0s"), "{err}");
}

fn main() {
    trials::main(vec![
        trials::needs(
            "single_arch_tag_matches_registry_and_is_resolved_once",
            REGISTRY,
            single_arch_tag_matches_registry_and_is_resolved_once,
        ),
        trials::needs(
            "multi_arch_index_digest_and_platform_pin",
            REGISTRY,
            multi_arch_index_digest_and_platform_pin,
        ),
        trials::needs(
            "basic_auth_with_htpasswd",
            REGISTRY,
            basic_auth_with_htpasswd,
        ),
        trials::needs(
            "bearer_token_challenge_flow",
            REGISTRY,
            bearer_token_challenge_flow,
        ),
        trials::needs(
            "retries_after_429_and_503_then_succeeds",
            REGISTRY,
            retries_after_429_and_503_then_succeeds,
        ),
        trials::test(
            "registry_that_never_answers_times_out",
            registry_that_never_answers_times_out,
        ),
        trials::needs(
            "lock_write_then_offline_read_round_trip",
            REGISTRY,
            lock_write_then_offline_read_round_trip,
        ),
        trials::needs(
            "verify_digests_finds_real_and_rejects_made_up",
            REGISTRY,
            verify_digests_finds_real_and_rejects_made_up,
        ),
        trials::needs(
            "get_fallback_without_digest_header_and_mismatch_detection",
            REGISTRY,
            get_fallback_without_digest_header_and_mismatch_detection,
        ),
        trials::needs(
            "cli_pins_every_image_to_the_digest_the_registry_serves",
            REGISTRY,
            cli_pins_every_image_to_the_digest_the_registry_serves,
        ),
        trials::needs(
            "cli_lock_then_offline_and_fail_closed",
            REGISTRY,
            cli_lock_then_offline_and_fail_closed,
        ),
        trials::needs(
            "cli_verify_digests_catches_a_digest_that_does_not_exist",
            REGISTRY,
            cli_verify_digests_catches_a_digest_that_does_not_exist,
        ),
        trials::needs(
            "cli_credentials_from_the_environment_never_appear_in_output",
            REGISTRY,
            cli_credentials_from_the_environment_never_appear_in_output,
        ),
        trials::needs(
            "cli_lock_records_image_facts_and_the_run_decides_from_them",
            REGISTRY,
            cli_lock_records_image_facts_and_the_run_decides_from_them,
        ),
        trials::needs(
            "https_registry_behind_a_private_ca_via_ssl_cert_file",
            REGISTRY,
            https_registry_behind_a_private_ca_via_ssl_cert_file,
        ),
        trials::test(
            "one_deadline_bounds_the_whole_run",
            one_deadline_bounds_the_whole_run,
        ),
    ])
}
