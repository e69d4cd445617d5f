//! What a command runs with on a connection's executor ([`Exec`]): its shard, its end of
//! the mesh, the process-wide state. `net`'s per-executor context holds one; `cmd` needs
//! nothing else of the connection layer.

use std::rc::Rc;
use std::sync::Arc;

use super::keyed::Keyed;
use crate::server::Shared;
use crate::shard::Shard;
use crate::shard::mesh;

/// What the mesh carries: a keyed command, owned.
pub type Forwarded = Keyed<Vec<u8>>;
/// The mesh as the server builds it: batches of [`Forwarded`] commands.
pub type Mesh = mesh::Mesh<Forwarded>;
/// A request on the mesh.
pub type Envelope = mesh::Envelope<Forwarded>;

/// What a command runs with on a connection's executor.
#[derive(Debug, Clone)]
pub struct Exec {
    /// This executor's shard.
    pub shard: Rc<Shard>,
    /// Its end of the mesh (None with one executor).
    pub mesh: Option<Rc<Mesh>>,
    /// Process-wide state.
    pub shared: Arc<Shared>,
}
