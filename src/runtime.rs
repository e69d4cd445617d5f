//! The executor pool: one glommio executor pinned per core, each with its shard, its
//! listeners and its end of the channel mesh.
//!
//! Startup order matters for clear errors: the locked-memory limit is checked and every
//! listening socket is bound on the main thread first, so "port in use" or "ulimit -l too
//! low" is one line on stderr before any executor starts.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorPoolBuilder, PoolPlacement};

use crate::cmd::Exec;
use crate::cmd::exec::{Envelope, Mesh};
use crate::config::{Config, ConfigError, ListenMode};
use crate::net::Ctx;
use crate::net::{self, BoundListener};
use crate::protocol::Limits;
use crate::server::Shared;
use crate::shard::Shard;
use crate::shard::mesh::{self, Reply};
use crate::tls::TlsContext;
use crate::tls::conn::WbufPool;

/// Why the server could not start or stopped.
#[derive(Debug)]
pub enum RunError {
    /// A configuration problem discovered at startup.
    Config(ConfigError),
    /// The TLS certificates or key could not be loaded.
    Tls(crate::tls::LoadError),
    /// A listening socket could not be made.
    Bind(std::net::SocketAddr, std::io::Error),
    /// The locked-memory limit is below what io_uring needs.
    MemLock {
        /// The current soft limit in bytes.
        have: u64,
    },
    /// The kernel's io_uring is too old for glommio.
    Kernel(crate::kernel::TooOld),
    /// The executor pool failed.
    Executor(ExecutorError),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Config(e) => e.fmt(f),
            RunError::Tls(e) => e.fmt(f),
            RunError::Bind(a, e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                write!(f, "failed to listen on {a}: address already in use")
            }
            RunError::Bind(a, e) => write!(f, "failed to listen on {a}: {e}"),
            RunError::MemLock { have } => write!(
                f,
                "io_uring needs at least {} KiB of locked memory, but `ulimit -l` is {} KiB; \
                 raise it (ulimit -l, or LimitMEMLOCK= in the systemd unit)",
                MIN_MEMLOCK / 1024,
                have / 1024
            ),
            RunError::Kernel(e) => e.fmt(f),
            RunError::Executor(e) => write!(f, "executor failed: {e}"),
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Config(e) => Some(e),
            RunError::Tls(e) => Some(e),
            RunError::Bind(_, e) => Some(e),
            RunError::MemLock { .. } => None,
            RunError::Kernel(e) => Some(e),
            RunError::Executor(e) => Some(e),
        }
    }
}

/// What failed around the executors: the pool itself or a thread the server needs.
#[derive(Debug)]
#[non_exhaustive]
pub enum ExecutorError {
    /// glommio could not start the pool, or an executor failed.
    Pool(glommio::GlommioError<()>),
    /// A thread (admin listener, signal handling) or its signal registration failed;
    /// `what` says which, as the message starts.
    Thread {
        /// What could not be done, e.g. "cannot start the SIGHUP thread".
        what: &'static str,
        /// Why.
        error: std::io::Error,
    },
    /// An executor could not join the channel mesh.
    MeshJoin,
    /// An executor found no listeners kept for it.
    NoListeners(usize),
}

impl std::fmt::Display for ExecutorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecutorError::Pool(e) => e.fmt(f),
            ExecutorError::Thread { what, error } => write!(f, "{what}: {error}"),
            ExecutorError::MeshJoin => f.write_str("joining the channel mesh failed"),
            ExecutorError::NoListeners(id) => write!(f, "no listeners for executor {id}"),
        }
    }
}

impl std::error::Error for ExecutorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ExecutorError::Pool(e) => Some(e),
            ExecutorError::Thread { error, .. } => Some(error),
            ExecutorError::MeshJoin | ExecutorError::NoListeners(_) => None,
        }
    }
}

/// A [`RunError::Executor`] for a thread that could not be set up.
fn thread_error(what: &'static str) -> impl FnOnce(std::io::Error) -> RunError {
    move |error| RunError::Executor(ExecutorError::Thread { what, error })
}

/// glommio's floor for RLIMIT_MEMLOCK.
const MIN_MEMLOCK: u64 = 512 * 1024;

