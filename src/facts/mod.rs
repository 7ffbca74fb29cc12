//! Image facts: what the kubelet and the container runtime will find in an image, so rules decide
//! like the kubelet decides. Facts come from the image config (`User`, `ExposedPorts`, `Volumes`,
//! `Healthcheck`, `WorkingDir`, `Entrypoint`/`Cmd`, `PATH`) and from its layers (the numeric user
//! from `/etc/passwd` and `/etc/group`, which directories someone other than root may write,
//! whether the paths an emptyDir would cover hold files, and which files carry setuid/setgid bits
//! or file capabilities).
//!
//! Facts are recorded per entry in the lock file ([`crate::digest::ImageLock`]) by
//! `kube-harden lock`, and can be stated or overridden in the policy (`spec.images.facts`). Every
//! field is optional: `None` means *unknown*, and a rule that needs an unknown fact does not make
//! the change it would need it for (it reports the fact and the fix instead).
//!
//! This module does no I/O and builds for WASM: offline, CI and WASM runs decide the same from
//! the same lock.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub mod config;
#[cfg(all(feature = "layers", not(target_family = "wasm")))]
pub mod layers;
pub mod passwd;

/// Most directories recorded in [`FsFacts::dirs`]; an image with more non-root-writable
/// directories gets `filesystem` unknown.
pub const MAX_DIRS: usize = 2048;
/// Most files recorded in [`FsFacts::privileged_files`].
pub const MAX_PRIVILEGED_FILES: usize = 1024;
/// `PATH` the runtime uses when the image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What is known about one image (one platform's manifest). `None` everywhere means unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageFacts {
    /// The platform (`os/arch[/variant]`) whose manifest these facts describe, when the lock
    /// entry is a multi-arch index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The image config's `User` as written (`""`: not set, which means root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The numeric uid the image runs as: `User` itself when numeric, else its `/etc/passwd`
    /// entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The numeric primary gid: the group part of `User`, else the user's `/etc/passwd` group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Supplementary gids of the user (`/etc/group` memberships).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<u32>>,
    /// `ExposedPorts` (`8080/tcp`, `53/udp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<Vec<String>>,
    /// `Volumes` (paths).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<String>>,
    /// `Healthcheck`, when the image has one (`NONE` is recorded as absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// `WorkingDir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `Entrypoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// The `PATH` of the image's `Env` (how a bare command name is found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Facts from the layers; absent when they were not read (or could not be, see `unknown`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<FsFacts>,
    /// Facts that could not be learned, each with the reason (`filesystem: layer budget of
    /// 1 GiB exceeded`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<String>,
}

/// A Docker `HEALTHCHECK`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Healthcheck {
    /// `["CMD", arg…]` (exec form) or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    /// Seconds between checks (Docker's default 30 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u64>,
    /// Seconds one check may take (Docker's default 30 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// Seconds after start during which failures do not count (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period_seconds: Option<u64>,
    /// Consecutive failures that make the container unhealthy (Docker's default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
}

/// Facts read from the image's layers (top layer first, whiteouts honoured).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FsFacts {
    /// Every directory someone other than root can write (owner not 0, or group/other write
    /// bits), plus `/tmp`, the image's `Volumes` and any path asked about when the lock was
    /// written, sorted by path. A path that is not listed is a root-only directory, or was not
    /// asked about.
    #[serde(default)]
    pub dirs: Vec<DirFact>,
    /// Regular files with the setuid or setgid bit or a `security.capability` xattr.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub privileged_files: Vec<PrivilegedFile>,
}

/// One directory of the image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DirFact {
    /// Absolute path, no trailing slash.
    pub path: String,
    /// Owner uid; absent when the image has no such directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Owner gid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Permission bits in octal (`"1777"`, `"0755"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// True when the image ships anything inside it (an emptyDir there would hide it).
    #[serde(default)]
    pub files: bool,
}

