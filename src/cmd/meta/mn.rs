//! mn (meta no-op): `MN`. Answered where it is read, in request order, so a client that
//! pipelines quiet commands knows by it that every earlier reply has arrived.

/// mn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaNoop;

impl MetaNoop {
    /// Appends the reply.
    pub fn run(self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"MN\r\n");
    }
}
