//! refresh_certs: `refresh_certs [noreply]`; `OK` once the TLS certificate and key are
//! reloaded from their files, or `SERVER_ERROR <why>` (the old ones stay).

use crate::protocol::{Line, Parsed};
use crate::server::Shared;

/// refresh_certs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshCerts {
    /// Suppress the reply.
    pub noreply: bool,
}

/// Parses `refresh_certs [noreply]`.
pub fn parse(l: &Line<'_>) -> Parsed<RefreshCerts> {
    l.done(RefreshCerts {
        noreply: l.noreply(),
    })
}

impl RefreshCerts {
    /// Reloads the certificates.
    pub fn run(self, shared: &Shared, out: &mut Vec<u8>) {
        let noreply = self.noreply;
        let Some(tls) = &shared.tls else {
            return super::reply(out, b"SERVER_ERROR TLS is not enabled (-Z)\r\n", noreply);
        };
        match tls.reload() {
            Ok(()) => {
                if shared.verbose() > 0 {
                    eprintln!("tessera: certificates reloaded (refresh_certs)");
                }
                super::reply(out, b"OK\r\n", noreply)
            }
            Err(e) => {
                eprintln!("tessera: refresh_certs failed, keeping the old certificate: {e}");
                // One line: no CR/LF from the message can break the reply framing.
                let line = format!(
                    "SERVER_ERROR {}\r\n",
                    e.to_string().replace(['\r', '\n'], " ")
                );
                super::reply(out, line.as_bytes(), noreply)
            }
        }
    }
}
