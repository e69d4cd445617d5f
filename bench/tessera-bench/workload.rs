//! What each connection asks for: a small fast RNG, key choice (uniform, Zipf, sequential for
//! the preload) and value sizes.

/// xoshiro256** seeded through splitmix64: fast, good enough for load generation, reproducible.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, n); n > 0. Lemire's multiply-shift (bias below 2^-64 * n, irrelevant here).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// Zipf over ranks 1..=n with P(k) ∝ k^-s, by rejection-inversion (W. Hörmann, G. Derflinger,
/// "Rejection-inversion to generate variates from monotone discrete distributions", 1996), as
/// in Apache Commons RNG. O(1) per sample, no tables, any s ≥ 0 (s = 0 is uniform).
#[derive(Clone, Debug)]
pub(crate) struct Zipf {
    n: f64,
    s: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    threshold: f64,
}

impl Zipf {
    pub(crate) fn new(n: u64, s: f64) -> Result<Zipf, String> {
        if n == 0 {
            return Err("Zipf needs at least one key".into());
        }
        if !(s.is_finite() && s >= 0.0) {
            return Err(format!("Zipf parameter must be a number >= 0, got {s}"));
        }
        let mut z = Zipf {
            n: n as f64,
            s,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            threshold: 0.0,
        };
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(z.n + 0.5);
        z.threshold = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        Ok(z)
    }

    /// A rank in 1..=n (1 is the most popular).
    pub(crate) fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_integral_n + rng.next_f64() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.threshold || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.s) * log_x) * log_x
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

/// ln(1+x)/x, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// (e^x - 1)/x, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x))
    }
}

/// How keys are drawn from `0..keys`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Dist {
    Uniform,
    /// Zipf with this exponent; key 0 is the most popular.
    Zipf(f64),
}

impl std::fmt::Display for Dist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dist::Uniform => write!(f, "uniform"),
            Dist::Zipf(s) => write!(f, "zipf:{s}"),
        }
    }
}

/// A key chooser for one connection.
#[derive(Clone, Debug)]
pub(crate) enum KeyGen {
    Uniform {
        n: u64,
    },
    Zipf(Zipf),
    /// `next, next + step, ...` while below `end` (the preload's share of one connection).
    Sequential {
        next: u64,
        step: u64,
        end: u64,
    },
}

impl KeyGen {
    pub(crate) fn new(dist: &Dist, n: u64) -> Result<KeyGen, String> {
        Ok(match dist {
            Dist::Uniform => KeyGen::Uniform { n },
            Dist::Zipf(s) => KeyGen::Zipf(Zipf::new(n, *s)?),
        })
    }

    /// The next key index, or None when a sequential generator is exhausted.
    pub(crate) fn next(&mut self, rng: &mut Rng) -> Option<u64> {
        match self {
            KeyGen::Uniform { n } => Some(rng.below(*n)),
            KeyGen::Zipf(z) => Some(z.sample(rng) - 1),
            KeyGen::Sequential { next, step, end } => {
                if *next >= *end {
                    return None;
                }
                let k = *next;
                *next = next.saturating_add(*step);
                Some(k)
            }
        }
    }
}

/// Writes `prefix` followed by `index` as ten zero-padded digits (`key:%010d`); wider numbers
/// are written in full.
pub(crate) fn write_key(out: &mut Vec<u8>, prefix: &[u8], index: u64) {
    out.extend_from_slice(prefix);
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    let mut v = index;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let start = i.min(digits.len() - 10);
    out.extend_from_slice(&digits[start..]);
}

/// Value size: fixed (`min == max`) or uniform in `min..=max`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ValueSize {
    pub(crate) min: usize,
    pub(crate) max: usize,
}

impl ValueSize {
    pub(crate) fn pick(&self, rng: &mut Rng) -> usize {
        if self.min == self.max {
            self.min
        } else {
            self.min + rng.below((self.max - self.min + 1) as u64) as usize
        }
    }
}

