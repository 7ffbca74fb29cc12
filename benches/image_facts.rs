//! Image-facts benchmark: `RegistrySource::image_facts_all` on 20 images with 100 MiB of layers
//! each, from a real local registry (Debian's `docker-registry`), one image at a time and 16 at
//! once, in one run. Reports both times, the speed-up (target ≥ 6×) and this process's peak RSS
//! (target ≤ 64 MiB whatever the layer size: the layers are streamed, never held).
//!
//! Real registries serve one connection at tens of MB/s, so concurrency is what makes `lock`
//! fast; on loopback every connection would be as fast as the CPU. A small TCP proxy in this
//! process therefore paces each connection to `--mbps` MB/s (default 40) in front of the
//! registry; its buffers are 64 KiB per connection.
//!
//! Each image: a gzip layer of 50 MiB (an `/etc/passwd` naming the user, directories, a few
//! thousand files) and an uncompressed layer of 50 MiB (one large file of random bytes, a
//! whiteout), `USER app`. The images are generated and uploaded as streams.
//!
//! Run: `bash scripts/registry-setup.sh` once, then
//! `CARGO_BUILD_JOBS=1 cargo bench --bench image_facts`
//! (`-- --images N --mib M --mbps R --concurrency C` change the defaults 20, 100, 40, 16).

#[path = "support/args.rs"]
mod args;
#[path = "../tests/support/oci_push.rs"]
mod oci_push;
use args::arg;

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kube_harden::digest::auth::CredentialStore;
use kube_harden::digest::{FactsQuestion, ImageRef, RegistryConfig, RegistrySource};
use sha2::{Digest as _, Sha256};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// xorshift bytes: incompressible, reproducible, no memory.
struct Noise {
    state: u64,
    left: u64,
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX))
            & !7;
        let n = if n == 0 {
            buf.len().min(self.left as usize)
        } else {
            n
        };
        for chunk in buf[..n].chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            let b = self.state.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Writes a layer to `path` and returns (digest, size).
fn write_layer(path: &Path, seed: u64, mib: u64, gzip: bool) -> (String, u64) {
    let file = std::fs::File::create(path).unwrap();
    let sink: Box<dyn Write> = if gzip {
        Box::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::fast(),
        ))
    } else {
        Box::new(file)
    };
    let mut b = tar::Builder::new(sink);
    let dir = |b: &mut tar::Builder<Box<dyn Write>>, p: &str, uid: u64, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_mode(mode);
        h.set_size(0);
        b.append_data(&mut h, p, io::empty()).unwrap();
    };
    let file = |b: &mut tar::Builder<Box<dyn Write>>, p: &str, mode: u32, size: u64, seed: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(mode);
        h.set_size(size);
        b.append_data(
            &mut h,
            p,
            Noise {
                state: seed | 1,
                left: size,
            },
        )
        .unwrap();
    };
    if gzip {
        dir(&mut b, "etc/", 0, 0o755);
        let passwd = b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
        let mut h = tar::Header::new_gnu();
        h.set_size(passwd.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, "etc/passwd", &passwd[..]).unwrap();
        dir(&mut b, "tmp/", 0, 0o1777);
        dir(&mut b, "var/lib/app/", 1000, 0o755);
        // Many small files, then one large one up to the size.
        let per = 16 * 1024;
        let count = 2000u64;
        dir(&mut b, "usr/share/app/", 0, 0o755);
        for i in 0..count {
            file(&mut b, &format!("usr/share/app/f{i}"), 0o644, per, seed + i);
        }
        file(
            &mut b,
            "usr/share/app/big",
            0o644,
            (mib << 20).saturating_sub(count * per),
            seed,
        );
    } else {
        dir(&mut b, "opt/", 0, 0o755);
        file(&mut b, "opt/blob", 0o644, mib << 20, seed);
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o644);
        b.append_data(&mut h, "usr/share/app/.wh.f0", io::empty())
            .unwrap();
    }
    let sink = b.into_inner().unwrap();
    drop(sink);
    let mut hasher = Sha256::new();
    let size = io::copy(&mut std::fs::File::open(path).unwrap(), &mut hasher).unwrap();
    (format!("sha256:{:x}", hasher.finalize()), size)
}

fn upload(agent: &ureq::Agent, host: &str, repo: &str, path: &Path, digest: &str) {
    let mut file = std::fs::File::open(path).unwrap();
    oci_push::upload(agent, host, repo, digest, &mut file);
}

