//! berthd: serves the Docker Engine API for berth's engine.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Parser;

/// berth's daemon. Serves the Docker Engine API on a unix socket, so the docker CLI,
/// docker-py and compose work against it:
///
///   berthd &
///   DOCKER_HOST=unix:///run/berth/berth.sock docker run --rm busybox echo hello
///
/// Several daemons can run side by side with their own --data-root, --exec-root and -H.
#[derive(Debug, Parser)]
#[command(name = "berthd", version, verbatim_doc_comment)]
struct Args {
    /// Persistent state: images, containers' logs and metadata
    #[arg(long, value_name = "DIR")]
    data_root: Option<PathBuf>,
    /// Runtime state: sockets, bundles, shims
    #[arg(long, value_name = "DIR")]
    exec_root: Option<PathBuf>,
    /// Where to listen: unix:///path or tcp://host:port (tcp needs --tlsverify); repeatable
    #[arg(short = 'H', long = "host", value_name = "ADDR")]
    hosts: Vec<String>,
    /// Write the daemon's pid here (refused if a live daemon holds it)
    #[arg(long, value_name = "FILE")]
    pidfile: Option<PathBuf>,
    /// A daemon.json with the same settings (data-root, exec-root, hosts, pidfile, debug, tls*)
    #[arg(long, value_name = "FILE")]
    config_file: Option<PathBuf>,
    /// Require client certificates signed by --tlscacert on tcp listeners
    #[arg(long)]
    tlsverify: bool,
    /// CA that signs client certificates
    #[arg(long, value_name = "FILE")]
    tlscacert: Option<PathBuf>,
    /// Server certificate
    #[arg(long, value_name = "FILE")]
    tlscert: Option<PathBuf>,
    /// Server key
    #[arg(long, value_name = "FILE")]
    tlskey: Option<PathBuf>,
    /// The OCI runtime binary (default: berth-runtime beside berthd, else on PATH)
    #[arg(long, value_name = "PATH")]
    runtime: Option<PathBuf>,
    /// The default bridge's interface ("none": no bridge; containers in bridge mode then get
    /// only loopback)
    #[arg(short = 'b', long, value_name = "NAME", default_value = "berth0")]
    bridge: String,
    /// The default bridge's subnet (default: the first of Docker's pools no host route uses)
    #[arg(long, value_name = "CIDR")]
    bip: Option<String>,
    /// berth's own nftables table (NAT and published ports); other tables are never touched
    #[arg(long, value_name = "NAME", default_value = "berth")]
    nft_table: String,
    /// Parent cgroup of containers that do not name one (default: /berth)
    #[arg(long, value_name = "PATH")]
    cgroup_parent: Option<String>,
    /// Debug logging
    #[arg(short = 'D', long)]
    debug: bool,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    data_root: Option<PathBuf>,
    exec_root: Option<PathBuf>,
    hosts: Option<Vec<String>>,
    pidfile: Option<PathBuf>,
    debug: Option<bool>,
    tlsverify: Option<bool>,
    tlscacert: Option<PathBuf>,
    tlscert: Option<PathBuf>,
    tlskey: Option<PathBuf>,
    runtime: Option<PathBuf>,
    cgroup_parent: Option<String>,
}

/// A helper program: beside our own binary, else on PATH.
fn helper(name: &str) -> PathBuf {
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from(name))
}

