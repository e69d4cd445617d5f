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

/// Why `tessera certs` failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum CertsError {
    /// rcgen could not make a key or a certificate.
    Generate(rcgen::Error),
    /// The output directory could not be created.
    CreateDir(PathBuf, std::io::Error),
    /// A file could not be written.
    Write(PathBuf, std::io::Error),
    /// A private key's file could not be made private (0600).
    Restrict(PathBuf, std::io::Error),
    /// An option without its value (`--out`, `--name`).
    MissingValue(&'static str),
    /// An argument `tessera certs` does not know.
    UnknownArgument(String),
}

impl std::fmt::Display for CertsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertsError::Generate(e) => write!(f, "generating certificates: {e}"),
            CertsError::CreateDir(p, e) => write!(f, "cannot create {}: {e}", p.display()),
            CertsError::Write(p, e) => write!(f, "cannot write {}: {e}", p.display()),
            CertsError::Restrict(p, e) => write!(f, "cannot restrict {}: {e}", p.display()),
            CertsError::MissingValue(what) => f.write_str(what),
            CertsError::UnknownArgument(a) => {
                write!(
                    f,
                    "certs: unknown argument '{a}' (see tessera certs --help)"
                )
            }
        }
    }
}

impl std::error::Error for CertsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CertsError::Generate(e) => Some(e),
            CertsError::CreateDir(_, e) | CertsError::Write(_, e) | CertsError::Restrict(_, e) => {
                Some(e)
            }
            CertsError::MissingValue(_) | CertsError::UnknownArgument(_) => None,
        }
    }
}

impl From<rcgen::Error> for CertsError {
    fn from(e: rcgen::Error) -> Self {
        CertsError::Generate(e)
    }
}

fn write(dir: &Path, name: &str, contents: &str, private: bool) -> Result<PathBuf, CertsError> {
    let path = dir.join(name);
    if let Err(e) = std::fs::write(&path, contents) {
        return Err(CertsError::Write(path, e));
    }
    if private {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
            return Err(CertsError::Restrict(path, e));
        }
    }
    Ok(path)
}

/// Writes a dev CA, a server certificate (for `localhost`, `127.0.0.1`, `::1` and `names`)
/// and a client certificate into `dir`. Returns the paths written.
pub fn generate(dir: &Path, names: &[String]) -> Result<Vec<PathBuf>, CertsError> {
    std::fs::create_dir_all(dir).map_err(|e| CertsError::CreateDir(dir.to_path_buf(), e))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
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
    let ca_key = KeyPair::generate()?;
    let ca_key_pem = ca_key.serialize_pem();
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key)?;

    let mut sans = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    sans.extend(names.iter().cloned());
    let mut server = CertificateParams::new(sans)?;
    server
        .distinguished_name
        .push(DnType::CommonName, "tessera server");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.use_authority_key_identifier_extension = true;
    let server_key = KeyPair::generate()?;
    let server_cert = server.signed_by(&server_key, &ca)?;

    let mut client = CertificateParams::new(Vec::<String>::new())?;
    client
        .distinguished_name
        .push(DnType::CommonName, "tessera client");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    client.use_authority_key_identifier_extension = true;
    let client_key = KeyPair::generate()?;
    let client_cert = client.signed_by(&client_key, &ca)?;

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
pub fn run(args: &[String]) -> Result<String, CertsError> {
    let mut dir = PathBuf::from("certs");
    let mut names = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" | "-o" => {
                dir = it
                    .next()
                    .ok_or(CertsError::MissingValue("certs: --out needs a directory"))?
                    .into();
            }
            "--name" | "-n" => {
                let name = it
                    .next()
                    .ok_or(CertsError::MissingValue("certs: --name needs a host name"))?;
                names.push(name.clone());
            }
            "-h" | "--help" => {
                return Ok("Usage: tessera certs [--out DIR] [--name HOST]...\n\
                    Writes a development CA (ca.pem, ca.key), a server certificate for localhost,\n\
                    127.0.0.1, ::1 and each --name (server.pem, server.key) and a client\n\
                    certificate (client.pem, client.key) into DIR (default: ./certs).\n"
                    .into());
            }
            other => {
                return Err(CertsError::UnknownArgument(other.to_string()));
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

#[cfg(test)]
mod tests {
    use super::run;

    #[test]
    fn usage_errors_read_as_before() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let err = |a: &[&str]| run(&args(a)).expect_err("a usage error").to_string();
        assert_eq!(err(&["--out"]), "certs: --out needs a directory");
        assert_eq!(err(&["--name"]), "certs: --name needs a host name");
        assert_eq!(
            err(&["--bogus"]),
            "certs: unknown argument '--bogus' (see tessera certs --help)"
        );
    }
}
