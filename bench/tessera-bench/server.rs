//! What a round cost the server: CPU time from /proc/PID/task/*/schedstat and, with
//! `--syscalls`, system calls counted by `perf stat` attached to the process.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server's use over one round.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct ServerUse {
    /// CPU seconds of all its threads (user + system; on a VM this includes steal).
    pub(crate) cpu_s: f64,
    /// System calls entered, when counted.
    pub(crate) syscalls: Option<u64>,
}

/// Measurement of one process over one round.
pub(crate) struct Probe {
    pid: u32,
    cpu0: u64,
    perf: Option<(Child, PathBuf)>,
}

/// Nanoseconds on CPU of all the threads of `pid` (schedstat's first field).
fn cpu_ns(pid: u32) -> Result<u64, String> {
    let dir = PathBuf::from(format!("/proc/{pid}/task"));
    let tasks = std::fs::read_dir(&dir)
        .map_err(|e| format!("server pid {pid}: cannot read {}: {e}", dir.display()))?;
    let mut total = 0u64;
    for t in tasks.flatten() {
        // A thread may exit between the listing and the read: it is skipped.
        if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
            total += parse_schedstat(&s)
                .ok_or_else(|| format!("server pid {pid}: unexpected schedstat `{}`", s.trim()))?;
        }
    }
    Ok(total)
}

fn parse_schedstat(s: &str) -> Option<u64> {
    s.split_whitespace().next()?.parse().ok()
}

impl Probe {
    /// Starts measuring `pid`; with `syscalls`, attaches `perf stat` and waits until it
    /// counts.
    pub(crate) fn start(pid: u32, syscalls: bool, scratch: &Path) -> Result<Probe, String> {
        let perf = if syscalls {
            let out = scratch.join(format!(
                "tessera-bench-perf-{}-{pid}.txt",
                std::process::id()
            ));
            let _ = std::fs::remove_file(&out);
            let child = Command::new("perf")
                .args(["stat", "-x", ",", "-e", "raw_syscalls:sys_enter", "-p"])
                .arg(pid.to_string())
                .arg("-o")
                .arg(&out)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("--syscalls: cannot run perf: {e}"))?;
            // perf attaches within milliseconds; a fixed pause keeps the start of the
            // round inside the count.
            std::thread::sleep(Duration::from_millis(300));
            Some((child, out))
        } else {
            None
        };
        let cpu0 = cpu_ns(pid)?;
        Ok(Probe { pid, cpu0, perf })
    }

    /// Ends the measurement.
    pub(crate) fn finish(self) -> Result<ServerUse, String> {
        let cpu1 = cpu_ns(self.pid)?;
        let cpu_s = cpu1.saturating_sub(self.cpu0) as f64 / 1e9;
        let syscalls = match self.perf {
            None => None,
            Some((mut child, out)) => {
                let pid = nix::unistd::Pid::from_raw(child.id() as i32);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    match child.try_wait() {
                        Ok(Some(_)) => break,
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(20))
                        }
                        _ => {
                            let _ = child.kill();
                            let _ = child.wait();
                            return Err("--syscalls: perf did not stop".into());
                        }
                    }
                }
                let text = std::fs::read_to_string(&out)
                    .map_err(|e| format!("--syscalls: perf wrote no output ({e})"))?;
                let _ = std::fs::remove_file(&out);
                Some(parse_perf(&text).ok_or_else(|| {
                    format!(
                        "--syscalls: perf could not count raw_syscalls:sys_enter (permissions? \
                         kernel.perf_event_paranoid): {}",
                        text.trim()
                    )
                })?)
            }
        };
        Ok(ServerUse { cpu_s, syscalls })
    }
}

/// The count from `perf stat -x ,` output ("12345,,raw_syscalls:sys_enter,...").
fn parse_perf(text: &str) -> Option<u64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.contains("raw_syscalls:sys_enter"))
        .and_then(|l| l.split(',').next())
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schedstat_and_perf() {
        assert_eq!(parse_schedstat("2833990 1200 7\n"), Some(2833990));
        assert_eq!(parse_schedstat(""), None);
        let perf = "# started on Mon\n\n641164,,raw_syscalls:sys_enter,2565389544,100.00,,\n";
        assert_eq!(parse_perf(perf), Some(641164));
        assert_eq!(
            parse_perf("<not counted>,,raw_syscalls:sys_enter,0,0.00,,\n"),
            None
        );
    }

    #[test]
    fn measures_this_process() {
        let pid = std::process::id();
        let p = Probe::start(pid, false, &std::env::temp_dir()).unwrap();
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_mul(31).wrapping_add(1);
        }
        std::hint::black_box(x);
        let u = p.finish().unwrap();
        assert!(u.cpu_s > 0.0, "{u:?}");
        assert_eq!(u.syscalls, None);
    }
}
