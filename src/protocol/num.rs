//! Number parsing with the exact acceptance rules of memcached's `safe_strto*` helpers
//! (C `strtol`/`strtoul`/`strtoull` plus memcached's checks), so the same inputs are
//! accepted and rejected: leading whitespace and a sign are allowed, at least one digit is
//! required, the number may be followed only by whitespace or the end, overflow fails, and a
//! '-' on an unsigned value fails only when the result would look negative as signed.

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// What C's strtoull/strtol scanned: sign, magnitude (saturated), digits seen, rest valid.
struct Scan {
    negative: bool,
    magnitude: u64,
    overflow: bool,
    /// At least one digit, and only whitespace (or nothing) after it.
    valid: bool,
    /// Where the digits ended (for the '-' check).
    end: usize,
}

fn scan(s: &[u8]) -> Scan {
    let mut i = 0;
    while i < s.len() && is_space(s[i]) {
        i += 1;
    }
    let mut negative = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        negative = s[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut magnitude: u64 = 0;
    let mut overflow = false;
    while i < s.len() && s[i].is_ascii_digit() {
        let d = (s[i] - b'0') as u64;
        match magnitude.checked_mul(10).and_then(|m| m.checked_add(d)) {
            Some(m) => magnitude = m,
            None => overflow = true,
        }
        i += 1;
    }
    let digits = i > start;
    let valid = digits && (i == s.len() || is_space(s[i]));
    Scan {
        negative,
        magnitude,
        overflow,
        valid,
        end: i,
    }
}

/// memcached's `safe_strtoull`: a 64-bit unsigned number (cas uniques, incr/decr deltas).
pub fn strtoull(s: &[u8]) -> Option<u64> {
    let sc = scan(s);
    if !sc.valid || sc.overflow {
        return None;
    }
    // strtoull negates a '-' number; memcached rejects it only if it then looks negative.
    let v = if sc.negative {
        sc.magnitude.wrapping_neg()
    } else {
        sc.magnitude
    };
    if (v as i64) < 0 && s[..sc.end].contains(&b'-') {
        return None;
    }
    Some(v)
}

/// memcached's `safe_strtoul` for 32-bit fields (client flags): C's 64-bit `strtoul`, then
/// memcached stores it into 32 bits, so larger values wrap (4294967296 is 0). Clients rely on
/// getting memcached's answer, so we reproduce the wrap rather than refuse.
pub fn strtoul32(s: &[u8]) -> Option<u32> {
    strtoull(s).map(|v| v as u32)
}

/// memcached's `safe_strtol` for 32-bit signed fields (exptime, byte counts): C's 64-bit
/// `strtol`, then stored into 32 bits (4000000000 becomes negative: already expired).
pub fn strtol32(s: &[u8]) -> Option<i32> {
    let sc = scan(s);
    if !sc.valid || sc.overflow {
        return None;
    }
    let v = if sc.negative {
        -(sc.magnitude as i128)
    } else {
        sc.magnitude as i128
    };
    // strtol reports ERANGE outside the 64-bit range.
    let v = i64::try_from(v).ok()?;
    Some(v as i32)
}

/// Parses a stored value for incr/decr the way memcached does (`safe_strtoull` on the data,
/// which is followed by `\r\n` in memcached's item): an empty value is non-numeric.
pub fn parse_stored_u64(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    // In memcached the value is followed by "\r\n", so a scan stops there at the latest; a
    // NUL inside ends the C string.
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    if end == 0 {
        return None;
    }
    strtoull(&value[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_rules() {
        assert_eq!(strtoull(b"0"), Some(0));
        assert_eq!(strtoull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(strtoull(b"18446744073709551616"), None);
        assert_eq!(strtoull(b"-1"), None);
        assert_eq!(strtoull(b"-0"), Some(0));
        assert_eq!(strtoull(b"+5"), Some(5));
        assert_eq!(strtoull(b" 5"), Some(5));
        assert_eq!(strtoull(b"5 "), Some(5));
        assert_eq!(strtoull(b"5x"), None);
        assert_eq!(strtoull(b""), None);
        assert_eq!(strtoull(b"-"), None);
        assert_eq!(strtoul32(b"4294967295"), Some(u32::MAX));
        assert_eq!(strtoul32(b"4294967296"), Some(0), "wraps like memcached");
        assert_eq!(strtoul32(b"-1"), None);
    }

    #[test]
    fn signed_rules() {
        assert_eq!(strtol32(b"-1"), Some(-1));
        assert_eq!(strtol32(b"2147483647"), Some(i32::MAX));
        assert_eq!(
            strtol32(b"2147483648"),
            Some(i32::MIN),
            "wraps like memcached"
        );
        assert_eq!(strtol32(b"4000000000"), Some(-294967296));
        assert_eq!(
            strtol32(b"99999999999999999999"),
            None,
            "beyond 64 bits: ERANGE"
        );
        assert_eq!(strtol32(b"-2147483648"), Some(i32::MIN));
        assert_eq!(strtol32(b"1a"), None);
        assert_eq!(strtol32(b"1\t"), Some(1));
    }

    #[test]
    fn stored_values() {
        assert_eq!(parse_stored_u64(b"9 "), Some(9));
        assert_eq!(parse_stored_u64(b""), None);
        assert_eq!(parse_stored_u64(b"abc"), None);
        assert_eq!(parse_stored_u64(b"12abc"), None);
    }
}
