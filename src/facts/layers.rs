//! Filesystem facts from an image's layers, read as a stream: the top layer first, whiteouts
//! honoured, nothing unpacked to disk (feature `layers`, native builds).
//!
//! Each layer is a tar stream (plain, gzip or zstd: told by its first bytes, not its media type).
//! An entry counts when no upper layer decided its path: the same path in an upper layer shadows
//! it, a whiteout (`.wh.NAME`) hides it and everything below it, an opaque whiteout
//! (`.wh..wh..opq`) hides what lower layers have inside that directory, and a non-directory in an
//! upper layer hides everything below its path. Whiteouts apply to the layers below the one that
//! holds them.
//!
//! Memory is bounded by the image's shape, not its size: file contents are skipped except
//! `/etc/passwd` and `/etc/group` (at most [`MAX_ACCOUNT_FILE`] each), upper-layer paths are kept
//! as 64-bit hashes (only while lower layers remain), and directories as one small record each.
//! A byte budget bounds the decompressed bytes read; past it the filesystem facts are unknown.
//!
//! Reading stops at a layer boundary once every question is answered (only the account files
//! were asked, and both were found), so every fact comes from whole layers whose digests were
//! checked.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::{self, BufRead, BufReader, Read};

use super::{mode_string, normalize_path, DirFact, FsFacts, PrivilegedFile};
use super::{MAX_DIRS, MAX_PRIVILEGED_FILES};

/// Most bytes kept of `/etc/passwd` or `/etc/group`.
pub const MAX_ACCOUNT_FILE: u64 = 1 << 20;

/// What the scan must answer.
#[derive(Debug, Clone, Default)]
pub struct Questions {
    /// Read `/etc/passwd` and `/etc/group` (the image names its user).
    pub accounts: bool,
    /// Learn the filesystem facts (directories, privileged files).
    pub filesystem: bool,
    /// Paths recorded whether or not someone other than root can write them: `/tmp`, the
    /// image's `Volumes`, paths the policy names.
    pub paths: Vec<String>,
}

/// Why a scan could not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// More decompressed bytes than the budget.
    Budget(u64),
    /// The layer is not a tar stream this reader understands.
    Format(String),
    /// Reading the layer failed (network, digest mismatch).
    Read(String),
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanError::Budget(n) => write!(f, "layer budget of {} exceeded", bytes(*n)),
            ScanError::Format(e) => write!(f, "a layer could not be read: {e}"),
            ScanError::Read(e) => write!(f, "a layer could not be fetched: {e}"),
        }
    }
}

/// `1 GiB`, `512 MiB`, `100 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size && n % size == 0 {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} B")
}

#[derive(Debug, Clone, Copy, Default)]
struct Dir {
    /// (uid, gid, mode) from the topmost layer that has the directory itself.
    meta: Option<(u32, u32, u32)>,
    /// Something visible lives inside it.
    children: bool,
}

/// What a finished scan learned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Learned {
    /// `/etc/passwd`, when the image has one (and accounts were asked).
    pub passwd: Option<String>,
    /// `/etc/group`.
    pub group: Option<String>,
    /// The filesystem facts (when asked), or why they are unknown.
    pub filesystem: Option<Result<FsFacts, String>>,
}

/// A scan over the layers of one image, fed top layer first.
pub struct Scan {
    questions: Questions,
    budget: u64,
    used: u64,
    /// Paths of upper layers (hash → is a directory).
    seen: HashMap<u64, bool>,
    /// Whited-out paths of upper layers (the path and all below it).
    hidden: HashSet<u64>,
    /// Opaque directories of upper layers (what lower layers have inside is hidden).
    opaque: HashSet<u64>,
    dirs: HashMap<String, Dir>,
    privileged: Vec<PrivilegedFile>,
    too_many_privileged: bool,
    /// Asked paths that are something other than a directory (a file, a symlink).
    asked_non_dirs: HashSet<String>,
    passwd: Option<Option<String>>,
    group: Option<Option<String>>,
    failed: Option<String>,
}

