//! Time as memcached keeps it: seconds relative to process start (`rel_time`), and the
//! conversion of a client's exptime into that scale.
//!
//! Expiry times on the wire are relative seconds up to 30 days, absolute unix times above that,
//! and "already expired" when negative. Keeping one `u32` scale makes items small and every
//! comparison cheap; the store never reads a clock itself, it is handed `now`, so tests can
//! drive time by hand.

use std::time::{SystemTime, UNIX_EPOCH};

/// Exptimes above this many seconds are absolute unix times (memcached's REALTIME_MAXDELTA).
pub const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;

/// Seconds since the process started, offset so that 0 and 1 are always in the past.
pub type RelTime = u32;

/// The process-wide time base. Copyable; every shard holds the same one.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Unix time that `RelTime` 0 stands for.
    started: i64,
}

/// Rel time at startup: like memcached, start well above 1 so "expired" markers (1) are in the past.
const START_OFFSET: i64 = 2;

impl Clock {
    /// A clock whose rel time starts now.
    pub fn new() -> Self {
        Clock::starting_at(unix_now())
    }

    /// A clock whose rel time `START_OFFSET` is the given unix time (tests).
    pub fn starting_at(unix: i64) -> Self {
        Clock {
            started: unix - START_OFFSET,
        }
    }

    /// The current rel time.
    pub fn now(&self) -> RelTime {
        self.rel(unix_now())
    }

    /// Unix time `unix` on the rel scale (clamped to the u32 range).
    pub fn rel(&self, unix: i64) -> RelTime {
        (unix - self.started).clamp(START_OFFSET, u32::MAX as i64) as RelTime
    }

    /// Seconds since the process started.
    pub fn uptime(&self, now: RelTime) -> u32 {
        now.saturating_sub(START_OFFSET as RelTime)
    }

    /// The unix time a rel time stands for.
    pub fn unix(&self, rel: RelTime) -> i64 {
        self.started + rel as i64
    }

    /// Converts a client exptime into rel time: 0 never expires; negative, or an absolute
    /// time not after process start, is already expired (1); up to 30 days is relative to now.
    pub fn exptime(&self, exptime: i64, now: RelTime) -> RelTime {
        if exptime == 0 {
            0
        } else if exptime < 0 {
            1
        } else if exptime > REALTIME_MAXDELTA {
            if exptime <= self.started {
                1
            } else {
                (exptime - self.started).min(u32::MAX as i64) as RelTime
            }
        } else {
            (exptime + now as i64).min(u32::MAX as i64) as RelTime
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// Current unix time in seconds. Read on every keyed request, so from the coarse clock
/// (`CLOCK_REALTIME_COARSE`: the vDSO copies the last tick's time, no clock source read,
/// about a fifth of the precise clock's cost on a VM); a tick (1–10 ms) late is nothing
/// on a scale of seconds (memcached itself updates its clock once a second).
pub fn unix_now() -> i64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME_COARSE) {
        Ok(ts) => ts.tv_sec(),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exptime_conversion() {
        let c = Clock::starting_at(1_700_000_000);
        let now = c.now_at(1_700_000_100);
        assert_eq!(now, 102);
        assert_eq!(c.exptime(0, now), 0);
        assert_eq!(c.exptime(-1, now), 1);
        assert_eq!(c.exptime(10, now), 112);
        assert_eq!(
            c.exptime(REALTIME_MAXDELTA, now),
            REALTIME_MAXDELTA as u32 + 102
        );
        // absolute times
        assert_eq!(c.exptime(1_700_000_200, now), 202);
        assert_eq!(c.exptime(1_000_000_000, now), 1);
        assert_eq!(c.unix(202), 1_700_000_200);
    }

    impl Clock {
        fn now_at(&self, unix: i64) -> RelTime {
            self.rel(unix)
        }
    }
}