/// A file whose execution gains privileges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PrivilegedFile {
    /// Absolute path.
    pub path: String,
    /// The setuid bit.
    #[serde(default, skip_serializing_if = "is_false")]
    pub setuid: bool,
    /// The setgid bit.
    #[serde(default, skip_serializing_if = "is_false")]
    pub setgid: bool,
    /// A `security.capability` xattr (file capabilities).
    #[serde(default, skip_serializing_if = "is_false")]
    pub capabilities: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Who a container runs as, as far as the facts and the manifest tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeUser {
    /// A numeric uid (from `runAsUser` or the image).
    Uid(u32),
    /// The image names a user whose uid is not known (no `/etc/passwd` facts, or no entry).
    Named(String),
    /// Nothing is known (no image facts and no `runAsUser`).
    Unknown,
}

impl RuntimeUser {
    /// True for a known non-zero uid.
    pub fn is_non_root(&self) -> bool {
        matches!(self, RuntimeUser::Uid(u) if *u != 0)
    }

    /// True for uid 0.
    pub fn is_root(&self) -> bool {
        matches!(self, RuntimeUser::Uid(0))
    }
}

/// The parts of a `USER` string: `name`, `uid`, `name:group`, `uid:gid`.
pub fn split_user(user: &str) -> (&str, Option<&str>) {
    match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    }
}

impl ImageFacts {
    /// The uid the image runs as when the manifest does not say: `None` when unknown.
    pub fn image_uid(&self) -> RuntimeUser {
        if let Some(uid) = self.uid {
            return RuntimeUser::Uid(uid);
        }
        match self.user.as_deref() {
            None => RuntimeUser::Unknown,
            Some(u) => {
                let (name, _) = split_user(u);
                if name.is_empty() {
                    RuntimeUser::Uid(0)
                } else if let Ok(n) = name.parse::<u32>() {
                    RuntimeUser::Uid(n)
                } else if name == "root" {
                    // Every passwd gives root uid 0; runc resolves it the same way.
                    RuntimeUser::Uid(0)
                } else {
                    RuntimeUser::Named(name.to_string())
                }
            }
        }
    }

    /// The image's primary gid when known (numeric group part of `User`, else `gid`).
    pub fn image_gid(&self) -> Option<u32> {
        if let Some(gid) = self.gid {
            return Some(gid);
        }
        let (name, group) = split_user(self.user.as_deref()?);
        match group {
            Some(g) => g.parse().ok(),
            None if name.is_empty() || name == "0" || name == "root" => Some(0),
            None => None,
        }
    }

    /// The directory fact for `path` (normalised, no trailing slash), if recorded.
    pub fn dir(&self, path: &str) -> Option<&DirFact> {
        let fs = self.filesystem.as_ref()?;
        fs.dirs
            .binary_search_by(|d| d.path.as_str().cmp(path))
            .ok()
            .map(|i| &fs.dirs[i])
    }

    /// Whether the image ships files under `path`: `Some(false)` for an empty or absent
    /// directory, `None` when the facts do not say.
    pub fn has_files(&self, path: &str) -> Option<bool> {
        let fs = self.filesystem.as_ref()?;
        if let Some(d) = self.dir(path) {
            return Some(d.files);
        }
        // A directory below a recorded one that ships nothing does not exist either.
        let mut at = path;
        while let Some((parent, _)) = at.rsplit_once('/') {
            let parent = if parent.is_empty() { "/" } else { parent };
            if let Some(d) = fs.dirs.iter().find(|d| d.path == parent) {
                return if d.files { None } else { Some(false) };
            }
            if parent == "/" {
                break;
            }
            at = parent;
        }
        None
    }

    /// The directories `uid` (primary `gid`, supplementary `groups`) can write, outermost only
    /// (a directory inside another listed one is covered by it). `None` when the filesystem is
    /// unknown, or for root (root writes anywhere, so the write paths are unknown).
    pub fn writable_dirs(
        &self,
        uid: u32,
        gid: Option<u32>,
        groups: &[u32],
    ) -> Option<Vec<&DirFact>> {
        if uid == 0 {
            return None;
        }
        let fs = self.filesystem.as_ref()?;
        let mut out: Vec<&DirFact> = Vec::new();
        for d in &fs.dirs {
            let (Some(owner), Some(group), Some(mode)) = (d.uid, d.gid, d.mode.as_deref()) else {
                continue;
            };
            let Ok(mode) = u32::from_str_radix(mode, 8) else {
                continue;
            };
            let writable = (owner == uid && mode & 0o200 != 0)
                || ((gid == Some(group) || groups.contains(&group)) && mode & 0o020 != 0)
                || mode & 0o002 != 0;
            if !writable {
                continue;
            }
            // Sorted by path: an enclosing directory comes first.
            if out.last().is_some_and(|p| is_within(&d.path, &p.path)) {
                continue;
            }
            out.push(d);
        }
        Some(out)
    }

