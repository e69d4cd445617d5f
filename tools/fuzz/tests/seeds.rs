//! The seed corpora under `corpus/`, as code. They are committed; this rewrites them:
//! `cargo test --no-default-features --test seeds -- --ignored --nocapture`.
//! (Inputs the fuzzer adds to `corpus/` while running, and `regress-*` files, are left alone.)

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::ring::{cipher_suite, default_provider};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore};

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(format!("seed-{name}")), data).expect("write seed");
}

/// Text streams (the first byte is the read schedule: `0x00` = reads of 1 byte,
/// `0x18` = reads of 4, `0x02 a b` = reads of a+1, b+1, ...).
const TEXT: [(&str, &[u8]); 13] = [
    ("set-get", b"\x18set k 0 0 5\r\nhello\r\nget k\r\ngets k k2 k\r\n"),
    (
        "config",
        b"\x18config get cluster\r\nconfig set cluster 0 24\r\n2\nh|127.0.0.1|11211 h2:1\r\nconfig get cluster\r\nconfig set cluster 0 3 noreply\r\n1\nx\r\nconfig get nodes\r\nconfig set cluster 0 99999999\r\n",
    ),
    (
        "store-family",
        b"\x02\x04\x10add a 1 60 1\r\nx\r\nappend a 0 0 2\r\nyz\r\nprepend a 0 0 1\r\nw\r\nreplace a 5 0 1 noreply\r\nq\r\ncas a 0 0 1 2\r\nc\r\nget a\r\n",
    ),
    (
        "arith",
        b"\x08set n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 100\r\nincr n 18446744073709551615\r\nincr x 1\r\ndecr n abc\r\n",
    ),
    (
        "delete-touch",
        b"\x00set d 0 0 1\r\n1\r\ntouch d 10\r\ngat 0 d\r\ngats 100 d\r\ndelete d 0\r\ndelete d noreply\r\ndelete d 1\r\n",
    ),
    (
        "errors",
        b"\x10set k 0 0 -1\r\nset k 0 0 3\r\nabcde\r\nget\r\nbogus\r\n\r\nset k\r\nincr\r\nverbosity\r\nflush_all junk\r\n",
    ),
    (
        "too-large",
        b"\x20set big 0 0 2000000\r\nshort\r\nget big\r\n",
    ),
    (
        "misc",
        b"\x38version\r\nverbosity 1\r\nflush_all 0\r\nflush_all noreply\r\nstats settings\r\nstats detail on\r\nstats nope\r\ncache_memlimit 100\r\nshutdown\r\nrefresh_certs\r\nmn\r\nquit\r\nget after_quit\r\n",
    ),
    ("http", b"\x18GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("nul", b"\x08get a\x00b\r\nset k\x00 0 0 1\r\nx\r\nget k\n"),
    (
        "noreply",
        b"\x03\x00\x01\x02set a 0 0 1 noreply\r\na\r\nincr a 1 noreply\r\ntouch a 1 noreply\r\nget a\r\n",
    ),
    ("bare-lf", b"\x18set k 0 0 1\nx\r\nget k\nget k  k \n"),
    (
        "meta-in-text",
        b"\x18ms k 2 T0 F5\r\nhi\r\nmg k v f t c\r\nma k\r\nmd k q\r\nmn\r\nme k\r\n",
    ),
];

/// Meta generator inputs (see `meta_stream`): opcode, key, then per command its fields.
fn meta_seeds() -> Vec<(&'static str, Vec<u8>)> {
    // flag table indices (FLAGS in src/protocol.rs)
    const V: u8 = 0;
    const Q: u8 = 1;
    const K: u8 = 2;
    const S: u8 = 3;
    const T: u8 = 4;
    const C: u8 = 5;
    const F: u8 = 6;
    const O: u8 = 13;
    const TN: u8 = 16;
    const NN: u8 = 17;
    const RN: u8 = 18;
    const FN: u8 = 19;
    const CN: u8 = 20;
    const DN: u8 = 22;
    const JN: u8 = 23;
    const ME: u8 = 25;
    const MA: u8 = 26;
    const MI: u8 = 29;
    const MD: u8 = 31;
    const I: u8 = 11;
    const X: u8 = 12;
    // a small number n in a `#` slot
    let num = |n: u8| n << 3;
    vec![
        (
            "ms-mg",
            vec![
                3,
                0,
                5,
                2,
                TN,
                num(30),
                FN,
                num(7),
                0, // ms k0 5 T30 F7
                0,
                0,
                5,
                V,
                K,
                S,
                T,
                F, // mg k0 v k s t f
                0,
                1,
                2,
                V,
                Q, // mg k1 v q (miss, quiet)
                8, // mn
            ],
        ),
        (
            "ms-modes",
            vec![
                3,
                2,
                3,
                1,
                ME,
                1, // ms k2 3 ME
                3,
                2,
                3,
                1,
                MA,
                2, // ms k2 3 MA
                4,
                2,
                3,
                2,
                I,
                TN,
                num(5),
                3, // ms k2 3 I T5
                0,
                2,
                3,
                V,
                C,
                K, // mg k2 v c k
            ],
        ),
        (
            "ma",
            vec![
                6,
                3,
                3,
                NN,
                num(30),
                JN,
                num(10),
                MI, // ma key3 N60 J10 MI
                6,
                3,
                2,
                DN,
                num(5),
                V, // ma key3 D5 v
                7,
                3,
                2,
                MD,
                V, // ma key3 MD v
                6,
                4,
                0, // ma a/b (miss)
            ],
        ),
        (
            "md-me",
            vec![
                3,
                5,
                1,
                0,
                0, // ms k5 1
                14,
                5,
                2,
                Q,
                I, // md k5 q I
                0,
                5,
                3,
                V,
                C,
                O,
                num(9), // mg k5 v c O9
                9,
                5,
                0, // me k5
                5,
                5,
                1,
                X, // md k5 x
                9,
                1,
                0, // me k1
            ],
        ),
        (
            "base64-keys",
            vec![
                3,
                204,
                2,
                1,
                TN,
                num(0),
                0, // ms azA= 2 b T0
                0,
                0,
                2,
                V,
                K, // mg k0 v k (same item)
                0,
                208,
                1,
                V, // mg !!!! b v (bad base64)
                5,
                209,
                0, // md az b
            ],
        ),
        (
            "recache-vivify",
            vec![
                0,
                1,
                3,
                NN,
                num(30),
                TN,
                num(30),
                V, // mg k1 N30 T30 v (vivify)
                0,
                1,
                3,
                RN,
                num(31),
                V,
                C, // mg k1 R31 v c (recache)
                0,
                1,
                2,
                CN,
                num(1),
                V, // mg k1 C1 v
            ],
        ),
        (
            "errors",
            vec![
                0, 0, 7, V, V, 33, 34, 39, 38, 37, // duplicate flags, bad M, Z, bare T, O
                3, 250, 3, b'a', b' ', b'b', 0, 0, 0, // raw key with a space
                11, 10, b'm', b'g', b' ', b'k', b' ', 0, 0, b'v', 0x80, 0xff, // raw
                0x83, 0, 4, 0, 0, // ms k0 4 with a bad data chunk end
                0x40, 240, 0, 0, // mg with a 240-byte key, \n ending
                3, 0, 255, 0, // ms k0 2000000: the rest is swallowed
                0, 0, 1, V,
            ],
        ),
        (
            "text-mix",
            vec![
                10,
                6,
                1,
                num(0),
                num(0),
                num(3),
                1, // set k1 0 0 3
                10,
                0,
                1,
                0, // get k1
                10,
                3,
                1,
                num(2), // incr k1 2
                10,
                10, // flush_all
                0,
                1,
                1,
                V, // mg k1 v
            ],
        ),
    ]
}

/// A ClientHello for each suite (mode 0: raw records before a handshake).
fn client_hellos() -> Vec<(String, Vec<u8>)> {
    let suites = [
        ("tls13-aes128", cipher_suite::TLS13_AES_128_GCM_SHA256),
        ("tls13-chacha", cipher_suite::TLS13_CHACHA20_POLY1305_SHA256),
        (
            "tls12-ecdsa-aes256",
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ),
    ];
    suites
        .into_iter()
        .map(|(name, suite)| {
            let mut provider = default_provider();
            provider.cipher_suites = vec![suite];
            let config = ClientConfig::builder_with_provider(Arc::new(provider))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(RootCertStore::empty())
                .with_no_client_auth();
            let name_ = ServerName::try_from("localhost").expect("name");
            let mut c = ClientConnection::new(Arc::new(config), name_).expect("client");
            let mut hello = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut hello).expect("write");
            }
            (name.to_string(), hello)
        })
        .collect()
}

