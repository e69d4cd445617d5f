//! A certificate's validity dates (notBefore, notAfter), read by walking its DER: the
//! certificate's dates are all the server checks itself (rustls verifies the rest), and a
//! walk of four fields replaces an X.509 parser and its fifteen crates.
//!
//! Strict DER as RFC 5280 requires it (4.1.2.5): UTCTime as `YYMMDDHHMMSSZ` (years 1950-2049)
//! and GeneralizedTime as `YYYYMMDDHHMMSSZ`, both in UTC with seconds; the same forms
//! rustls-webpki accepts, so a certificate refused here is one TLS clients refuse too.

use std::fmt;

/// What is wrong with a certificate's DER, as far as the walk to its validity goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DateError {
    /// The DER ends early or holds something else where this field should be.
    Malformed(&'static str),
    /// A validity date that is not one of RFC 5280's two forms, or not a real date.
    BadTime,
}

impl fmt::Display for DateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DateError::Malformed(what) => write!(f, "malformed DER at the {what}"),
            DateError::BadTime => f.write_str(
                "a validity date that is neither UTCTime YYMMDDHHMMSSZ nor \
                 GeneralizedTime YYYYMMDDHHMMSSZ",
            ),
        }
    }
}

impl std::error::Error for DateError {}

/// A validity date, UTC, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertTime {
    year: i64,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

impl CertTime {
    /// Seconds since the Unix epoch.
    pub(crate) fn unix(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400
            + i64::from(self.hour) * 3_600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }
}

/// As the messages have always shown a date: `Jan  2 03:04:05 2030 +00:00`.
impl fmt::Display for CertTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        write!(
            f,
            "{} {:>2} {:02}:{:02}:{:02} {} +00:00",
            MONTHS[usize::from(self.month - 1)],
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.year
        )
    }
}

/// A certificate's validity period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Validity {
    /// notBefore.
    pub(crate) not_before: CertTime,
    /// notAfter.
    pub(crate) not_after: CertTime,
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const EXPLICIT_0: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The validity of a DER certificate:
/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
/// serialNumber INTEGER, signature SEQUENCE, issuer SEQUENCE, validity SEQUENCE
/// { notBefore Time, notAfter Time }, ... }, ... }`.
pub(crate) fn validity(der: &[u8]) -> Result<Validity, DateError> {
    let (cert, _) = expect(der, SEQUENCE, "certificate")?;
    let (tbs, _) = expect(cert, SEQUENCE, "tbsCertificate")?;
    let mut rest = tbs;
    if rest.first() == Some(&EXPLICIT_0) {
        rest = expect(rest, EXPLICIT_0, "version")?.1;
    }
    rest = expect(rest, INTEGER, "serialNumber")?.1;
    rest = expect(rest, SEQUENCE, "signature algorithm")?.1;
    rest = expect(rest, SEQUENCE, "issuer")?.1;
    let (validity, _) = expect(rest, SEQUENCE, "validity")?;
    let (not_before, rest) = time(validity)?;
    let (not_after, _) = time(rest)?;
    Ok(Validity {
        not_before,
        not_after,
    })
}

/// The content of the DER element at the start of `input` if its tag is `tag`, and what
/// follows it. Only the one-byte tags and the definite lengths DER allows.
fn expect<'a>(
    input: &'a [u8],
    tag: u8,
    what: &'static str,
) -> Result<(&'a [u8], &'a [u8]), DateError> {
    let bad = DateError::Malformed(what);
    let (&found, rest) = input.split_first().ok_or(bad)?;
    if found != tag {
        return Err(bad);
    }
    let (&first, rest) = rest.split_first().ok_or(bad)?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        // Long form: 1 to 4 length bytes (0x80 alone would be BER's indefinite length).
        0x81..=0x84 => {
            let n = usize::from(first & 0x7f);
            if rest.len() < n {
                return Err(bad);
            }
            let (bytes, rest) = rest.split_at(n);
            let len = bytes
                .iter()
                .fold(0usize, |acc, &b| acc << 8 | usize::from(b));
            (len, rest)
        }
        _ => return Err(bad),
    };
    if rest.len() < len {
        return Err(bad);
    }
    Ok(rest.split_at(len))
}

