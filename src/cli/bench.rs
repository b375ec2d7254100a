//! `quiver bench WORKLOAD [options]` and `quiver bench compare A.json B.json`: the load-test
//! harness (crate `quiver-bench`) on the command line.
//!
//! A run prints a live progress line on stderr (when it is a terminal), then the table on
//! stdout; `--json FILE` writes the report, `--plot FILE.svg` (or `FILE.png`) the throughput
//! and latency over time, as SVG or PNG by the file's extension. Exit status: 0 when the run completed without errors; 1 when it could not run or hit
//! errors (the table still shows the figures and the errors); 2 for usage errors.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use quiver_bench::compare;
use quiver_bench::plot;
use quiver_bench::{BenchError, MessageSize, Options, Params, Report, Target, Workload};

use super::client::ConnectArgs;
use super::CliError;

/// `quiver bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

/// The workloads, and `compare`.
#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Producers, each writing its own topic (default: 1 producer, 1 partition).
    PinnedProducer(WorkloadArgs),
    /// Consumers, each reading its own topic filled before the measurement; with --embedded
    /// the broker is restarted after filling, so reads come from disk (default: 1 consumer,
    /// 1,000,000 records).
    PinnedConsumer(WorkloadArgs),
    /// Producer/consumer pairs, one topic per pair, consumers tailing (default: 1 pair).
    PinnedProducerAndConsumer(WorkloadArgs),
    /// Producers sharing one topic of many partitions (default: 8 producers, 8 partitions).
    BalancedProducer(WorkloadArgs),
    /// Members of one consumer group sharing one filled topic of many partitions (measured
    /// once the coordinator has shared the partitions out).
    BalancedConsumerGroup(WorkloadArgs),
    /// Producers and one consumer group sharing one topic of many partitions (producing starts
    /// once the coordinator has shared the partitions out).
    BalancedProducerAndConsumerGroup(WorkloadArgs),
    /// Each record's produce-to-consume latency through producer/consumer pairs (default: 1
    /// pair; use --rate for open-loop latency).
    EndToEnd(WorkloadArgs),
    /// Print every figure of two JSON reports side by side with the ratio B/A.
    Compare {
        /// Report A (the baseline).
        a: PathBuf,
        /// Report B.
        b: PathBuf,
    },
}

/// Options shared by every workload.
#[derive(Debug, Args)]
struct WorkloadArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Start a broker on free loopback ports with a temporary data dir (removed after),
    /// instead of using --bootstrap.
    #[arg(long)]
    embedded: bool,
    /// Shards of the --embedded broker. [default: one per core]
    #[arg(long, requires = "embedded")]
    embedded_shards: Option<usize>,
    /// Directory to create the --embedded broker's temporary data dir in. [default: the
    /// system temp dir; it must support O_DIRECT, so not tmpfs]
    #[arg(long, requires = "embedded")]
    embedded_dir: Option<PathBuf>,
    /// Producer actors, each its own SDK producer.
    #[arg(long)]
    producers: Option<usize>,
    /// Consumer actors, each its own SDK consumer.
    #[arg(long)]
    consumers: Option<usize>,
    /// Partitions per topic (pinned: each actor's topic; balanced: the one topic).
    #[arg(long)]
    partitions: Option<i32>,
    /// Bytes of each record's value: N or MIN..MAX (uniform).
    #[arg(long, default_value = "1024")]
    message_size: MessageSize,
    /// Records per batch (sizes the producers' batch.size; unkeyed records move to the next
    /// partition after this many).
    #[arg(long, default_value_t = 1000)]
    messages_per_batch: usize,
    /// Producer linger, ms.
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    /// Batch compression: none, gzip, snappy, lz4, zstd.
    #[arg(long, default_value = "none")]
    compression: String,
    /// Producer acks: 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: String,
    /// Topic flush policy: always, interval or never.
    #[arg(long, default_value = "interval")]
    flush: String,
    /// Replicas per partition of the bench topics, on a cluster (min.insync.replicas is then
    /// replicas - 1, as in Kafka's usual RF=3 / min.insync=2). [default: the broker's default]
    #[arg(long, default_value_t = -1)]
    replication_factor: i16,
    /// Give each record a random key (partitioned by murmur2, as Kafka does).
    #[arg(long)]
    keyed: bool,
    /// Records to produce over all producers (consumer-only workloads: to fill and read).
    #[arg(long, conflicts_with = "duration")]
    messages: Option<u64>,
    /// Measured seconds (after the warm-up). [default: 10, unless --messages]
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds run before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Open-loop target rate, records/s over all producers: latency is measured from each
    /// record's intended send time (corrected for coordinated omission). Without it: closed
    /// loop, as fast as possible.
    #[arg(long)]
    rate: Option<f64>,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Draw throughput and latency over time into this file: SVG or PNG, by its extension
    /// (FILE.svg or FILE.png).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// No progress line on stderr.
    #[arg(long)]
    no_progress: bool,
    /// Leave the benchmark's topics on the broker.
    #[arg(long)]
    keep_topics: bool,
}

