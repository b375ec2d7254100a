//! `quiver broker`: runs a broker in the foreground, alone or (with `--controllers`) as a member
//! of a cluster.
//!
//! Start-up: settings ([`config`]), the TLS identity (a self-signed certificate is created under
//! `<data-dir>/tls/` on first start unless `--tls-cert/--tls-key` are given), the engine's
//! per-shard seeds (topic registry loaded), in cluster mode the QUIC client configuration for
//! connections to the other brokers (trusting `--tls-ca`), then one pinned executor per shard
//! ([`server`]) and the metrics thread ([`metrics`]). When every shard listens, one line on
//! stderr says so: `quiver broker ready: ...` (tests and scripts wait for it). SIGINT or SIGTERM
//! stops every shard cleanly; a fatal shard error stops the others and exits with status 3.

pub mod config;
mod metrics;
mod server;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use quiver_engine::broker::{self, BrokerConfig};
use quiver_transport::quic::{self, Identity, Trust, Tuning};

pub use config::BrokerArgs;
use config::Settings;
use server::{ShardEvent, Shared};

use super::CliError;

/// Runs the broker until a signal or a fatal error.
pub fn run(args: BrokerArgs) -> Result<(), CliError> {
    let settings = args.settings()?;
    std::fs::create_dir_all(&settings.data_dir).map_err(|e| {
        CliError::io(
            format!("creating data dir {}", settings.data_dir.display()),
            e,
        )
    })?;
    let identity = match &settings.tls {
        Some((cert, key)) => {
            Identity::load(cert, key).map_err(|e| CliError::BadInput(e.to_string()))?
        }
        None => {
            let dir = settings.data_dir.join("tls");
            let names = vec![settings.advertised_host.clone()];
            let (identity, created) = Identity::load_or_create_self_signed(&dir, &names)
                .map_err(|e| CliError::BadInput(e.to_string()))?;
            if created {
                eprintln!(
                    "quiver: created a self-signed TLS certificate {} (clients trust it with --tls-ca or QUIVER_TLS_CA)",
                    dir.join(quic::tls::CERT_FILE).display()
                );
            }
            identity
        }
    };
    let server_config = quic::server_config(&identity, &Tuning::default())
        .map_err(|e| CliError::BadInput(e.to_string()))?;
    let peer_client_config = match &settings.cluster {
        Some(cluster) => {
            let voters: Vec<String> = cluster
                .controllers
                .iter()
                .map(|c| format!("{}@{}", c.id, c.addr))
                .collect();
            eprintln!(
                "quiver: cluster mode: node id {}{}, controllers {}",
                settings.node_id,
                if cluster.is_controller(settings.node_id) {
                    " (a controller)"
                } else {
                    ""
                },
                voters.join(",")
            );
            Some(peer_client_config(&settings)?)
        }
        None => None,
    };

    let mut engine_config = BrokerConfig::new(settings.data_dir.clone(), settings.shards);
    engine_config.advertised_host = settings.advertised_host.clone();
    engine_config.base_port = settings.listen.port();
    engine_config.frame_bytes_max = settings.frame_bytes_max as usize;
    engine_config.topic_defaults.partitions = settings.default_partitions;
    engine_config.groups.session_timeout_min_ms = settings.group_min_session_timeout_ms;
    engine_config.groups.session_timeout_max_ms = settings.group_max_session_timeout_ms;
    engine_config.groups.heartbeat_interval_ms = settings.group_heartbeat_interval_ms;
    engine_config.groups.offsets_retention_ms = settings.offsets_retention_ms;
    engine_config.retention_check_interval_ms = settings.retention_check_interval_ms;
    engine_config.fault_drop_produce_response_every = settings.fault_drop_produce_response_every;
    engine_config.node_id = settings.node_id;
    engine_config.cluster = settings.cluster.clone();
    let seeds = broker::prepare(&engine_config).map_err(|e| CliError::Fatal(e.to_string()))?;

    let signals = block_termination_signals();
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        metrics: Mutex::new(vec![None; settings.shards]),
    });
    let (events_tx, events) = mpsc::channel();
    let mut threads = Vec::new();
    for (shard, seed) in seeds.into_iter().enumerate() {
        let handle = server::spawn_shard(
            shard,
            seed,
            &settings,
            server_config.clone(),
            peer_client_config.clone(),
            shared.clone(),
            events_tx.clone(),
        )
        .map_err(|e| CliError::io("spawning a shard thread", e))?;
        threads.push(handle);
    }
    drop(events_tx);
    let metrics_addr = match settings.metrics_listen {
        Some(addr) => match metrics::spawn(addr, shared.clone()) {
            Ok(local) => Some(local),
            Err(e) => {
                shared.stop.store(true, Ordering::Relaxed);
                for t in threads {
                    let _ = t.join();
                }
                return Err(CliError::io(format!("metrics endpoint on {addr}"), e));
            }
        },
        None => None,
    };

    let mut ready = 0;
    let mut stopped = 0;
    let mut fatal: Option<String> = None;
    while stopped < settings.shards {
        if !shared.stop.load(Ordering::Relaxed) && wait_signal(&signals, Duration::from_millis(50))
        {
            eprintln!("quiver: stopping (signal received)");
            shared.stop.store(true, Ordering::Relaxed);
        }
        let timeout = if shared.stop.load(Ordering::Relaxed) {
            Duration::from_millis(50)
        } else {
            Duration::ZERO
        };
        match events.recv_timeout(timeout) {
            Ok(ShardEvent::Ready) => {
                ready += 1;
                if ready == settings.shards {
                    let last = settings.listen.port() as usize + settings.shards - 1;
                    eprintln!(
                        "quiver broker ready: {} shard(s) on {} (UDP ports {}-{}), data dir {}, metrics {}",
                        settings.shards,
                        settings.listen,
                        settings.listen.port(),
                        last,
                        settings.data_dir.display(),
                        metrics_addr.map_or("off".to_string(), |a| format!("http://{a}/metrics")),
                    );
                }
            }
            Ok(ShardEvent::Fatal(shard, error)) => {
                eprintln!("quiver: shard {shard} failed: {error}");
                fatal.get_or_insert(format!("shard {shard}: {error}"));
                shared.stop.store(true, Ordering::Relaxed);
                stopped += 1;
            }
            Ok(ShardEvent::Stopped) => stopped += 1,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    for t in threads {
        let _ = t.join();
    }
    match fatal {
        Some(e) => Err(CliError::Fatal(e)),
        None => {
            eprintln!("quiver: stopped cleanly");
            Ok(())
        }
    }
}

/// The QUIC client configuration this broker uses to connect to the other brokers of its cluster
/// (controllers, partition leaders): it trusts `--tls-ca`, or else only this broker's own
/// certificate file, which is enough when every broker shares one certificate (or its file
/// carries the CA after the leaf, as `quiver cluster certs` writes it).
fn peer_client_config(settings: &Settings) -> Result<quinn::ClientConfig, CliError> {
    let (ca, why) = match (&settings.tls_ca, &settings.tls) {
        (Some(ca), _) => (ca.clone(), "--tls-ca"),
        (None, Some((cert, _))) => (cert.clone(), "--tls-cert (no --tls-ca given)"),
        (None, None) => {
            let cert = settings.data_dir.join("tls").join(quic::tls::CERT_FILE);
            eprintln!(
                "quiver: no --tls-ca: brokers trust only this broker's self-signed certificate \
                 {}; other brokers must use the same one (or see `quiver cluster certs`)",
                cert.display()
            );
            (
                cert,
                "this broker's self-signed certificate (no --tls-ca given)",
            )
        }
    };
    let trust = Trust::from_pem_file(&ca)
        .map_err(|e| CliError::BadInput(format!("loading the CA for other brokers, {why}: {e}")))?;
    quic::client_config(&trust, &Tuning::default()).map_err(|e| CliError::BadInput(e.to_string()))
}

/// Blocks SIGINT and SIGTERM in this thread and every thread it spawns afterwards, so only
/// [`wait_signal`] sees them.
fn block_termination_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data initialised by sigemptyset before use; pthread_sigmask
    // only changes this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Waits up to `timeout` for one of `set`'s signals; true if one arrived.
fn wait_signal(set: &libc::sigset_t, timeout: Duration) -> bool {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `set` is an initialised sigset; a null siginfo pointer is allowed.
    let signal = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
    signal > 0
}
