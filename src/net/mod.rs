//! Connections, in layers, in the order a request meets them:
//!
//! - [`listen`]: binding (on the main thread), then one accept loop per listener for TCP and
//!   unix sockets alike: `-c` slots, refusals, TLS accepts in their own task queue;
//! - [`transport`]: plaintext, rustls or kTLS behind one interface (read, write, close);
//! - [`conn`]: the connection loop: read → parse a batch → dispatch → write, with the idle
//!   timeout and graceful shutdown ([`stop`]);
//! - [`input`]: read buffers (the executor's scratch and pool, a connection's input);
//! - [`session`]: one pass over the buffered input: parse each request and run it (through
//!   [`crate::cmd::dispatch`]; replies in request order are [`crate::cmd::order`]'s);
//! - [`ctx`]: what an executor gives each of its connections.
//!
//! The TLS handshake and the switch to kTLS are [`crate::tls::accept`]'s.

pub mod conn;
pub mod ctx;
pub mod input;
pub mod listen;
pub mod session;
pub mod stop;
pub mod transport;

pub use ctx::Ctx;
pub use input::ReadBufs;
pub use listen::{BoundListener, Endpoint, accept_loop, bind, check_unix_path};