    /// The privileged file (setuid/setgid/file capabilities) that a container's command runs,
    /// when there is one: `Some(None)` when the command's binary has none, `None` when the facts
    /// cannot tell (no filesystem facts, or no command known). `command` is the container's
    /// `command` (else the image's `Entrypoint`) followed by `args` (else `Cmd`).
    pub fn privileged_command(&self, command: &[String]) -> Option<Option<&PrivilegedFile>> {
        let fs = self.filesystem.as_ref()?;
        let exe = command.first()?;
        let path = self.path.as_deref().unwrap_or(DEFAULT_PATH);
        let candidates: Vec<String> = if exe.contains('/') {
            vec![exe.clone()]
        } else {
            path.split(':')
                .filter(|d| !d.is_empty())
                .map(|d| format!("{}/{exe}", d.trim_end_matches('/')))
                .collect()
        };
        let base = exe.rsplit('/').next().unwrap_or(exe);
        // Paths match exactly; the basename matches too, because a symlink (/bin → /usr/bin,
        // /usr/bin/ping → /bin/ping) may lead to it, and saying "relies on it" when unsure is the
        // side that keeps the container working.
        Some(fs.privileged_files.iter().find(|f| {
            candidates.iter().any(|c| c == &f.path) || f.path.rsplit('/').next() == Some(base)
        }))
    }

    /// Overlays `stated` (the policy's facts for this image) onto these facts: every field the
    /// policy states wins.
    pub fn overlay(&mut self, stated: &ImageFacts) {
        macro_rules! take {
            ($($f:ident),*) => { $( if stated.$f.is_some() { self.$f = stated.$f.clone(); } )* };
        }
        take!(
            platform,
            user,
            uid,
            gid,
            groups,
            exposed_ports,
            volumes,
            healthcheck,
            working_dir,
            entrypoint,
            cmd,
            path,
            filesystem
        );
        if stated.user.is_some() && stated.uid.is_none() {
            // A new user name invalidates a uid learned for the old one.
            self.uid = None;
            if stated.gid.is_none() {
                self.gid = None;
            }
        }
        self.unknown.retain(|u| {
            let field = u.split(':').next().unwrap_or("");
            !matches!(field, "filesystem") || stated.filesystem.is_none()
        });
    }

