//! Runs one child process with the input on stdin and measures its wall time, CPU time (user +
//! system, which other load on a shared machine disturbs less than wall time) and peak RSS.
//!
//! The program runs under a launcher (this bench binary again, `--measure-child`): Linux keeps
//! the peak RSS of the memory a process had before `execve` (`ru_maxrss` of a child spawned
//! straight from the bench would include the bench's own footprint: its generated input, tens of
//! MB). The launcher is small when it spawns, so the figure is the program's own.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

pub struct Run {
    pub seconds: f64,
    /// User + system CPU seconds of the program (all its threads).
    #[allow(dead_code)] // the speed bench reads it; the throughput bench shares this file
    pub cpu_seconds: f64,
    pub peak_rss_kb: i64,
}

impl Run {
    pub fn peak_rss_mb(&self) -> f64 {
        self.peak_rss_kb as f64 / 1024.0
    }
}

const LAUNCHER: &str = "--measure-child";

/// Call first in a bench's `main`: when this process is the launcher, runs the program named by
/// the remaining arguments (stdin/stdout/stderr inherited), waits for it with `wait4` and writes
/// `<seconds> <peak RSS KiB> <exit status> <CPU seconds>` to the report file; returns true (the bench's
/// `main` then returns).
pub fn launcher() -> bool {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some(LAUNCHER) {
        return false;
    }
    let report = &args[2];
    let start = Instant::now();
    let child = Command::new(&args[3])
        .args(&args[4..])
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4 failed");
    let seconds = start.elapsed().as_secs_f64();
    std::mem::forget(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let time = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let cpu = time(usage.ru_utime) + time(usage.ru_stime);
    std::fs::write(
        report,
        format!("{seconds} {} {code} {cpu}", usage.ru_maxrss),
    )
    .unwrap();
    true
}

/// Runs `program args` with `input` on stdin, its stdout to `out` (or discarded), under the
/// launcher. Panics unless it exits 0.
pub fn measure(program: &Path, args: &[&std::ffi::OsStr], input: &[u8], out: Option<&Path>) -> Run {
    let stdout = match out {
        Some(path) => Stdio::from(std::fs::File::create(path).expect("create output file")),
        None => Stdio::null(),
    };
    let report = std::env::temp_dir().join(format!(
        "kube-harden-bench-{}-{}.run",
        std::process::id(),
        std::thread::current().name().unwrap_or("main")
    ));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg(LAUNCHER)
        .arg(&report)
        .arg(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the launcher");
    {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input).unwrap();
    }
    assert!(child.wait().unwrap().success(), "launcher failed");
    let text = std::fs::read_to_string(&report).expect("launcher report");
    let _ = std::fs::remove_file(&report);
    let mut f = text.split(' ');
    let seconds: f64 = f.next().unwrap().parse().unwrap();
    let peak_rss_kb: i64 = f.next().unwrap().parse().unwrap();
    let code: i32 = f.next().unwrap().parse().unwrap();
    let cpu_seconds: f64 = f.next().unwrap().parse().unwrap();
    assert_eq!(
        code,
        0,
        "{} {:?} exited with {code}",
        program.display(),
        args
    );
    Run {
        seconds,
        cpu_seconds,
        peak_rss_kb,
    }
}