fn hash(path: &str) -> u64 {
    let mut h = DefaultHasher::new();
    path.hash(&mut h);
    h.finish()
}

/// The ancestors of an absolute, normalised path, nearest first, `/` last (none for `/`).
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut at = path;
    std::iter::from_fn(move || {
        if at == "/" {
            return None;
        }
        let (parent, _) = at.rsplit_once('/')?;
        at = if parent.is_empty() { "/" } else { parent };
        Some(at)
    })
}

/// Counts decompressed bytes against the budget.
struct Budgeted<'a, R> {
    inner: R,
    left: &'a mut u64,
    exceeded: &'a mut bool,
}

impl<R: Read> Read for Budgeted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if *self.left == 0 {
            *self.exceeded = true;
            return Err(io::Error::other(BUDGET_MARK));
        }
        let cap = buf
            .len()
            .min(usize::try_from(*self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..cap])?;
        *self.left -= n as u64;
        Ok(n)
    }
}

const BUDGET_MARK: &str = "kube-harden: layer byte budget exhausted";

/// A reader over the decompressed tar stream of a layer blob: gzip (`1f 8b`), zstd
/// (`28 b5 2f fd`) or plain tar, told by the first bytes.
pub fn decompressed<'a, R: Read + 'a>(blob: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut buffered = BufReader::with_capacity(64 * 1024, blob);
    let head = buffered.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let decoder = ruzstd::decoding::StreamingDecoder::new(buffered)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}")))?;
        Box::new(decoder)
    } else {
        Box::new(buffered)
    })
}

impl Scan {
    /// A scan answering `questions`, reading at most `budget` decompressed bytes in all.
    pub fn new(mut questions: Questions, budget: u64) -> Self {
        for p in &mut questions.paths {
            *p = normalize_path(p);
        }
        questions.paths.sort();
        questions.paths.dedup();
        Scan {
            questions,
            budget,
            used: 0,
            seen: HashMap::new(),
            hidden: HashSet::new(),
            opaque: HashSet::new(),
            dirs: HashMap::new(),
            privileged: Vec::new(),
            too_many_privileged: false,
            asked_non_dirs: HashSet::new(),
            passwd: None,
            group: None,
            failed: None,
        }
    }

    /// True when nothing more is to be learned from lower layers.
    pub fn done(&self) -> bool {
        if self.failed.is_some() {
            return true;
        }
        !self.questions.filesystem
            && (!self.questions.accounts || (self.passwd.is_some() && self.group.is_some()))
    }

    /// Reads one layer's decompressed tar stream; `last` when no layer lies below it (its
    /// paths need not be remembered). On an error the scan's facts become unknown with the
    /// reason, and [`Scan::done`] turns true.
    pub fn layer(&mut self, tar: impl Read, last: bool) -> Result<(), ScanError> {
        let mut left = self.budget.saturating_sub(self.used);
        let mut exceeded = false;
        let before = left;
        let result = self.entries(
            Budgeted {
                inner: tar,
                left: &mut left,
                exceeded: &mut exceeded,
            },
            last,
        );
        self.used += before - left;
        let result = match result {
            Err(_) if exceeded => Err(ScanError::Budget(self.budget)),
            other => other,
        };
        if let Err(e) = &result {
            self.fail(e.to_string());
        }
        result
    }

    /// Records that the layers could not be read (a fetch failed): the facts that need them are
    /// unknown for `reason`.
    pub fn fail(&mut self, reason: String) {
        if self.failed.is_none() {
            self.failed = Some(reason);
        }
    }