impl std::fmt::Display for ValueSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zipf_pmf(n: u64, s: f64) -> Vec<f64> {
        let w: Vec<f64> = (1..=n).map(|k| (k as f64).powf(-s)).collect();
        let total: f64 = w.iter().sum();
        w.into_iter().map(|x| x / total).collect()
    }

    /// Pearson's chi-square of `samples` draws against the exact Zipf pmf.
    fn chi_square(n: u64, s: f64, samples: usize, seed: u64) -> f64 {
        let z = Zipf::new(n, s).unwrap();
        let mut rng = Rng::new(seed);
        let mut counts = vec![0u64; n as usize];
        for _ in 0..samples {
            let k = z.sample(&mut rng);
            assert!((1..=n).contains(&k), "rank {k} out of 1..={n}");
            counts[(k - 1) as usize] += 1;
        }
        zipf_pmf(n, s)
            .iter()
            .zip(&counts)
            .map(|(p, &c)| {
                let e = p * samples as f64;
                (c as f64 - e).powi(2) / e
            })
            .sum()
    }

    // Critical chi-square values at p = 0.001: 19 degrees of freedom -> 43.82, 49 -> 85.35.
    #[test]
    fn zipf_matches_pmf_s099() {
        let c = chi_square(20, 0.99, 200_000, 1);
        assert!(c < 43.82, "chi-square {c}");
    }

    #[test]
    fn zipf_matches_pmf_other_exponents() {
        for (s, seed) in [(0.5, 2), (1.0, 3), (1.5, 4), (0.0, 5)] {
            let c = chi_square(50, s, 200_000, seed);
            assert!(c < 85.35, "s={s}: chi-square {c}");
        }
    }

    #[test]
    fn zipf_is_skewed_the_right_way() {
        // With s = 0.99 over 1000 keys the top key has ~13% of the mass: a uniform sampler
        // or a reversed one fails this.
        let z = Zipf::new(1000, 0.99).unwrap();
        let mut rng = Rng::new(7);
        let n = 100_000;
        let top = (0..n).filter(|_| z.sample(&mut rng) == 1).count() as f64 / n as f64;
        let p1 = zipf_pmf(1000, 0.99)[0];
        assert!(
            (top - p1).abs() < 0.01,
            "top key share {top}, expected {p1}"
        );
    }

    #[test]
    fn zipf_rejects_bad_parameters() {
        assert!(Zipf::new(0, 1.0).is_err());
        assert!(Zipf::new(10, -0.5).is_err());
        assert!(Zipf::new(10, f64::NAN).is_err());
        // One key: always rank 1.
        let z = Zipf::new(1, 0.99).unwrap();
        let mut rng = Rng::new(1);
        assert!((0..100).all(|_| z.sample(&mut rng) == 1));
    }

    #[test]
    fn uniform_covers_range() {
        let mut rng = Rng::new(9);
        let mut g = KeyGen::new(&Dist::Uniform, 10).unwrap();
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[g.next(&mut rng).unwrap() as usize] += 1;
        }
        assert!(seen.iter().all(|&c| (800..1200).contains(&c)), "{seen:?}");
    }

    #[test]
    fn sequential_partitions() {
        let mut rng = Rng::new(0);
        let mut g = KeyGen::Sequential {
            next: 1,
            step: 3,
            end: 10,
        };
        let got: Vec<u64> = std::iter::from_fn(|| g.next(&mut rng)).collect();
        assert_eq!(got, vec![1, 4, 7]);
    }

    #[test]
    fn key_format() {
        let mut v = Vec::new();
        write_key(&mut v, b"key:", 42);
        assert_eq!(v, b"key:0000000042");
        v.clear();
        write_key(&mut v, b"", 0);
        assert_eq!(v, b"0000000000");
        v.clear();
        write_key(&mut v, b"k", 12_345_678_901);
        assert_eq!(v, b"k12345678901");
    }

    #[test]
    fn value_size_range() {
        let mut rng = Rng::new(3);
        let vs = ValueSize { min: 10, max: 12 };
        let mut seen = [false; 3];
        for _ in 0..1000 {
            let s = vs.pick(&mut rng);
            assert!((10..=12).contains(&s));
            seen[s - 10] = true;
        }
        assert_eq!(seen, [true; 3]);
        assert_eq!(ValueSize { min: 5, max: 5 }.pick(&mut rng), 5);
    }
}