#[test]
#[ignore = "rewrites the committed seed corpora"]
fn write_seeds() {
    for (name, data) in TEXT {
        write("text", name, data);
    }
    for (name, data) in meta_seeds() {
        println!(
            "meta {name}:\n{}",
            String::from_utf8_lossy(&tessera_fuzz::meta_stream(&data)).escape_debug()
        );
        write("meta", name, &data);
    }
    // tls_records: [mode, variant, wbuf] then mode 0/1: read schedule + bytes; mode 2: ops
    for (name, hello) in client_hellos() {
        // whole, then in 7-byte reads
        write(
            "tls_records",
            &format!("hello-{name}"),
            &[&[0, 0, 2, 0x01, 0xff][..], &hello].concat(),
        );
        write(
            "tls_records",
            &format!("hello-{name}-split"),
            &[&[0, 0, 2, 0x30][..], &hello].concat(),
        );
    }
    write(
        "tls_records",
        "after-handshake-garbage",
        &[
            &[1, 0, 2, 0x18][..],
            b"\x17\x03\x03\x00\x05hello\x15\x03\x03\x00\x02\x01\x00\x16\x03\x03\x00\x01\x00",
        ]
        .concat(),
    );
    write(
        "tls_records",
        "after-handshake-oversized",
        &[
            &[1, 3, 1, 0x01, 0xff][..],
            b"\x17\x03\x03\xff\xff",
            &[0u8; 300],
        ]
        .concat(),
    );
    // mode 2 ops: 0 write(n, bytes) 2 inject(n, bytes) 3 flip(u16, x) 4 deliver(u16)
    // 5 key update 6 close_notify 7 server write(n*97)
    let get: &[u8] = b"\x0dget k\r\nmn\r\n\r\n";
    for (name, variant) in [
        ("tls13", 0u8),
        ("tls13-aes256-auth", 0x09),
        ("tls13-chacha-mtls", 0x1a),
        ("tls12-aes128", 3),
        ("tls12-chacha-auth-resume", 0x2d),
        ("tls13-resume", 0x20),
    ] {
        let script = [
            &[2, variant, (variant % 4)][..],
            &[0],
            get,
            &[4, 0, 0],    // deliver all (with the client's Finished)
            &[7, 3],       // server replies 291 bytes
            &[0, 255],     // a 40000-byte write: several records
            &[4, 7, 0],    // deliver 7 bytes (a partial header)
            &[4, 0, 0x01], // deliver 256
            &[5],          // key update (TLS 1.3)
            &[0, 3, b'a', b'b', b'c'],
            &[4, 0, 0],
            &[7, 200], // a 19400-byte reply
            &[6],      // close_notify
            &[4, 0, 0],
        ]
        .concat();
        write("tls_records", &format!("script-{name}"), &script);
    }
    // mode 3 ops: 0 forge(type, n, bytes) 2 raw(n, bytes) 3 deliver(u16) 4 server write(n*97)
    // 5 skip sequence numbers; types: 0 application data, 1 handshake, 2 alert, 3 CCS
    for (name, variant) in [("tls13", 0u8), ("tls12-aes128", 3), ("tls12-chacha", 5)] {
        let forged = [
            &[3, variant, 1][..],
            &[0, 0, 9],
            b"version\r\n",
            &[0, 1, 2, 24, 0], // half a KeyUpdate header
            &[3, 0, 0],
            &[4, 2],
            &[0, 1, 3, 0, 1, 0], // the rest of it
            &[0, 0, 0],          // an empty record
            &[0, 0, 255],        // a record past 16 KiB
            &[3, 0, 0],
        ]
        .concat();
        write("tls_records", &format!("forged-{name}"), &forged);
    }
    write(
        "tls_records",
        "forged-alerts",
        &[
            &[3, 1, 0][..],
            &[0, 2, 2, 1, 0],
            &[0, 2, 2, 2, 40],
            &[3, 0, 0],
            &[0, 3, 1, 1],
            &[5, 1],
            &[0, 4, 99, 3, 1, 2, 3],
        ]
        .concat(),
    );
    write(
        "tls_records",
        "script-flip",
        &[&[2, 0, 1][..], &[0], get, &[3, 20, 0, 0x40], &[4, 0, 0]].concat(),
    );
    write(
        "tls_records",
        "script-inject",
        &[
            &[2, 3, 1][..],
            &[4, 0, 0],
            &[2, 6],
            b"\x17\x03\x03\x00\x01x",
            &[0],
            get,
            &[4, 0, 0],
        ]
        .concat(),
    );
}