fn find_init() -> Option<PathBuf> {
    [
        "/usr/bin/tini-static",
        "/usr/bin/tini",
        "/usr/libexec/podman/catatonit",
        "/usr/bin/catatonit",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// Writes the pid file, refusing one a live process holds.
fn write_pidfile(p: &Path) -> Result<()> {
    if let Ok(old) = std::fs::read_to_string(p)
        && let Ok(pid) = old.trim().parse::<i32>()
    {
        // SAFETY: kill with signal 0 only checks that the process exists.
        if pid > 0 && pid != std::process::id() as i32 && unsafe { libc::kill(pid, 0) } == 0 {
            bail!(
                "pid file {} names process {pid}, which is running: is another berthd using it?",
                p.display()
            );
        }
    }
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    std::fs::write(p, format!("{}\n", std::process::id()))
        .with_context(|| format!("writing {}", p.display()))
}

fn main() -> Result<()> {
    let mut a = Args::parse();
    if let Some(f) = &a.config_file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let c: FileConfig =
            serde_json::from_str(&text).with_context(|| format!("{}", f.display()))?;
        a.data_root = a.data_root.or(c.data_root);
        a.exec_root = a.exec_root.or(c.exec_root);
        if a.hosts.is_empty() {
            a.hosts = c.hosts.unwrap_or_default();
        }
        a.pidfile = a.pidfile.or(c.pidfile);
        a.debug |= c.debug.unwrap_or(false);
        a.tlsverify |= c.tlsverify.unwrap_or(false);
        a.tlscacert = a.tlscacert.or(c.tlscacert);
        a.tlscert = a.tlscert.or(c.tlscert);
        a.tlskey = a.tlskey.or(c.tlskey);
        a.runtime = a.runtime.or(c.runtime);
        a.cgroup_parent = a.cgroup_parent.or(c.cgroup_parent);
    }
    let filter = if a.debug { "debug" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let exec_root = a.exec_root.unwrap_or_else(|| "/run/berth".into());
    let data_root = a.data_root.unwrap_or_else(|| "/var/lib/berth".into());
    if a.hosts.is_empty() {
        a.hosts
            .push(format!("unix://{}", exec_root.join("berth.sock").display()));
    }
    let tls = if a.tlsverify {
        match (a.tlscacert, a.tlscert, a.tlskey) {
            (Some(ca), Some(cert), Some(key)) => {
                Some(berth_server::listen::TlsConfig { ca, cert, key })
            }
            _ => bail!("--tlsverify needs --tlscacert, --tlscert and --tlskey"),
        }
    } else {
        None
    };
    let pidfile = a.pidfile.unwrap_or_else(|| exec_root.join("berthd.pid"));
    let cfg = berth_engine::Config {
        data_root,
        exec_root,
        runtime: a.runtime.unwrap_or_else(|| helper("berth-runtime")),
        shim: helper("berth-shim"),
        init: find_init(),
        cgroup_parent: a.cgroup_parent.clone(),
        network: (a.bridge != "none").then(|| berth_engine::NetConfig {
            bridge: a.bridge.clone(),
            subnet: a.bip.clone(),
            table: a.nft_table.clone(),
        }),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let r = rt.block_on(async move {
        std::fs::create_dir_all(&cfg.exec_root).with_context(|| format!("creating {}", cfg.exec_root.display()))?;
        write_pidfile(&pidfile)?;
        let mut listeners = Vec::new();
        for h in &a.hosts {
            listeners.push(berth_server::listen::Listener::bind(h, tls.as_ref()).await.with_context(|| format!("listening on {h}"))?);
        }
        let engine = match berth_engine::Engine::open(cfg).await {
            Ok(e) => e,
            Err(e) => {
                // Nothing of this daemon may stay behind: its sockets and pid file go.
                drop(listeners);
                for h in &a.hosts {
                    if let Some(p) = h.strip_prefix("unix://") {
                        let _ = std::fs::remove_file(p);
                    }
                }
                let _ = std::fs::remove_file(&pidfile);
                return Err(anyhow::anyhow!("{}", e.message()));
            }
        };
        let app = berth_server::app(std::sync::Arc::new(engine));
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
            tracing::info!("shutting down; containers keep running");
        };
        let r = berth_server::listen::serve(listeners, app, shutdown).await;
        let _ = std::fs::remove_file(&pidfile);
        r.context("serving the API")
    });
    // Monitors block in their shims' `wait` until the containers exit, which they outlive
    // berthd to do: do not wait for those threads.
    rt.shutdown_background();
    r
}
