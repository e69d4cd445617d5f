//! The `tessera` binary: command line → configuration → executors.

use std::process::ExitCode;

use tessera::config::{self, Command};
use tessera::runtime::Server;

/// glibc raises its mmap threshold each time a large block is freed (up to 32 MiB), after
/// which large values come from the heap and, once evicted, leave holes that small items
/// do not fill: with `-m 64`, 1 GB of mixed-size values and then small items took resident
/// memory to 120 MiB. A fixed 128 KiB threshold (glibc's starting value) keeps large
/// values in their own mappings, returned to the kernel when freed (75 MiB).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn fix_malloc_mmap_threshold() {
    // SAFETY: mallopt only sets an allocator tunable; it is called before any other thread
    // exists and takes no pointers.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fix_malloc_mmap_threshold() {}

fn main() -> ExitCode {
    fix_malloc_mmap_threshold();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("certs") {
        return match tessera::tls::certs::run(&args[1..]) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("tessera: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match config::parse_args(&args) {
        Ok(Command::Run(c)) => *c,
        Ok(Command::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("tessera: {e}");
            return ExitCode::from(64);
        }
    };
    for w in &config.warnings {
        eprintln!("tessera: warning: {w}");
    }
    let pidfile = config.pidfile.clone();
    let unix = config.unix_socket.clone();
    let verbose = config.verbose;
    let mut server = match Server::bind(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tessera: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Before the "listening" line: scripts signal the server as soon as they see it.
    if let Err(e) = server.handle_signals() {
        eprintln!("tessera: {e}");
        return ExitCode::FAILURE;
    }
    if let Some(p) = &pidfile
        && let Err(e) = std::fs::write(p, format!("{}\n", std::process::id()))
    {
        eprintln!("tessera: cannot write pid file {}: {e}", p.display());
        return ExitCode::FAILURE;
    }
    if let Some(line) = server.kernel_tls_line() {
        eprintln!("tessera: {line}");
    }
    if let Some(a) = server.admin_addr {
        eprintln!("tessera: admin listener on http://{a} (/metrics, /health)");
    }
    if verbose > 0 {
        let mut addrs: Vec<String> = server.addrs.iter().map(|a| a.to_string()).collect();
        if let Some(p) = &unix {
            addrs.push(format!("unix:{}", p.display()));
        }
        eprintln!(
            "tessera {}: listening on {}",
            env!("CARGO_PKG_VERSION"),
            addrs.join(", ")
        );
    }
    let shared = server.shared();
    let result = server.run();
    if result.is_ok() && shared.shutdown.load(std::sync::atomic::Ordering::SeqCst) {
        eprintln!("tessera: shut down");
    }
    if let Some(p) = &pidfile {
        let _ = std::fs::remove_file(p);
    }
    if let Some(p) = &unix {
        let _ = std::fs::remove_file(p);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera: {e}");
            ExitCode::FAILURE
        }
    }
}