    fn entries(&mut self, tar: impl Read, last: bool) -> Result<(), ScanError> {
        let mut archive = tar::Archive::new(tar);
        let io_error = |e: io::Error| match e.kind() {
            io::ErrorKind::InvalidData | io::ErrorKind::Other | io::ErrorKind::UnexpectedEof => {
                ScanError::Format(e.to_string())
            }
            _ => ScanError::Read(e.to_string()),
        };
        let mut hidden_here: Vec<u64> = Vec::new();
        let mut opaque_here: Vec<u64> = Vec::new();
        let entries = archive.entries().map_err(io_error)?;
        for entry in entries {
            let mut entry = entry.map_err(io_error)?;
            let kind = entry.header().entry_type();
            if matches!(
                kind,
                tar::EntryType::XGlobalHeader
                    | tar::EntryType::XHeader
                    | tar::EntryType::GNULongName
                    | tar::EntryType::GNULongLink
            ) {
                continue;
            }
            let raw = entry.path_bytes();
            let path = normalize_path(&String::from_utf8_lossy(&raw));
            drop(raw);
            let (parent, name) = match path.rsplit_once('/') {
                Some((p, n)) => (if p.is_empty() { "/" } else { p }, n),
                None => ("/", path.as_str()),
            };
            if let Some(target) = name.strip_prefix(".wh.") {
                if target == ".wh..opq" {
                    opaque_here.push(hash(parent));
                } else if !target.starts_with(".wh.") {
                    let t = if parent == "/" {
                        format!("/{target}")
                    } else {
                        format!("{parent}/{target}")
                    };
                    hidden_here.push(hash(&t));
                }
                continue;
            }
            if !self.visible(&path) {
                continue;
            }
            let is_dir = kind == tar::EntryType::Directory;
            if !last {
                self.seen.insert(hash(&path), is_dir);
            }
            self.mark_parents(&path);
            let header = entry.header();
            let mode = header.mode().unwrap_or(0) & 0o7777;
            let (mut uid, mut gid) = (
                header
                    .uid()
                    .ok()
                    .and_then(|u| u32::try_from(u).ok())
                    .unwrap_or(0),
                header
                    .gid()
                    .ok()
                    .and_then(|g| u32::try_from(g).ok())
                    .unwrap_or(0),
            );
            let mut capability = false;
            if let Ok(Some(pax)) = entry.pax_extensions() {
                for ext in pax.flatten() {
                    match ext.key() {
                        Ok("uid") => {
                            uid = ext.value().ok().and_then(|v| v.parse().ok()).unwrap_or(uid)
                        }
                        Ok("gid") => {
                            gid = ext.value().ok().and_then(|v| v.parse().ok()).unwrap_or(gid)
                        }
                        Ok(k) if k.ends_with("xattr.security.capability") => capability = true,
                        _ => {}
                    }
                }
            }
            if !is_dir && self.questions.paths.binary_search(&path).is_ok() {
                self.asked_non_dirs.insert(path.clone());
            }
            if is_dir {
                let d = self.dirs.entry(path.clone()).or_default();
                d.meta = Some((uid, gid, mode));
                continue;
            }
            let regular = matches!(
                kind,
                tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::Link
            );
            if !regular {
                continue;
            }
            if self.questions.filesystem && (mode & 0o6000 != 0 || capability) {
                if self.privileged.len() < MAX_PRIVILEGED_FILES {
                    self.privileged.push(PrivilegedFile {
                        path: path.clone(),
                        setuid: mode & 0o4000 != 0,
                        setgid: mode & 0o2000 != 0,
                        capabilities: capability,
                    });
                } else {
                    self.too_many_privileged = true;
                }
            }
            let slot = match path.as_str() {
                "/etc/passwd" if self.passwd.is_none() => &mut self.passwd,
                "/etc/group" if self.group.is_none() => &mut self.group,
                _ => continue,
            };
            if kind == tar::EntryType::Link {
                // A hard link's content is another entry's; rare for these files.
                *slot = Some(None);
                continue;
            }
            let mut text = Vec::new();
            (&mut entry)
                .take(MAX_ACCOUNT_FILE)
                .read_to_end(&mut text)
                .map_err(io_error)?;
            *slot = Some(Some(String::from_utf8_lossy(&text).into_owned()));
        }
        self.hidden.extend(hidden_here);
        self.opaque.extend(opaque_here);
        if last {
            // Nothing below: an account file not found so far does not exist.
            self.passwd.get_or_insert(None);
            self.group.get_or_insert(None);
        }
        Ok(())
    }