fn check_memlock() -> Result<(), RunError> {
    use nix::sys::resource::{Resource, getrlimit};
    match getrlimit(Resource::RLIMIT_MEMLOCK) {
        Ok((soft, _)) if soft < MIN_MEMLOCK => Err(RunError::MemLock { have: soft }),
        _ => Ok(()),
    }
}

/// A running (or about to run) server: listeners bound, executors not yet started.
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
    /// Per executor: its listeners.
    listeners: Vec<Vec<BoundListener>>,
    /// The addresses actually bound (port 0 resolved).
    pub addrs: Vec<std::net::SocketAddr>,
    /// Whether [`Server::handle_signals`] has run.
    signals: bool,
    /// The admin listener, bound (served from [`Server::run`]).
    admin: Option<std::net::TcpListener>,
    /// Its address (port 0 resolved).
    pub admin_addr: Option<std::net::SocketAddr>,
}

impl Server {
    /// Checks limits and binds every listener (one per executor per address).
    pub fn bind(config: Config) -> Result<Server, RunError> {
        check_memlock()?;
        if let Some(p) = &config.unix_socket {
            net::check_unix_path(p).map_err(|error| {
                RunError::Config(ConfigError::UnixSocket {
                    path: p.clone(),
                    error,
                })
            })?;
        }
        let tls = match config.tls_settings().map_err(RunError::Config)? {
            Some(settings) => Some(TlsContext::new(settings).map_err(RunError::Tls)?),
            None => None,
        };
        let n = config.threads.max(1);
        // memcached: -s disables network listeners.
        let addrs = if config.unix_socket.is_some() {
            Vec::new()
        } else {
            config.listeners().map_err(RunError::Config)?
        };
        if let Some(t) = &tls {
            let needs_mtls = addrs.iter().any(|(m, _)| *m == ListenMode::Mtls);
            if needs_mtls && t.settings.ca_cert.is_none() {
                return Err(RunError::Config(ConfigError::MtlsNeedsCa));
            }
        }
        let mut listeners: Vec<Vec<BoundListener>> = (0..n).map(|_| Vec::new()).collect();
        let mut bound = Vec::new();
        for (mode, addr) in addrs {
            // The first bind resolves port 0; the others join its SO_REUSEPORT group.
            let first =
                net::bind(addr, config.backlog, mode).map_err(|e| RunError::Bind(addr, e))?;
            let real = first.addr;
            listeners[0].push(first);
            for l in listeners.iter_mut().skip(1) {
                l.push(net::bind(real, config.backlog, mode).map_err(|e| RunError::Bind(real, e))?);
            }
            bound.push(real);
        }
        let (admin, admin_addr) = match config.admin_listen {
            Some(addr) => {
                // Bound here, on the main thread: a bad address is a startup error.
                let l = std::net::TcpListener::bind(addr).map_err(|e| RunError::Bind(addr, e))?;
                let real = l.local_addr().map_err(|e| RunError::Bind(addr, e))?;
                (Some(l), Some(real))
            }
            None => (None, None),
        };
        Ok(Server {
            shared: Shared::with_tls(config, tls),
            listeners,
            addrs: bound,
            signals: false,
            admin,
            admin_addr,
        })
    }

    /// Takes over SIGTERM, SIGINT, SIGUSR1 (graceful shutdown) and SIGHUP (certificate
    /// reload, or nothing without TLS). Call it before telling anyone the server is up: a
    /// signal that comes earlier gets the default action. [`Server::run`] calls it if not.
    pub fn handle_signals(&mut self) -> Result<(), RunError> {
        if self.signals {
            return Ok(());
        }
        let shared = &self.shared;
        // memcached keeps running on SIGHUP; tessera re-reads what it can.
        reload_on_sighup(shared.clone())?;
        stop_on_signals(shared.clone())?;
        self.signals = true;
        Ok(())
    }