/// Runs `quiver bench`.
pub fn run(args: BenchArgs) -> Result<(), CliError> {
    let (workload, args) = match args.command {
        BenchCommand::Compare { a, b } => return compare_reports(&a, &b),
        BenchCommand::PinnedProducer(w) => (Workload::PinnedProducer, w),
        BenchCommand::PinnedConsumer(w) => (Workload::PinnedConsumer, w),
        BenchCommand::PinnedProducerAndConsumer(w) => (Workload::PinnedProducerAndConsumer, w),
        BenchCommand::BalancedProducer(w) => (Workload::BalancedProducer, w),
        BenchCommand::BalancedConsumerGroup(w) => (Workload::BalancedConsumerGroup, w),
        BenchCommand::BalancedProducerAndConsumerGroup(w) => {
            (Workload::BalancedProducerAndConsumerGroup, w)
        }
        BenchCommand::EndToEnd(w) => (Workload::EndToEnd, w),
    };
    let plot_format = args.plot.as_deref().map(plot_format).transpose()?;
    let params = params_of(workload, &args);
    let target = if args.embedded {
        let exe = std::env::current_exe()
            .map_err(|e| CliError::io("finding the quiver executable", e))?;
        Target::Embedded {
            exe,
            shards: args.embedded_shards,
            parent: args.embedded_dir.clone(),
        }
    } else {
        Target::Bootstrap(args.connect.client_config()?)
    };
    let options = Options {
        progress: !args.no_progress,
        keep_topics: args.keep_topics,
    };
    let report = quiver_bench::run(&params, target, &options).map_err(|e| match e {
        BenchError::InvalidParams(m) => CliError::BadInput(m),
        e => CliError::Client(e.to_string()),
    })?;
    print!("{}", report.table());
    if let Some(path) = &args.json {
        report.save(path).map_err(CliError::BadInput)?;
        println!("\nJSON report: {}", path.display());
    }
    if let (Some(path), Some(format)) = (&args.plot, plot_format) {
        let bytes = match format {
            PlotFormat::Svg => plot::svg(&report).into_bytes(),
            PlotFormat::Png => plot::png(&report)
                .map_err(|e| CliError::BadInput(format!("--plot {}: {e}", path.display())))?,
        };
        std::fs::write(path, bytes)
            .map_err(|e| CliError::io(format!("writing {}", path.display()), e))?;
        println!("plot: {}", path.display());
    }
    if report.results.errors > 0 {
        return Err(CliError::Client(format!(
            "the run hit {} error(s); its figures are not trustworthy",
            report.results.errors
        )));
    }
    Ok(())
}

/// What `--plot` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PlotFormat {
    Svg,
    Png,
}

/// The format `--plot path` asks for, by the file's extension (any case).
fn plot_format(path: &std::path::Path) -> Result<PlotFormat, CliError> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("svg") => Ok(PlotFormat::Svg),
        Some("png") => Ok(PlotFormat::Png),
        _ => Err(CliError::BadInput(format!(
            "--plot {}: only SVG and PNG are supported (name the file *.svg or *.png)",
            path.display()
        ))),
    }
}

/// The parameters `args` describe, with each workload's defaults filled in.
fn params_of(workload: Workload, args: &WorkloadArgs) -> Params {
    let balanced = matches!(
        workload,
        Workload::BalancedProducer
            | Workload::BalancedConsumerGroup
            | Workload::BalancedProducerAndConsumerGroup
    );
    let producers = args.producers.unwrap_or(if balanced { 8 } else { 1 });
    let consumers = args
        .consumers
        .unwrap_or(if workload.produces() { producers } else { 1 });
    Params {
        workload,
        producers: if workload.produces() { producers } else { 0 },
        consumers: if workload.consumes() { consumers } else { 0 },
        partitions: args.partitions.unwrap_or(if balanced { 8 } else { 1 }),
        message_size: args.message_size,
        messages_per_batch: args.messages_per_batch,
        linger_ms: args.linger_ms,
        compression: args.compression.clone(),
        acks: args.acks.clone(),
        flush: args.flush.clone(),
        replication_factor: args.replication_factor,
        keyed: args.keyed,
        messages: args.messages,
        duration_secs: args.duration,
        warmup_secs: args.warmup,
        rate: args.rate,
        target: if args.embedded {
            "embedded".into()
        } else {
            args.connect.bootstrap.clone()
        },
    }
}

fn compare_reports(a: &std::path::Path, b: &std::path::Path) -> Result<(), CliError> {
    let ra = Report::load(a).map_err(CliError::BadInput)?;
    let rb = Report::load(b).map_err(CliError::BadInput)?;
    print!(
        "{}",
        compare::render(&a.display().to_string(), &ra, &b.display().to_string(), &rb)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_plot_format_follows_the_extension_in_any_case() {
        for (name, format) in [
            ("a.svg", PlotFormat::Svg),
            ("dir/B.SVG", PlotFormat::Svg),
            ("c.png", PlotFormat::Png),
            ("d.PnG", PlotFormat::Png),
        ] {
            assert_eq!(plot_format(Path::new(name)).ok(), Some(format), "{name}");
        }
        for name in ["x.gif", "x", "svg", "x.svg.txt", "x.jpeg"] {
            match plot_format(Path::new(name)) {
                Err(CliError::BadInput(m)) => {
                    assert!(m.contains("*.svg or *.png"), "{m}");
                    assert!(m.contains(name), "{m}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
