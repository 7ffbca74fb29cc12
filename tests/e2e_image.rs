//! The container image, built without a Docker engine (`scripts/build-image.sh`: a static musl
//! binary in an OCI layout made with umoci), pushed with skopeo to a `docker-registry` on
//! 127.0.0.1; its config is read back from the registry (entrypoint, numeric non-root user) and
//! the binary taken out of the pushed layers hardens a manifest.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The registry process, stopped when the test ends.
struct Registry(Child);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_registry(dir: &Path) -> (Registry, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.join("storage").display()
        ),
    )
    .unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("docker-registry");
    let registry = Registry(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = TcpStream::connect(&addr) {
            let _ = s.write_all(format!("GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes());
            let mut reply = String::new();
            let _ = s.read_to_string(&mut reply);
            if reply.starts_with("HTTP/1.") && reply.contains(" 200 ") {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the registry did not start on {addr}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (registry, addr)
}

/// umoci, skopeo, docker-registry, readelf, tar and the musl target.
fn image_tools() -> Result<(), String> {
    for tool in ["umoci", "skopeo", "docker-registry", "readelf", "tar"] {
        if common::find_tool(&[PathBuf::from(tool)]).is_none() {
            return Err(format!("{tool} is not installed; run scripts/setup-e2e.sh"));
        }
    }
    let targets = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    if !targets
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("x86_64-unknown-linux-musl"))
    {
        return Err(
            "the x86_64-unknown-linux-musl target is not installed; run scripts/setup-e2e.sh"
                .to_string(),
        );
    }
    Ok(())
}

const IMAGE_TOOLS: common::trials::Needs = common::trials::Needs::e2e(image_tools);

fn image_is_minimal_static_non_root_and_runs_from_the_registry() {
    let test = "image";
    let work = common::temp_dir(test);
    let layout = work.join("layout");
    // The dev profile keeps CI fast; the release image uses the default (release).
    let mut build = Command::new("bash");
    build
        .arg(common::repo().join("scripts/build-image.sh"))
        .arg(&layout)
        .args(["--tag", "test", "--profile", "dev"]);
    common::run(&mut build, None).ok("scripts/build-image.sh");

    let (_registry, addr) = start_registry(&work);
    let image = format!("docker://{addr}/kube-harden:test");
    common::run(
        Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:test", layout.display()))
            .arg(&image),
        None,
    )
    .ok("skopeo copy to the registry");

    let config = common::run(
        Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--config"])
            .arg(&image),
        None,
    )
    .ok("skopeo inspect --config");
    let config: Value = serde_json::from_str(&config.stdout).unwrap();
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/kube-harden"])
    );
    let user = config["config"]["User"].as_str().expect("a user");
    let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
    assert!(
        uid.parse::<u32>().is_ok_and(|u| u != 0),
        "user {user} is not a numeric non-root uid"
    );
    assert!(gid.parse::<u32>().is_ok(), "group {gid} is not numeric");

    // Pull it back and look inside the layers: only the binary, no shell.
    let pulled = work.join("pulled");
    common::run(
        Command::new("skopeo")
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(&image)
            .arg(format!("dir:{}", pulled.display())),
        None,
    )
    .ok("skopeo copy from the registry");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(pulled.join("manifest.json")).unwrap())
            .unwrap();
    let rootfs = work.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let mut files = Vec::new();
    for layer in manifest["layers"].as_array().unwrap() {
        let digest = layer["digest"].as_str().unwrap();
        let blob = pulled.join(digest.trim_start_matches("sha256:"));
        // Verbose listing: the first column's type letter tells directories from files.
        let list = common::run(Command::new("tar").arg("-tvzf").arg(&blob), None).ok("tar -t");
        files.extend(
            list.stdout
                .lines()
                .filter(|l| !l.starts_with('d'))
                .filter_map(|l| l.split_whitespace().last())
                .map(str::to_string),
        );
        common::run(
            Command::new("tar")
                .arg("-xzf")
                .arg(&blob)
                .arg("-C")
                .arg(&rootfs),
            None,
        )
        .ok("tar -x");
    }
    assert_eq!(
        files,
        ["usr/local/bin/kube-harden"],
        "the image holds more than the binary"
    );
    let exe = rootfs.join("usr/local/bin/kube-harden");
    let elf = common::run(Command::new("readelf").arg("-l").arg(&exe), None).ok("readelf");
    assert!(
        !elf.stdout.contains("program interpreter"),
        "the binary is not static"
    );

    // The entrypoint as a KRM function: a ResourceList in, hardened items out.
    let list = format!(
        "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\n\
         functionConfig:\n  apiVersion: kube-harden.dev/v1alpha1\n  kind: HardeningPolicy\n  \
         spec:\n    unknownImages: harden\nitems:\n{}",
        std::fs::read_to_string(common::repo().join("examples/kustomize/kubectl/deployment.yaml"))
            .unwrap()
            .lines()
            .enumerate()
            .map(|(i, l)| if i == 0 {
                format!("- {l}\n")
            } else {
                format!("  {l}\n")
            })
            .collect::<String>()
    );
    let out =
        common::run(Command::new(&exe).env_clear(), Some(list.as_bytes())).ok("the image's binary");
    let out = common::parse_stream(&out.stdout).remove(0);
    assert_eq!(out["kind"], "ResourceList");
    common::assert_hardened(&out["items"][0]);
}

fn main() {
    common::trials::main(vec![common::trials::needs(
        "image_is_minimal_static_non_root_and_runs_from_the_registry",
        IMAGE_TOOLS,
        image_is_minimal_static_non_root_and_runs_from_the_registry,
    )])
}