    /// The declared TCP ports (`ExposedPorts` entries `N/tcp` or bare `N`), in order.
    pub fn tcp_ports(&self) -> Vec<u16> {
        self.exposed_ports
            .iter()
            .flatten()
            .filter_map(|p| {
                let (n, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                if proto.eq_ignore_ascii_case("tcp") {
                    n.parse().ok()
                } else {
                    None
                }
            })
            .collect()
    }
}

/// True when `path` is `dir` or inside it.
pub fn is_within(path: &str, dir: &str) -> bool {
    if dir == "/" {
        return true;
    }
    path == dir || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/'))
}

/// `path` without trailing slashes (`/` stays `/`), and with `.`/empty segments removed.
pub fn normalize_path(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// Formats permission bits as recorded in [`DirFact::mode`].
pub fn mode_string(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(path: &str, uid: u32, gid: u32, mode: &str, files: bool) -> DirFact {
        DirFact {
            path: path.into(),
            uid: Some(uid),
            gid: Some(gid),
            mode: Some(mode.into()),
            files,
        }
    }

    fn facts(dirs: Vec<DirFact>) -> ImageFacts {
        ImageFacts {
            filesystem: Some(FsFacts {
                dirs,
                privileged_files: vec![PrivilegedFile {
                    path: "/usr/sbin/httpd".into(),
                    capabilities: true,
                    ..Default::default()
                }],
            }),
            ..Default::default()
        }
    }

    #[test]
    fn image_user() {
        let f = |u: &str| ImageFacts {
            user: Some(u.into()),
            ..Default::default()
        };
        assert_eq!(f("").image_uid(), RuntimeUser::Uid(0));
        assert_eq!(f("root").image_uid(), RuntimeUser::Uid(0));
        assert_eq!(f("1000:1000").image_uid(), RuntimeUser::Uid(1000));
        assert_eq!(f("1000:1000").image_gid(), Some(1000));
        assert_eq!(
            f("memcache").image_uid(),
            RuntimeUser::Named("memcache".into())
        );
        assert_eq!(ImageFacts::default().image_uid(), RuntimeUser::Unknown);
        let resolved = ImageFacts {
            uid: Some(11211),
            ..f("memcache")
        };
        assert_eq!(resolved.image_uid(), RuntimeUser::Uid(11211));
    }

    #[test]
    fn writable_dirs_outermost_and_by_permission() {
        let f = facts(vec![
            dir("/data", 999, 999, "0700", true),
            dir("/data/sub", 999, 999, "0700", false),
            dir("/run/lock", 0, 0, "1777", false),
            dir("/srv", 0, 50, "0775", false),
            dir("/tmp", 0, 0, "1777", false),
        ]);
        let paths = |v: Option<Vec<&DirFact>>| {
            v.unwrap()
                .into_iter()
                .map(|d| d.path.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            paths(f.writable_dirs(999, Some(999), &[])),
            ["/data", "/run/lock", "/tmp"]
        );
        assert_eq!(
            paths(f.writable_dirs(1000, Some(1000), &[50])),
            ["/run/lock", "/srv", "/tmp"]
        );
        assert!(f.writable_dirs(0, Some(0), &[]).is_none());
        assert!(ImageFacts::default().writable_dirs(5, None, &[]).is_none());
    }

    #[test]
    fn files_under_paths() {
        let f = facts(vec![
            dir("/tmp", 0, 0, "1777", true),
            dir("/var/tmp", 0, 0, "1777", false),
        ]);
        assert_eq!(f.has_files("/tmp"), Some(true));
        assert_eq!(f.has_files("/var/tmp"), Some(false));
        assert_eq!(f.has_files("/var/tmp/x"), Some(false));
        assert_eq!(f.has_files("/tmp/x"), None);
        assert_eq!(f.has_files("/opt"), None);
        assert_eq!(ImageFacts::default().has_files("/tmp"), None);
    }

    #[test]
    fn privileged_commands() {
        let mut f = facts(vec![]);
        assert!(f
            .privileged_command(&["/usr/sbin/httpd".into()])
            .unwrap()
            .is_some());
        assert!(f
            .privileged_command(&["httpd".into(), "-D".into()])
            .unwrap()
            .is_some());
        assert!(f.privileged_command(&["/bin/sh".into()]).unwrap().is_none());
        assert!(f.privileged_command(&[]).is_none());
        f.filesystem = None;
        assert!(f.privileged_command(&["httpd".into()]).is_none());
    }

    #[test]
    fn overlay_replaces_stated_fields() {
        let mut f = ImageFacts {
            user: Some("app".into()),
            uid: Some(10),
            gid: Some(10),
            exposed_ports: Some(vec!["80/tcp".into()]),
            unknown: vec!["filesystem: budget exceeded".into()],
            ..Default::default()
        };
        f.overlay(&ImageFacts {
            user: Some("other".into()),
            filesystem: Some(FsFacts::default()),
            ..Default::default()
        });
        assert_eq!(f.user.as_deref(), Some("other"));
        assert_eq!(f.uid, None);
        assert_eq!(f.exposed_ports.as_ref().unwrap().len(), 1);
        assert!(f.unknown.is_empty());
        assert_eq!(f.tcp_ports(), [80]);
    }

    #[test]
    fn paths() {
        assert!(is_within("/a/b", "/a"));
        assert!(!is_within("/ab", "/a"));
        assert!(is_within("/x", "/"));
        assert_eq!(normalize_path("/tmp/"), "/tmp");
        assert_eq!(normalize_path("//var/./lib/"), "/var/lib");
        assert_eq!(mode_string(0o41777), "1777");
    }
}
