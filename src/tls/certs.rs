//! `tessera certs`: a development CA with a server and a client certificate, so TLS and mTLS
//! can be tried (and tested) without an external PKI.
//!
//! Keys are ECDSA P-256. The server certificate names `localhost`, `127.0.0.1` and `::1`
//! plus any `--name` given; the client certificate is for client authentication (`mtls:`
//! listeners, `ssl_verify_mode` 1-3).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// The files `generate` writes, relative to its directory.
pub const FILES: [&str; 6] = [
    "ca.pem",
    "ca.key",
    "server.pem",
    "server.key",
    "client.pem",
    "client.key",
];

fn err(e: impl std::fmt::Display) -> String {
    format!("generating certificates: {e}")
}

fn write(dir: &Path, name: &str, contents: &str, private: bool) -> Result<PathBuf, String> {
    let path = dir.join(name);
    std::fs::write(&path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot restrict {}: {e}", path.display()))?;
    }
    Ok(path)
}

/// Writes a dev CA, a server certificate (for `localhost`, `127.0.0.1`, `::1` and `names`)
/// and a client certificate into `dir`. Returns the paths written.
pub fn generate(dir: &Path, names: &[String]) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // A unique name per CA: clients that trust two dev CAs (rotation) must not mix them up.
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    ca_params.distinguished_name.push(
        DnType::CommonName,
        format!("tessera development CA {stamp:x}-{}", std::process::id()),
    );
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(err)?;
    let ca_key_pem = ca_key.serialize_pem();
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(err)?;

    let mut sans = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    sans.extend(names.iter().cloned());
    let mut server = CertificateParams::new(sans).map_err(err)?;
    server
        .distinguished_name
        .push(DnType::CommonName, "tessera server");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.use_authority_key_identifier_extension = true;
    let server_key = KeyPair::generate().map_err(err)?;
    let server_cert = server.signed_by(&server_key, &ca).map_err(err)?;

    let mut client = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    client
        .distinguished_name
        .push(DnType::CommonName, "tessera client");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    client.use_authority_key_identifier_extension = true;
    let client_key = KeyPair::generate().map_err(err)?;
    let client_cert = client.signed_by(&client_key, &ca).map_err(err)?;

    Ok(vec![
        write(dir, "ca.pem", &ca.pem(), false)?,
        write(dir, "ca.key", &ca_key_pem, true)?,
        write(dir, "server.pem", &server_cert.pem(), false)?,
        write(dir, "server.key", &server_key.serialize_pem(), true)?,
        write(dir, "client.pem", &client_cert.pem(), false)?,
        write(dir, "client.key", &client_key.serialize_pem(), true)?,
    ])
}

/// `tessera certs [--out DIR] [--name HOST]...`: the subcommand's entry point.
pub fn run(args: &[String]) -> Result<String, String> {
    let mut dir = PathBuf::from("certs");
    let mut names = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" | "-o" => {
                dir = it.next().ok_or("certs: --out needs a directory")?.into();
            }
            "--name" | "-n" => {
                names.push(it.next().ok_or("certs: --name needs a host name")?.clone())
            }
            "-h" | "--help" => {
                return Ok("Usage: tessera certs [--out DIR] [--name HOST]...\n\
                    Writes a development CA (ca.pem, ca.key), a server certificate for localhost,\n\
                    127.0.0.1, ::1 and each --name (server.pem, server.key) and a client\n\
                    certificate (client.pem, client.key) into DIR (default: ./certs).\n"
                    .into());
            }
            other => {
                return Err(format!(
                    "certs: unknown argument '{other}' (see tessera certs --help)"
                ));
            }
        }
    }
    let written = generate(&dir, &names)?;
    let mut out = String::new();
    for p in written {
        out.push_str(&format!("wrote {}\n", p.display()));
    }
    out.push_str(&format!(
        "serve with: tessera -Z -o ssl_chain_cert={d}/server.pem,ssl_key={d}/server.key\n",
        d = dir.display()
    ));
    Ok(out)
}