    /// The startup line about kernel TLS (None without TLS): what the kernel offers and
    /// what that means for connections.
    pub fn kernel_tls_line(&self) -> Option<String> {
        use crate::tls::ktls::KtlsMode;
        let t = self.shared.tls.as_ref()?;
        Some(match t.settings.kernel_tls {
            KtlsMode::Off => "kernel TLS: off (ssl_kernel_tls=off); records in rustls".into(),
            mode => {
                let then = match (&t.kernel.unavailable, mode) {
                    (Some(_), _) => "TLS records stay in rustls (userspace)",
                    (None, KtlsMode::On) => "every connection moves to kTLS",
                    (None, _) => {
                        "connections move to kTLS after the handshake where the suite allows"
                    }
                };
                format!(
                    "kernel TLS (ssl_kernel_tls={}): {}; {then}",
                    mode.name(),
                    t.kernel.describe()
                )
            }
        })
    }

    /// Shared state (tests read stats from it).
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Runs the executors until they stop.
    pub fn run(mut self) -> Result<(), RunError> {
        crate::kernel::check_io_uring().map_err(RunError::Kernel)?;
        self.handle_signals()?;
        if let Some(l) = self.admin.take() {
            crate::admin::spawn(l, self.shared.clone())
                .map_err(thread_error("cannot start the admin listener thread"))?;
        }
        let shared = self.shared;
        let n = shared.config.threads.max(1);
        let cpus = std::thread::available_parallelism()
            .map(|c| c.get())
            .unwrap_or(1);
        let placement = if n <= cpus {
            // glommio spreads over every online CPU: keep to the ones this process may run
            // on (taskset, cgroup cpusets), or a pinned server lands on its neighbour's CPU.
            let allowed = allowed_cpus().and_then(|allowed| {
                let set = glommio::CpuSet::online()
                    .ok()?
                    .filter(|l| allowed.contains(&l.cpu));
                (set.len() >= n).then_some(set)
            });
            PoolPlacement::MaxSpread(n, allowed)
        } else {
            eprintln!(
                "tessera: warning: -t {n} is more than the {cpus} available CPUs; executors are not pinned"
            );
            PoolPlacement::Unbound(n)
        };
        let queue = shared.config.shard_queue.max(1);
        let mesh_builder = MeshBuilder::<Envelope, _>::full(n, queue);
        let reply_builder = MeshBuilder::<Reply, _>::full(n, queue);
        // Each executor takes its own listeners out of this list by its id.
        let listeners = Arc::new(std::sync::Mutex::new(
            self.listeners.into_iter().map(Some).collect::<Vec<_>>(),
        ));
        let handles = LocalExecutorPoolBuilder::new(placement)
            // We do no file I/O: keep glommio's registered buffer (locked memory) small.
            .io_memory(64 * 1024)
            .on_all_shards(move || {
                let shared = shared.clone();
                let listeners = listeners.clone();
                let mesh_builder = mesh_builder.clone();
                let reply_builder = reply_builder.clone();
                async move { executor_main(shared, listeners, mesh_builder, reply_builder).await }
            })
            .map_err(|e| RunError::Executor(ExecutorError::Pool(e)))?;
        let mut first_err = None;
        for r in handles.join_all() {
            let err = match r {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e,
                Err(glommio::GlommioError::ReactorError(
                    glommio::ReactorErrorKind::MemLockLimit(have, _),
                )) => RunError::MemLock { have },
                Err(e) => RunError::Executor(ExecutorError::Pool(e)),
            };
            first_err.get_or_insert(err);
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// The CPUs this process may run on (`Cpus_allowed_list` of /proc/self/status), or None
/// when it cannot be read.
fn allowed_cpus() -> Option<Vec<usize>> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    parse_cpu_list(list.trim())
}

/// "0-3,8,10-11" -> [0, 1, 2, 3, 8, 10, 11].
fn parse_cpu_list(list: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if b < a || b - a > 1 << 16 {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    (!cpus.is_empty()).then_some(cpus)
}

/// SIGHUP re-reads the TLS certificates (a thread waits for it; the executors never block).
fn reload_on_sighup(shared: Arc<Shared>) -> Result<(), RunError> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])
        .map_err(thread_error("cannot handle SIGHUP"))?;
    std::thread::Builder::new()
        .name("tessera-sighup".into())
        .spawn(move || {
            for _ in signals.forever() {
                if let Some(tls) = &shared.tls {
                    match tls.reload() {
                        Ok(()) => {
                            if shared.verbose() > 0 {
                                eprintln!("tessera: certificates reloaded (SIGHUP)");
                            }
                        }
                        Err(e) => eprintln!(
                            "tessera: SIGHUP certificate reload failed, keeping the old \
                             certificate: {e}"
                        ),
                    }
                }
                if let Some(path) = &shared.config.config_file {
                    reload_cluster(&shared, path);
                }
            }
        })
        .map_err(thread_error("cannot start the SIGHUP thread"))?;
    Ok(())
}

