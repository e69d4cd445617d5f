//! What an executor gives each of its connections: what commands run with ([`Exec`]: its
//! shard, its end of the mesh, the process-wide state), and the buffers and queues its
//! connections share. `net` sits above `cmd`: the connection layer holds the command
//! layer's context, never the other way round.

use std::rc::Rc;

use super::input::ReadBufs;
use crate::cmd::Exec;
use crate::protocol;
use crate::server::Shared;
use crate::shard::Shard;

/// What an executor gives each of its connections.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// What commands run with: this executor's shard, its end of the mesh, the process.
    pub exec: Exec,
    /// Parser limits.
    pub limits: protocol::Limits,
    /// TLS write buffers of this executor (when TLS is on).
    pub wbufs: Option<crate::tls::conn::WbufPool>,
    /// The task queue TLS handshakes run in.
    pub hs_queue: Option<glommio::TaskQueueHandle>,
    /// Read buffers shared by this executor's connections.
    pub rbufs: ReadBufs,
    /// This executor's graceful-shutdown state.
    pub stop: Rc<super::stop::Stop>,
    /// Service-time histograms, recorded when the admin listener is on.
    pub latency: Option<std::sync::Arc<crate::stats::Latency>>,
}

impl Ctx {
    /// A single-shard context with no executors around it: the whole cache in this thread.
    /// For embedding the protocol engine, and for tests that drive a [`Session`] directly.
    pub fn standalone(mut config: crate::config::Config) -> Ctx {
        config.threads = 1;
        let shared = Shared::new(config);
        Ctx {
            exec: Exec {
                shard: Rc::new(Shard::new(&shared, 0, 1)),
                mesh: None,
                shared: shared.clone(),
            },
            limits: protocol::Limits::from_config(&shared.config),
            wbufs: None,
            hs_queue: None,
            rbufs: ReadBufs::default(),
            stop: Rc::default(),
            latency: None,
        }
    }
}