fn start_registry(dir: &Path) -> (Child, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        "version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {}}}}}\nhttp: {{addr: 127.0.0.1:{port}}}\n",
        dir.join("data").display()
    );
    let cfg = dir.join("registry.yml");
    std::fs::write(&cfg, config).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker-registry (bash scripts/registry-setup.sh)");
    let host = format!("127.0.0.1:{port}");
    let mut child = child;
    for _ in 0..200 {
        if TcpStream::connect(&host).is_ok() {
            return (child, host);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("docker-registry did not come up");
}

/// A TCP proxy pacing each connection's downstream bytes to `bytes_per_sec`.
fn paced_proxy(upstream: String, bytes_per_sec: u64) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let upstream = upstream.clone();
            std::thread::spawn(move || {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    return;
                };
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = io::copy(&mut c_read, &mut s_write);
                    let _ = s_write.shutdown(std::net::Shutdown::Write);
                });
                let (mut s_read, mut c_write) = (server, client);
                let mut buf = vec![0u8; 64 * 1024];
                let start = Instant::now();
                let mut sent = 0u64;
                loop {
                    let n = match s_read.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if c_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    sent += n as u64;
                    let due = Duration::from_secs_f64(sent as f64 / bytes_per_sec as f64);
                    if let Some(wait) = due.checked_sub(start.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
                let _ = c_write.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

fn main() {
    let images = arg("--images", 20) as usize;
    let mib = arg("--mib", 100);
    let mbps = arg("--mbps", 40);
    let concurrency = arg("--concurrency", 16) as usize;
    let dir: PathBuf =
        std::env::temp_dir().join(format!("kube-harden-facts-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut registry, host) = start_registry(&dir);

    // Build and upload the images (not measured).
    let agent = ureq::Agent::config_builder()
        .proxy(None)
        .build()
        .new_agent();
    let setup = Instant::now();
    let mut questions = Vec::new();
    for i in 0..images {
        let repo = format!("bench/app{i}");
        let mut layers = Vec::new();
        for (n, gzip) in [(0u64, true), (1, false)] {
            let path = dir.join(format!("layer-{i}-{n}"));
            let (digest, size) = write_layer(&path, (i as u64) << 8 | n, mib / 2, gzip);
            upload(&agent, &host, &repo, &path, &digest);
            std::fs::remove_file(&path).unwrap();
            let media = if gzip {
                "application/vnd.oci.image.layer.v1.tar+gzip"
            } else {
                "application/vnd.oci.image.layer.v1.tar"
            };
            layers.push(serde_json::json!({"mediaType": media, "digest": digest, "size": size}));
        }
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"User": "app", "Cmd": ["/app"], "Volumes": {"/var/lib/app": {}}},
            "rootfs": {"type": "layers", "diff_ids": []}
        }))
        .unwrap();
        let config_path = dir.join("config");
        std::fs::write(&config_path, &config).unwrap();
        let config_digest = format!("sha256:{:x}", Sha256::digest(&config));
        upload(&agent, &host, &repo, &config_path, &config_digest);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": layers,
        }))
        .unwrap();
        agent
            .put(&format!("http://{host}/v2/{repo}/manifests/v1"))
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .send(&manifest[..])
            .unwrap();
        questions.push((repo, format!("sha256:{:x}", Sha256::digest(&manifest))));
    }
    eprintln!(
        "image_facts: {images} images × {mib} MiB uploaded in {:.1}s",
        setup.elapsed().as_secs_f64()
    );
    let proxy = paced_proxy(host.clone(), mbps * 1_000_000);
    let questions: Vec<FactsQuestion> = questions
        .into_iter()
        .map(|(repo, digest)| FactsQuestion {
            image: ImageRef::parse(&format!("{proxy}/{repo}:v1")).unwrap(),
            digest,
            platform: None,
            paths: Vec::new(),
            filesystem: true,
        })
        .collect();
    let rss_before = peak_rss_kib();
    let run = |c: usize| {
        let client = RegistrySource::new(RegistryConfig {
            concurrency: c,
            insecure_registries: vec![proxy.clone()],
            credentials: CredentialStore::none(),
            env_proxy: false,
            ..RegistryConfig::default()
        });
        let t = Instant::now();
        let answers = client.image_facts_all(&questions, 1 << 30, &|_, _| {});
        let took = t.elapsed();
        for a in &answers {
            let f = a.as_ref().expect("facts");
            assert_eq!(f.uid, Some(1000), "{f:?}");
            assert!(f.filesystem.is_some(), "{:?}", f.unknown);
        }
        took
    };
    let one = run(1);
    let many = run(concurrency);
    let peak = peak_rss_kib();
    let _ = registry.kill();
    let _ = registry.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let speedup = one.as_secs_f64() / many.as_secs_f64();
    println!(
        "image_facts: {images} images × {mib} MiB of layers, {mbps} MB/s per connection: sequential {:.2}s, {concurrency}-way {:.2}s, speed-up {speedup:.1}× (target ≥ 6×)",
        one.as_secs_f64(),
        many.as_secs_f64()
    );
    println!(
        "image_facts: peak RSS {:.1} MiB (before the runs {:.1} MiB; target ≤ 64 MiB)",
        peak as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );
}
