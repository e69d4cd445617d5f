//! The running kernel's io_uring: whether glommio can run on it at all, and what its rings
//! had to do without (vendor/glommio/TESSERA-PATCH.md, sixth change).

use crate::tls::ktls::kernel_release;

/// The kernel lacks io_uring operations glommio needs (Linux < 5.8).
#[derive(Debug)]
#[non_exhaustive]
pub struct TooOld {
    /// Its `uname -r`.
    pub release: String,
}

impl std::fmt::Display for TooOld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tessera needs Linux 5.8 or newer (io_uring operations glommio uses); \
             this kernel is {}",
            self.release
        )
    }
}

impl std::error::Error for TooOld {}

/// Before any executor starts: glommio asserts (a panic) where this returns an error.
pub fn check_io_uring() -> Result<(), TooOld> {
    if glommio::io_uring_supported() {
        Ok(())
    } else {
        Err(TooOld {
            release: kernel_release(),
        })
    }
}

/// Once, after an executor has set up its rings: one line for each io_uring feature this
/// kernel refused (none on 5.19+), e.g. "io_uring: COOP_TASKRUN (Linux 5.19) not available
/// (kernel 5.10.0-32-amd64): ...".
pub fn log_ring_fallbacks() {
    let fallbacks = glommio::io_uring_fallbacks();
    if fallbacks.is_empty() {
        return;
    }
    for (feature, cost) in fallbacks {
        log_fallback(feature, cost);
    }
}

/// One line for an io_uring feature this kernel refused, and what doing without it costs.
pub fn log_fallback(feature: &str, cost: &str) {
    let release = kernel_release();
    eprintln!("tessera: io_uring: {feature} not available (kernel {release}): {cost}");
}