/// SIGHUP: the config file's `[cluster]` list replaces the one held when it changed and
/// its version went up. Nothing else in the file is re-read.
fn reload_cluster(shared: &Shared, path: &std::path::Path) {
    use crate::cluster::SetError;
    let file = path.display();
    let new = match crate::config::read_cluster(path) {
        Ok(Some(c)) => c,
        Ok(None) => {
            if shared.cluster.get().is_some() {
                eprintln!(
                    "tessera: SIGHUP: {file} has no [cluster] nodes now; keeping the list held \
                     (a list is replaced, never removed, while running)"
                );
            }
            return;
        }
        Err(e) => {
            eprintln!("tessera: SIGHUP: cannot re-read the cluster list, keeping the old one: {e}");
            return;
        }
    };
    match shared.cluster.reload(new) {
        Ok(Some(c)) => eprintln!(
            "tessera: SIGHUP: cluster list from {file}: version {}, {} node(s)",
            c.version,
            c.nodes.len()
        ),
        Ok(None) => {
            if shared.verbose() > 0 {
                eprintln!("tessera: SIGHUP: cluster list in {file} unchanged");
            }
        }
        Err(SetError::Stale { given, current }) => eprintln!(
            "tessera: SIGHUP: the [cluster] list in {file} changed but its version {given} is \
             not above the current {current}: not applied (raise the version)"
        ),
        Err(SetError::Invalid(e)) => {
            eprintln!("tessera: SIGHUP: [cluster] in {file} not applied: {e}")
        }
    }
}

/// SIGTERM, SIGINT and SIGUSR1 (memcached's graceful-shutdown signal) begin a graceful
/// shutdown (the executors notice [`Shared::shutdown`]); a second one ends the process at
/// once.
fn stop_on_signals(shared: Arc<Shared>) -> Result<(), RunError> {
    use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGUSR1])
        .map_err(thread_error("cannot handle SIGTERM/SIGINT"))?;
    std::thread::Builder::new()
        .name("tessera-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let name = match sig {
                    SIGINT => "SIGINT",
                    SIGUSR1 => "SIGUSR1",
                    _ => "SIGTERM",
                };
                if !shared.begin_shutdown(name) {
                    eprintln!("tessera: {name} during shutdown: exiting now");
                    crate::server::exit_now(&shared, 1);
                }
            }
        })
        .map_err(thread_error("cannot start the signal thread"))?;
    Ok(())
}

/// How often an executor looks at [`Shared::shutdown`] (a foreign thread cannot wake it).
const SHUTDOWN_POLL: Duration = Duration::from_millis(50);
/// How often a shutting-down executor looks at what is left.
const DRAIN_POLL: Duration = Duration::from_millis(10);

/// Waits until `done()` holds or `deadline` passes, looking every [`DRAIN_POLL`].
async fn until(deadline: std::time::Instant, done: impl Fn() -> bool) {
    while !done() && std::time::Instant::now() < deadline {
        glommio::timer::sleep(DRAIN_POLL).await;
    }
}

/// An executor's part of a graceful shutdown, from the signal to the moment it may exit.
async fn wind_down(shared: &Shared, ctx: &Ctx, id: usize, accept_tasks: Vec<glommio::Task<()>>) {
    use std::sync::atomic::Ordering;
    while !shared.shutdown.load(Ordering::SeqCst) {
        shared.heartbeat(id);
        glommio::timer::sleep(SHUTDOWN_POLL).await;
    }
    let limit = Duration::from_secs(u64::from(shared.config.shutdown_timeout_secs));
    let deadline = std::time::Instant::now() + limit;
    ctx.stop.trigger();
    for t in accept_tasks {
        t.await;
    }
    // Connections of this executor (handshaking ones included).
    let open = || ctx.exec.shard.stats.curr_connections.get();
    until(deadline, || open() == 0).await;
    let left = open();
    if left > 0 {
        eprintln!(
            "tessera: executor {id}: {left} connection(s) still open after {}s \
             (-o shutdown_timeout): closing them",
            limit.as_secs()
        );
    }
    // Other executors' connections may still need this shard.
    let n = shared.config.threads.max(1);
    shared.executors_drained.fetch_add(1, Ordering::SeqCst);
    until(deadline, || {
        shared.executors_drained.load(Ordering::SeqCst) >= n
    })
    .await;
}

