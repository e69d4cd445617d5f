//! Standard base64 (with `=` padding), for meta keys sent with the `b` flag: decoded when
//! parsed, encoded again when a reply echoes the key. A leaf.

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Standard base64 (with `=` padding) into `out`; the decoded length, or None if the input
/// is not base64 or does not fit.
pub fn base64_decode(input: &[u8], out: &mut [u8]) -> Option<usize> {
    if input.is_empty() || !input.len().is_multiple_of(4) {
        return None;
    }
    let mut n = 0;
    for (ci, chunk) in input.chunks(4).enumerate() {
        let last = ci == input.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut v = 0u32;
        for &c in &chunk[..4 - pad] {
            v = (v << 6) | b64_value(c)? as u32;
        }
        v <<= 6 * pad as u32;
        let bytes = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        for &b in &bytes[..3 - pad] {
            *out.get_mut(n)? = b;
            n += 1;
        }
    }
    Some(n)
}

/// Standard base64 with padding, appended to `out`.
pub fn base64_encode(input: &[u8], out: &mut Vec<u8>) {
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        out.push(B64[(v >> 18) as usize & 63]);
        out.push(B64[(v >> 12) as usize & 63]);
        out.push(if chunk.len() > 1 {
            B64[(v >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if chunk.len() > 2 {
            B64[v as usize & 63]
        } else {
            b'='
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for input in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"fooba",
            b"foobar",
            b"\x00\xff\x10",
        ] {
            let mut enc = Vec::new();
            base64_encode(input, &mut enc);
            if input.is_empty() {
                assert!(enc.is_empty());
                continue;
            }
            let mut dec = [0u8; 16];
            let n = base64_decode(&enc, &mut dec).expect("decodes");
            assert_eq!(&dec[..n], input);
        }
        let mut enc = Vec::new();
        base64_encode(b"foobar", &mut enc);
        assert_eq!(enc, b"Zm9vYmFy");
        let mut d = [0u8; 8];
        assert_eq!(base64_decode(b"Zm9v!mFy", &mut d), None);
        assert_eq!(base64_decode(b"Zm9", &mut d), None);
        assert_eq!(base64_decode(b"Zg==Zg==", &mut d), None);
    }
}