    /// Whether an entry of the current layer at `path` shows in the merged filesystem.
    fn visible(&self, path: &str) -> bool {
        let own = hash(path);
        if self.hidden.contains(&own) || self.seen.contains_key(&own) {
            return false;
        }
        for a in ancestors(path) {
            let h = hash(a);
            if self.hidden.contains(&h)
                || self.opaque.contains(&h)
                || self.seen.get(&h) == Some(&false)
            {
                return false;
            }
        }
        true
    }

    /// Marks every directory above `path` as holding something.
    fn mark_parents(&mut self, path: &str) {
        for a in ancestors(path) {
            let d = self.dirs.entry(a.to_string()).or_default();
            if d.children {
                break;
            }
            d.children = true;
        }
    }

    /// What the scan learned. The filesystem facts list every directory someone other than
    /// root can write plus the asked paths (absent ones with no owner), sorted by path.
    pub fn finish(mut self) -> Learned {
        let accounts = self.questions.accounts && self.failed.is_none();
        let mut privileged = std::mem::take(&mut self.privileged);
        let filesystem = self.questions.filesystem.then(|| {
            if let Some(why) = &self.failed {
                return Err(why.clone());
            }
            if self.too_many_privileged {
                return Err(format!(
                    "more than {MAX_PRIVILEGED_FILES} setuid/setgid/file-capability files"
                ));
            }
            let mut dirs: Vec<DirFact> = Vec::new();
            for (path, d) in &self.dirs {
                let Some((uid, gid, mode)) = d.meta else {
                    continue;
                };
                let asked = self.questions.paths.binary_search(path).is_ok();
                if uid == 0 && mode & 0o022 == 0 && !asked {
                    continue;
                }
                dirs.push(DirFact {
                    path: path.clone(),
                    uid: Some(uid),
                    gid: Some(gid),
                    mode: Some(mode_string(mode)),
                    files: d.children,
                });
            }
            if dirs.len() > MAX_DIRS {
                return Err(format!(
                    "more than {MAX_DIRS} directories someone other than root can write"
                ));
            }
            for p in &self.questions.paths {
                if dirs.iter().any(|d| &d.path == p) {
                    continue;
                }
                // Not a directory of the image: absent (nothing to hide), or something else
                // (a file or symlink there: say it holds something, so nothing covers it).
                let implied = self.dirs.get(p).map(|d| d.children).unwrap_or(false);
                let other = self.asked_non_dirs.contains(p);
                dirs.push(DirFact {
                    path: p.clone(),
                    files: implied || other,
                    ..DirFact::default()
                });
            }
            dirs.sort_by(|a, b| a.path.cmp(&b.path));
            privileged.sort_by(|a, b| a.path.cmp(&b.path));
            Ok(FsFacts {
                dirs,
                privileged_files: privileged,
            })
        });
        Learned {
            passwd: if accounts {
                self.passwd.flatten()
            } else {
                None
            },
            group: if accounts { self.group.flatten() } else { None },
            filesystem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One tar entry for a test layer.
    enum E<'a> {
        Dir(&'a str, u32, u32, u32),
        File(&'a str, u32, &'a str),
        Cap(&'a str),
        Link(&'a str, &'a str),
    }

    fn layer(entries: &[E<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_ustar();
            match e {
                E::Dir(p, uid, gid, mode) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_uid((*uid).into());
                    h.set_gid((*gid).into());
                    h.set_mode(*mode);
                    h.set_size(0);
                    b.append_data(&mut h, p, io::empty()).unwrap();
                }
                E::File(p, mode, text) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(*mode);
                    h.set_size(text.len() as u64);
                    b.append_data(&mut h, p, text.as_bytes()).unwrap();
                }
                E::Cap(p) => {
                    // As Docker and GNU tar write file capabilities: a PAX header.
                    b.append_pax_extensions([(
                        "SCHILY.xattr.security.capability",
                        &[1u8, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..],
                    )])
                    .unwrap();
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(0o755);
                    h.set_size(3);
                    b.append_data(&mut h, p, &b"elf"[..]).unwrap();
                }
                E::Link(p, target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    b.append_link(&mut h, p, target).unwrap();
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

    fn scan(questions: Questions, layers_top_first: &[Vec<u8>]) -> Learned {
        let mut s = Scan::new(questions, 1 << 30);
        for (i, l) in layers_top_first.iter().enumerate() {
            if s.done() {
                break;
            }
            let tar = decompressed(&l[..]).unwrap();
            s.layer(tar, i + 1 == layers_top_first.len()).unwrap();
        }
        s.finish()
    }

    fn all(paths: &[&str]) -> Questions {
        Questions {
            accounts: true,
            filesystem: true,
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn base() -> Vec<u8> {
        layer(&[
            E::Dir("etc/", 0, 0, 0o755),
            E::File(
                "etc/passwd",
                0o644,
                "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
            ),
            E::File("etc/group", 0o644, "root:x:0:\napp:x:1000:\n"),
            E::Dir("tmp/", 0, 0, 0o1777),
            E::Dir("var/", 0, 0, 0o755),
            E::Dir("var/cache/", 0, 0, 0o755),
            E::Dir("var/cache/app/", 1000, 1000, 0o755),
            E::File("var/cache/app/old.db", 0o600, "x"),
            E::Dir("srv/", 0, 0, 0o755),
            E::File("srv/index.html", 0o644, "hi"),
            E::Dir("usr/bin/", 0, 0, 0o755),
            E::File("usr/bin/su", 0o4755, "elf"),
            E::Cap("usr/bin/ping"),
        ])
    }

    #[test]
    fn one_layer_facts() {
        let l = scan(all(&["/tmp", "/data"]), &[gzip(&base())]);
        assert!(l.passwd.as_deref().unwrap().contains("app:x:1000"));
        assert!(l.group.is_some());
        let fs = l.filesystem.unwrap().unwrap();
        let paths: Vec<_> = fs.dirs.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["/data", "/tmp", "/var/cache/app"]);
        let tmp = &fs.dirs[1];
        assert_eq!(
            (tmp.uid, tmp.mode.as_deref(), tmp.files),
            (Some(0), Some("1777"), false)
        );
        assert!(fs.dirs[2].files, "the app's cache ships a file");
        assert_eq!(fs.dirs[0].uid, None, "absent directory");
        assert!(!fs.dirs[0].files);
        assert_eq!(fs.privileged_files.len(), 2);
        assert_eq!(fs.privileged_files[0].path, "/usr/bin/ping");
        assert!(fs.privileged_files[0].capabilities && !fs.privileged_files[0].setuid);
        assert!(fs.privileged_files[1].setuid, "/usr/bin/su");
    }

    #[test]
    fn whiteouts_opaque_and_shadowing_from_upper_layers() {
        let top = layer(&[
            // passwd replaced in the upper layer: the lower one no longer counts.
            E::File(
                "etc/passwd",
                0o644,
                "root:x:0:0::/root:/bin/sh\nweb:x:33:33::/:/bin/sh\n",
            ),
            // The app's cache directory emptied (opaque) and handed to another owner.
            E::Dir("var/cache/app/", 33, 33, 0o700),
            E::File("var/cache/app/.wh..wh..opq", 0o644, ""),
            // su deleted, ping's capability gone (replaced by a plain file).
            E::File("usr/bin/.wh.su", 0o644, ""),
            E::File("usr/bin/ping", 0o755, "elf"),
            // /srv replaced by a symlink: nothing of the lower /srv shows.
            E::Link("srv", "/var/www"),
        ]);
        let l = scan(all(&["/tmp", "/srv"]), &[top, base()]);
        assert!(l.passwd.as_deref().unwrap().contains("web:x:33"));
        assert!(
            l.group.as_deref().unwrap().contains("app:x:1000"),
            "group from the lower layer"
        );
        let fs = l.filesystem.unwrap().unwrap();
        let app = fs.dirs.iter().find(|d| d.path == "/var/cache/app").unwrap();
        assert_eq!((app.uid, app.mode.as_deref()), (Some(33), Some("0700")));
        assert!(
            !app.files,
            "the opaque whiteout hides the lower layer's file"
        );
        assert!(fs.privileged_files.is_empty(), "{:?}", fs.privileged_files);
        let srv = fs.dirs.iter().find(|d| d.path == "/srv").unwrap();
        assert!(srv.files, "a symlink there: never covered");
        assert_eq!(srv.uid, None);
    }

    #[test]
    fn passwd_in_a_lower_layer_and_early_stop() {
        let top = layer(&[
            E::Dir("app/", 0, 0, 0o755),
            E::File("app/run", 0o755, "elf"),
        ]);
        let q = Questions {
            accounts: true,
            filesystem: false,
            paths: vec![],
        };
        let mut s = Scan::new(q, 1 << 30);
        s.layer(&top[..], false).unwrap();
        assert!(!s.done(), "passwd not found yet");
        s.layer(&base()[..], false).unwrap();
        assert!(s.done(), "both account files found: nothing below is read");
        let l = s.finish();
        assert!(l.passwd.unwrap().contains("app:x:1000"));
        assert_eq!(l.filesystem, None, "not asked");
    }

    #[test]
    fn whiteout_of_passwd_means_none() {
        let top = layer(&[E::File("etc/.wh.passwd", 0o644, "")]);
        let l = scan(all(&[]), &[top, base()]);
        assert_eq!(l.passwd, None);
    }

    #[test]
    fn budget_makes_the_filesystem_unknown() {
        let mut s = Scan::new(all(&["/tmp"]), 1024);
        let err = s.layer(&base()[..], true).unwrap_err();
        assert_eq!(err, ScanError::Budget(1024));
        assert!(s.done());
        let l = s.finish();
        assert_eq!(
            l.filesystem,
            Some(Err("layer budget of 1 KiB exceeded".to_string()))
        );
        assert_eq!(l.passwd, None, "nothing half-read counts");
    }

    #[test]
    fn garbage_is_a_format_error_not_a_panic() {
        let mut s = Scan::new(all(&[]), 1 << 20);
        let junk = vec![0x55u8; 4096];
        assert!(matches!(
            s.layer(&junk[..], true),
            Err(ScanError::Format(_))
        ));
        let bad_gzip = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3];
        let mut s = Scan::new(all(&[]), 1 << 20);
        let r = decompressed(&bad_gzip[..]).and_then(|t| {
            s.layer(t, true)
                .map_err(|e| io::Error::other(e.to_string()))
        });
        assert!(r.is_err());
    }

    #[test]
    fn zstd_layers_are_read() {
        // A zstd frame of the base layer, stored uncompressed (raw blocks) so the test needs no
        // encoder: magic, frame header, then raw blocks of at most 128 KiB.
        let data = base();
        let mut z = vec![0x28, 0xb5, 0x2f, 0xfd];
        // Frame header descriptor: single segment, 4-byte content size.
        z.push(0b1010_0000);
        z.extend_from_slice(&(data.len() as u32).to_le_bytes());
        let chunks: Vec<&[u8]> = data.chunks(100_000).collect();
        for (i, c) in chunks.iter().enumerate() {
            let last = u32::from(i + 1 == chunks.len());
            let header = last | ((c.len() as u32) << 3); // block type 0 = raw
            z.extend_from_slice(&header.to_le_bytes()[..3]);
            z.extend_from_slice(c);
        }
        let l = scan(all(&["/tmp"]), &[z]);
        assert!(l.passwd.is_some());
        assert!(l.filesystem.unwrap().is_ok());
    }
}