type ListenerSlots = Arc<std::sync::Mutex<Vec<Option<Vec<BoundListener>>>>>;

async fn executor_main(
    shared: Arc<Shared>,
    listeners: ListenerSlots,
    mesh_builder: MeshBuilder<Envelope, glommio::channels::channel_mesh::Full>,
    reply_builder: MeshBuilder<Reply, glommio::channels::channel_mesh::Full>,
) -> Result<(), RunError> {
    let n = shared.config.threads.max(1);
    // The mesh numbers its peers 0..n: that number is the shard id.
    let (id, mesh, receivers) = if n > 1 {
        let joined = |_| RunError::Executor(ExecutorError::MeshJoin);
        let (senders, receivers) = mesh_builder.join().await.map_err(joined)?;
        let (reply_senders, reply_receivers) = reply_builder.join().await.map_err(joined)?;
        let id = senders.peer_id();
        (
            id,
            Some(Rc::new(Mesh::new(senders, reply_senders))),
            Some((receivers, reply_receivers)),
        )
    } else {
        (0, None, None)
    };
    if id == 0 {
        crate::kernel::log_ring_fallbacks(); // this executor's rings are set up
    }
    let shard = Rc::new(Shard::new(&shared, id, n));
    // Every executor serves its shard to the others for as long as the process runs, even
    // one with no listener of its own (with -s, only executor 0 accepts).
    let mesh_task = match (receivers, &mesh) {
        (Some((requests, replies)), Some(m)) => Some(glommio::spawn_local(mesh::serve(
            requests,
            replies,
            shard.clone(),
            m.clone(),
        ))),
        _ => None,
    };
    let ctx = Rc::new(Ctx {
        exec: Exec {
            shard,
            mesh,
            shared: shared.clone(),
        },
        limits: Limits::from_config(&shared.config),
        rbufs: crate::net::ReadBufs::with_ring(crate::sock::recv_pool()),
        stop: Rc::default(),
        latency: shared.config.admin_listen.map(|_| shared.stats.latency(id)),
        wbufs: shared
            .tls
            .as_ref()
            .map(|t| WbufPool::new(t.settings.wbuf_size)),
        // Handshakes get a tenth of the executor when requests compete for it.
        hs_queue: shared.tls.as_ref().map(|_| {
            glommio::executor().create_task_queue(
                glommio::Shares::Static(100),
                glommio::Latency::NotImportant,
                "tls-handshake",
            )
        }),
    });
    let mine = listeners
        .lock()
        .ok()
        .and_then(|mut v| v.get_mut(id).and_then(Option::take))
        .ok_or(RunError::Executor(ExecutorError::NoListeners(id)))?;
    let mut tasks: Vec<glommio::Task<()>> = Vec::new();
    for l in mine {
        let endpoint = net::Endpoint::Tcp(l);
        tasks.push(glommio::spawn_local(net::accept_loop(
            endpoint,
            ctx.clone(),
        )));
    }
    if let (0, Some(path)) = (id, shared.config.unix_socket.clone()) {
        let mask = shared.config.unix_mask;
        let endpoint = net::Endpoint::Unix { path, mask };
        tasks.push(glommio::spawn_local(net::accept_loop(
            endpoint,
            ctx.clone(),
        )));
    }
    wind_down(&shared, &ctx, id, tasks).await;
    // Connections past the deadline and the mesh task end with the executor.
    drop(mesh_task);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_cpu_list;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("1"), Some(vec![1]));
        assert_eq!(
            parse_cpu_list("0-3,8,10-11"),
            Some(vec![0, 1, 2, 3, 8, 10, 11])
        );
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }
}
