//! The QUIC benchmark's report: per-run figures, medians, the table, JSON, and the last line.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::{ClientStats, ServerKind, ServerStats};
use crate::storage::stats::{paired_ratios, Spread};

const MIB: f64 = (1u64 << 20) as f64;

/// The settings a report was measured with.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Bytes per run.
    pub bytes_per_run: u64,
    /// Bytes per `write_chunk`.
    pub chunk_bytes: usize,
    /// Streams per run.
    pub streams: usize,
    /// Rounds of (tokio, glommio).
    pub rounds: usize,
    /// Path-MTU discovery ceiling.
    pub mtu: u16,
    /// Socket buffers asked for.
    pub socket_buffer_bytes: usize,
    /// CPU of the server thread, if pinned.
    pub server_cpu: Option<usize>,
    /// CPU of the client thread, if pinned.
    pub client_cpu: Option<usize>,
    /// CPUs available.
    pub cpus: usize,
}

/// One timed transfer.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// The server's runtime.
    pub server: ServerKind,
    /// Round number, from 0.
    pub round: usize,
    /// Throughput, MiB/s.
    pub mib_s: f64,
    /// Duration, seconds.
    pub secs: f64,
    /// Datagrams per send syscall on the client (GSO batching; 1 = none).
    pub client_datagrams_per_send: f64,
    /// Datagrams the server sent (ACKs and window updates), per MiB received.
    pub server_datagrams_per_mib: f64,
    /// Packets the client declared lost.
    pub lost_packets: u64,
    /// Congestion events on the client.
    pub congestion_events: u64,
    /// Path MTU at the end.
    pub mtu: u16,
    /// The server socket's `SO_RCVBUF` as granted.
    pub server_recv_buffer_bytes: usize,
}

impl Run {
    pub(super) fn new(
        server: ServerKind,
        round: usize,
        bytes: u64,
        client: ClientStats,
        stats: ServerStats,
    ) -> Run {
        let per = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        Run {
            server,
            round,
            mib_s: if client.secs > 0.0 {
                bytes as f64 / MIB / client.secs
            } else {
                0.0
            },
            secs: client.secs,
            client_datagrams_per_send: per(client.tx_datagrams, client.tx_ios),
            server_datagrams_per_mib: stats.tx_datagrams as f64 / (bytes as f64 / MIB),
            lost_packets: client.lost_packets,
            congestion_events: client.congestion_events,
            mtu: client.mtu,
            server_recv_buffer_bytes: stats.recv_buffer_bytes,
        }
    }

    /// One human line for progress output and the table.
    pub fn line(&self) -> String {
        format!(
            "round {} {:>7}: {:>6.0} MiB/s ({:.2} s), client {:.1} datagrams/send, server sent {:.1} \
             datagrams/MiB, lost {}, congestion events {}, mtu {}, server SO_RCVBUF {} KiB",
            self.round,
            self.server.name(),
            self.mib_s,
            self.secs,
            self.client_datagrams_per_send,
            self.server_datagrams_per_mib,
            self.lost_packets,
            self.congestion_events,
            self.mtu,
            self.server_recv_buffer_bytes >> 10
        )
    }
}

/// The whole benchmark's result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// How it was measured.
    pub settings: Settings,
    /// Every run in order.
    pub runs: Vec<Run>,
    /// MiB/s with the tokio server.
    pub tokio: Option<Spread>,
    /// MiB/s with the glommio server.
    pub glommio: Option<Spread>,
    /// glommio median / tokio median.
    pub ratio: Option<f64>,
    /// Median of the per-round ratios glommio / tokio.
    pub paired_ratio: Option<Spread>,
}

impl Report {
    pub(super) fn new(settings: Settings, runs: Vec<Run>) -> Report {
        let of = |kind| -> Vec<f64> {
            runs.iter()
                .filter(|r| r.server == kind)
                .map(|r| r.mib_s)
                .collect()
        };
        let tokio_runs = of(ServerKind::Tokio);
        let glommio_runs = of(ServerKind::Glommio);
        let tokio = Spread::of(&tokio_runs);
        let glommio = Spread::of(&glommio_runs);
        let ratio = match (glommio, tokio) {
            (Some(g), Some(t)) if t.median > 0.0 => Some(g.median / t.median),
            _ => None,
        };
        let paired_ratio = Spread::of(&paired_ratios(&glommio_runs, &tokio_runs));
        Report {
            settings,
            runs,
            tokio,
            glommio,
            ratio,
            paired_ratio,
        }
    }

    /// The human table.
    pub fn table(&self) -> String {
        let s = &self.settings;
        let cpu = |c: Option<usize>| c.map_or("unpinned".to_string(), |c| format!("cpu {c}"));
        let mut out = String::new();
        let _ = writeln!(
            out,
            "quic bench: {:.2} GiB per run in {} KiB write_chunk calls over {} stream(s), {} rounds \
             (tokio then glommio server), mtu ceiling {}, socket buffers {} KiB, server {}, client \
             {} ({} cpus)",
            s.bytes_per_run as f64 / (1u64 << 30) as f64,
            s.chunk_bytes >> 10,
            s.streams,
            s.rounds,
            s.mtu,
            s.socket_buffer_bytes >> 10,
            cpu(s.server_cpu),
            cpu(s.client_cpu),
            s.cpus
        );
        for run in &self.runs {
            let _ = writeln!(out, "  {}", run.line());
        }
        let show = |s: &Option<Spread>| s.map_or("n/a".to_string(), |s| s.show());
        let _ = writeln!(out, "server    MiB/s median (min-max)");
        let _ = writeln!(out, "tokio     {}", show(&self.tokio));
        let _ = writeln!(out, "glommio   {}", show(&self.glommio));
        let _ = writeln!(
            out,
            "ratio glommio/tokio: {} (median of per-round ratios {})",
            self.ratio.map_or("n/a".to_string(), |r| format!("{r:.2}")),
            self.paired_ratio.map_or("n/a".to_string(), |r| format!(
                "{:.2} ({:.2}-{:.2})",
                r.median, r.min, r.max
            ))
        );
        out
    }

    /// `glommio_mib_s=<n> tokio_mib_s=<n> ratio=<r>`.
    pub fn last_line(&self) -> String {
        let mib = |s: &Option<Spread>| s.map_or("n/a".to_string(), |s| format!("{:.0}", s.median));
        format!(
            "glommio_mib_s={} tokio_mib_s={} ratio={}",
            mib(&self.glommio),
            mib(&self.tokio),
            self.ratio.map_or("n/a".to_string(), |r| format!("{r:.2}"))
        )
    }

    /// Writes the report as pretty JSON to `path`, creating its directory.
    pub fn save_json(&self, path: &Path) -> Result<(), String> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let json = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(path, json + "\n").map_err(|e| format!("{}: {e}", path.display()))
    }
}
