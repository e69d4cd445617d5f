//! tessera: a thread-per-core, io_uring cache server that speaks memcached's protocols.
//!
//! # Thread model
//! ```text
//!            SO_REUSEPORT: the kernel spreads connections over the executors
//!     ┌───────────────────────────┐          ┌───────────────────────────┐
//!     │ executor 0 (pinned CPU a) │          │ executor 1 (pinned CPU b) │
//!     │  listener ─▶ connections  │          │  listener ─▶ connections  │
//!     │      │ parse (borrowed)   │ envelope │      │                    │
//!     │      ├─ owner = me ─▶ store shard 0 ◀─────── owner = 0          │
//!     │      └─ owner = 1 ───────────────────▶ store shard 1            │
//!     └───────────────────────────┘  replies └───────────────────────────┘
//! ```
//! One request: accept on the core's own listener → read into the connection buffer →
//! parse borrowed requests → a local key is served from this core's store at once; a remote
//! key joins a per-owner batch that crosses the channel mesh once per read → replies are
//! laid out in request order → one write per batch.
//!
//! # Modules
//! - [`cluster`]: the node list `config get cluster` answers (ElastiCache auto discovery).
//! - [`admin`]: the HTTP admin listener: Prometheus metrics and a health check.
//! - [`config`]: one table of settings driving memcached's flags, `-o`, a TOML file, `-h`
//!   and `stats settings` → one validated [`config::Config`].
//! - [`runtime`]: executor pool, CPU placement, mesh, startup errors.
//! - [`kernel`]: whether the kernel's io_uring is enough for glommio (5.8+), the ring
//!   features it fell back from (logged once at startup).
//! - [`net`]: one accept loop (TCP and unix), the transport (plaintext, rustls, kTLS), the
//!   connection loop (read → parse a batch → dispatch → write).
//! - [`protocol`]: front ends (bytes → commands: text, meta), [`protocol::Key`], the reply
//!   encoding commands share, number rules.
//! - [`cmd`]: one module per command family: its arguments, how it runs, what it answers;
//!   the dispatch of a parsed command (keyed: to the owner shard; admin: here); replies in
//!   request order.
//! - [`shard`]: `owner(key)`, a shard's store and counters, the mesh (generic over what it
//!   carries).
//! - [`store`]: items, memory limit, S3-FIFO eviction, expiry — no wire format.
//! - [`stats`]: per-shard counters (a leaf), the `stats` reports as typed (name, value, kind)
//!   entries that `stats` and `/metrics` both encode.
//! - [`server`]: state shared by all executors.
//! - [`sock`]: a connected socket's bytes through the io_uring ring (receives into
//!   the executor's provided buffers, sends owned by the ring), under `net` and `tls`.
//! - [`tls`]: rustls settings, reloadable certificates, accepting a client (handshake,
//!   deadline, kTLS switch), the rustls and kTLS connections, dev certificates.

pub mod admin;
pub mod cluster;
pub mod cmd;
pub mod config;
pub mod kernel;
pub mod net;
pub mod protocol;
pub mod runtime;
pub mod server;
pub mod shard;
pub mod sock;
pub mod stats;
pub mod store;
pub mod tls;