/// A `Time` (UTCTime or GeneralizedTime) at the start of `input`, and what follows it.
fn time(input: &[u8]) -> Result<(CertTime, &[u8]), DateError> {
    let (tag, what) = match input.first() {
        Some(&GENERALIZED_TIME) => (GENERALIZED_TIME, "GeneralizedTime"),
        _ => (UTC_TIME, "validity time"),
    };
    let (text, rest) = expect(input, tag, what)?;
    let (year, text) = match (tag, text.len()) {
        (UTC_TIME, 13) => {
            // RFC 5280: YY >= 50 is 19YY, otherwise 20YY.
            let yy = i64::from(two_digits(&text[..2])?);
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        (GENERALIZED_TIME, 15) => {
            let yyyy =
                i64::from(two_digits(&text[..2])?) * 100 + i64::from(two_digits(&text[2..4])?);
            (yyyy, &text[4..])
        }
        _ => return Err(DateError::BadTime),
    };
    // What is left: MMDDHHMMSSZ.
    if text[10] != b'Z' {
        return Err(DateError::BadTime);
    }
    let t = CertTime {
        year,
        month: two_digits(&text[0..2])?,
        day: two_digits(&text[2..4])?,
        hour: two_digits(&text[4..6])?,
        minute: two_digits(&text[6..8])?,
        second: two_digits(&text[8..10])?,
    };
    let real = (1..=12).contains(&t.month)
        && t.day >= 1
        && t.day <= days_in_month(t.year, t.month)
        && t.hour < 24
        && t.minute < 60
        && t.second < 60;
    if !real {
        return Err(DateError::BadTime);
    }
    Ok((t, rest))
}

fn two_digits(b: &[u8]) -> Result<u8, DateError> {
    match b {
        [t @ b'0'..=b'9', u @ b'0'..=b'9'] => Ok((t - b'0') * 10 + (u - b'0')),
        _ => Err(DateError::BadTime),
    }
}

fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given (proleptic Gregorian) date: Howard Hinnant's
/// `days_from_civil` (http://howardhinnant.github.io/date_algorithms.html).
fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let (m, d) = (i64::from(month), i64::from(day));
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    /// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 3650`
    /// (OpenSSL 3.0): both dates UTCTime, short DER lengths.
    const OPENSSL_EC: &str = "-----BEGIN CERTIFICATE-----
MIIBijCCAS+gAwIBAgIUBkhG92btb2f4C+Yz6wesffoIKD4wCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPdGVzc2VyYS10ZXN0LWVjMB4XDTI2MTIwMzEwMDYzN1oXDTM2
MTEzMDEwMDYzN1owGjEYMBYGA1UEAwwPdGVzc2VyYS10ZXN0LWVjMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEqkLlT4M/tD+gM5680+EvCT/ExSNrK8rQNWIoth4G
bRkCDKpXvR9MjHuycbJaixKxGjyStErCmsNlIn/o0Mn+oKNTMFEwHQYDVR0OBBYE
FPn2F0mTVEraOTlGuMfV5OTmAkWNMB8GA1UdIwQYMBaAFPn2F0mTVEraOTlGuMfV
5OTmAkWNMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAIsVFLz7
l9B4ATlbyt+KD6G0gbRPxh4DCMtAZFGRaWB+AiEA+Un5+TnaI8NLLWeKmeTOAZvd
FdBAXWjmUmtB4lTkstE=
-----END CERTIFICATE-----
";

    /// `openssl req -x509 -newkey rsa:2048 -days 40000` (OpenSSL 3.0): notAfter in 2136, so
    /// GeneralizedTime; long-form DER lengths.
    const OPENSSL_RSA: &str = "-----BEGIN CERTIFICATE-----
MIIDGTCCAgGgAwIBAgIUPWYU79EBIUMciPpLDLlrjlcq/FYwDQYJKoZIhvcNAQEL
BQAwGzEZMBcGA1UEAwwQdGVzc2VyYS10ZXN0LXJzYTAgFw0yNjEyMDMxMDA2Mzda
GA8yMTM2MDYwOTEwMDYzN1owGzEZMBcGA1UEAwwQdGVzc2VyYS10ZXN0LXJzYTCC
ASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAJYaf3OaOGqVT4JdRvlgMyHI
/sAMoZzayPAEz6By9xzfZ/iBwV6jlD7K4Isqty+Jd32/hXHUoAxbkaYJMNPy5S4x
d1mjZ7hJ1CRtX8H4+JSry/aLtKt/P9Da4vxj/B/v2ayVJb4B0FEDTAesKi+PSFJm
SlAIjGTl/KSegtCnYCPo9tqq7yEvSGCN4v/wnrtQLsM/cGDaa4MS8EP8+Pq7ENGs
BcK2g9skY7kdqo0eQ2VwlopqeqYc10v0CpFqbyZeO9+gdqH33CTimlcoQajdiCn5
SzLapX/Iy8iTY2u0eg0p0j5n9pv9tr9SC3tLjMUhoaIcYND4+v3KazfGGmcaSbsC
AwEAAaNTMFEwHQYDVR0OBBYEFK3RYdHQVDWWJaWmIpTT4IRmw46tMB8GA1UdIwQY
MBaAFK3RYdHQVDWWJaWmIpTT4IRmw46tMA8GA1UdEwEB/wQFMAMBAf8wDQYJKoZI
hvcNAQELBQADggEBABonmiAD6QWJm96xybuQfWMRJbepFKCZLhRFi1qZ/nez9Fnu
u0YDQu4+QjCCf3QWKAai2ORxWLASzZvFb46w8MzK//BYmts7MY1Ii9L75p8F4aRs
vVy036kjjze0YaNFQHX3YOsy7/oaZPhe/azRBQ3KApEz+Zs7cjJ8L3FQJJABupN8
z5vZP2SEejNw4nSbpcWEpq4Fs++/Lw4gx6GoikAjNKWvW0EzAgs3hm0+LKVpjOiW
LpJkj6XRxmCIxEf9ROdzBuqJ5lheZxLb69ThHfbzAfO2yo4p1TU87puy5le4wpEa
+63RadwHp63sojRULHAQABAJUpw8yENlqy2fqF0=
-----END CERTIFICATE-----
";

    fn der(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    fn dates(der: &[u8]) -> (i64, i64, String, String) {
        let v = validity(der).unwrap();
        (
            v.not_before.unix(),
            v.not_after.unix(),
            v.not_before.to_string(),
            v.not_after.to_string(),
        )
    }

    #[test]
    fn openssl_certificates() {
        // The numbers from `date -d "$(openssl x509 -noout -startdate ...)" +%s`.
        assert_eq!(
            dates(&der(OPENSSL_EC)),
            (
                1_796_292_397,
                2_111_652_397,
                "Dec  3 10:06:37 2026 +00:00".into(),
                "Nov 30 10:06:37 2036 +00:00".into()
            )
        );
        assert_eq!(
            dates(&der(OPENSSL_RSA)),
            (
                1_796_292_397,
                5_252_292_397,
                "Dec  3 10:06:37 2026 +00:00".into(),
                "Jun  9 10:06:37 2136 +00:00".into()
            )
        );
    }

    #[test]
    fn tessera_certs_certificates() {
        // `tessera certs` leaves rcgen's default dates: 1975-01-01 (UTCTime) to 4096-01-01
        // (GeneralizedTime).
        let dir = std::env::temp_dir().join(format!("tessera-validity-{}", std::process::id()));
        let files = crate::tls::certs::generate(&dir, &["localhost".into()]).unwrap();
        let mut checked = 0;
        for f in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "pem"))
        {
            let pem = std::fs::read_to_string(f).unwrap();
            if !pem.contains("CERTIFICATE") {
                continue;
            }
            assert_eq!(
                dates(&der(&pem)),
                (
                    157_766_400,
                    67_090_118_400,
                    "Jan  1 00:00:00 1975 +00:00".into(),
                    "Jan  1 00:00:00 4096 +00:00".into()
                ),
                "{}",
                f.display()
            );
            checked += 1;
        }
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(checked, 3, "{files:?}");
    }

    #[test]
    fn rcgen_dates_either_side_of_2050() {
        let mut params = rcgen::CertificateParams::new(vec!["x".to_string()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2049, 12, 31);
        params.not_after = rcgen::date_time_ymd(2050, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let v = validity(cert.der()).unwrap();
        assert_eq!(v.not_before.unix(), 2_524_521_600);
        assert_eq!(v.not_after.unix(), 2_524_608_000);
        assert_eq!(v.not_before.to_string(), "Dec 31 00:00:00 2049 +00:00");
    }

    /// A certificate skeleton around the given validity content.
    fn with_validity(times: &[u8]) -> Vec<u8> {
        let mut tbs = vec![0xa0, 3, 0x02, 1, 2, 0x02, 1, 7, 0x30, 0, 0x30, 0];
        tbs.extend([0x30, times.len() as u8]);
        tbs.extend(times);
        let mut out = vec![0x30, tbs.len() as u8 + 2, 0x30, tbs.len() as u8];
        out.extend(tbs);
        out
    }

    fn utc(s: &str) -> Vec<u8> {
        let tag = if s.len() == 15 {
            GENERALIZED_TIME
        } else {
            UTC_TIME
        };
        let mut v = vec![tag, s.len() as u8];
        v.extend(s.as_bytes());
        v
    }

    fn parse_pair(a: &str, b: &str) -> Result<(i64, i64), DateError> {
        let v = validity(&with_validity(&[utc(a), utc(b)].concat()))?;
        Ok((v.not_before.unix(), v.not_after.unix()))
    }

    #[test]
    fn utc_time_century_and_calendar() {
        // 49 is 2049, 50 is 1950 (RFC 5280).
        assert_eq!(
            parse_pair("491231235959Z", "500101000000Z"),
            Ok((2_524_607_999, -631_152_000))
        );
        assert_eq!(
            parse_pair("000229000000Z", "19700101000000Z"),
            Ok((951_782_400, 0))
        );
        assert_eq!(
            parse_pair("20240229120000Z", "99991231235959Z"),
            Ok((1_709_208_000, 253_402_300_799))
        );
        // No 29 February in 2100 nor 2023; no 31 April, no hour 24, no second 60.
        for bad in [
            "21000229000000Z",
            "230229000000Z",
            "230431000000Z",
            "230101240000Z",
            "230101235960Z",
            "231301000000Z",
            "230100000000Z",
        ] {
            assert_eq!(
                parse_pair(bad, "300101000000Z"),
                Err(DateError::BadTime),
                "{bad}"
            );
        }
        // Not RFC 5280's forms: no seconds, an offset, fractions, a UTCTime of 15 bytes.
        for bad in [
            "2301010000Z",
            "230101000000+0100",
            "20230101000000.5Z",
            "230101000000",
            "2301010000000Z",
            "23010100000aZ",
        ] {
            assert_eq!(
                parse_pair("300101000000Z", bad),
                Err(DateError::BadTime),
                "{bad}"
            );
        }
    }

    #[test]
    fn truncated_or_mangled_der_is_an_error() {
        let full = der(OPENSSL_RSA);
        assert!(validity(&full).is_ok());
        // Every proper prefix is an error, not a panic (the outer length no longer fits).
        for n in 0..full.len() {
            assert!(validity(&full[..n]).is_err(), "{n}");
        }
        assert_eq!(validity(&[]), Err(DateError::Malformed("certificate")));
        // Indefinite and five-byte lengths are not DER.
        assert!(validity(&[0x30, 0x80, 0x30, 0x00]).is_err());
        assert!(validity(&[0x30, 0x85, 0, 0, 0, 0, 1]).is_err());
        let mut wrong = with_validity(&[utc("300101000000Z"), utc("300101000000Z")].concat());
        wrong[9] = 0x04; // serialNumber as an OCTET STRING
        assert_eq!(validity(&wrong), Err(DateError::Malformed("serialNumber")));
    }
}
