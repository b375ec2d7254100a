//! `quiver bench` against a broker that dies mid-run: a `quiver broker` child on free loopback
//! ports is SIGKILLed once the bench's records are flowing through it (seen on the broker's
//! metrics endpoint), and the bench must then end on its own within a bound, exit with status
//! 1, and say that the run hit errors (the `ERRORS:` section of its table and the "the run hit
//! N error(s)" message) instead of presenting its figures as a clean result. One test drives a
//! producer-only workload (`pinned-producer`), the other a producer/consumer one (`end-to-end`),
//! whose consumer loses the broker as well.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::broker::BrokerProcess;
use common::quiver_bin;

/// How long the bench may take to get records through the broker (connecting, creating its
/// topic, first acknowledgements) on a loaded machine.
const LOAD_START_TIMEOUT: Duration = Duration::from_secs(30);
/// Load the broker carries after the first records went through, before it is killed.
const LOAD_BEFORE_KILL: Duration = Duration::from_secs(1);
/// How long the bench may take to give up after the broker died.
const BENCH_EXIT_TIMEOUT: Duration = Duration::from_secs(60);
/// Measured seconds asked of the bench: far beyond the kill, so the kill lands mid-run.
const BENCH_DURATION_SECS: &str = "30";

/// A running `quiver bench` with its stdout and stderr being collected.
struct Bench {
    child: Child,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

impl Bench {
    fn start(broker: &BrokerProcess, workload: &str, extra: &[&str]) -> Bench {
        let bootstrap = broker.bootstrap();
        let ca = broker.ca();
        let mut child = Command::new(quiver_bin())
            .args(["bench", workload, "--bootstrap", &bootstrap, "--tls-ca"])
            .arg(&ca)
            .args(["--warmup", "0", "--no-progress"])
            .args(extra)
            .env_remove("QUIVER_CONFIG")
            .env_remove("QUIVER_BOOTSTRAP")
            .env_remove("QUIVER_TLS_CA")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("quiver bench starts");
        let collect = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                String::from_utf8_lossy(&bytes).into_owned()
            })
        };
        let stdout = collect(Box::new(child.stdout.take().expect("stdout is piped")));
        let stderr = collect(Box::new(child.stderr.take().expect("stderr is piped")));
        Bench {
            child,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("poll the bench")
    }

    /// Waits up to `timeout` for the exit; kills it otherwise. Returns the status (None if it
    /// overstayed), stdout and stderr.
    fn finish(mut self, timeout: Duration) -> (Option<ExitStatus>, String, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.exited() {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = self.stdout.take().expect("collected once").join().unwrap();
        let err = self.stderr.take().expect("collected once").join().unwrap();
        (status, out, err)
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET` of the broker's Prometheus endpoint (`http://host:port/metrics`), or None.
fn scrape(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let (addr, path) = rest.split_at(rest.find('/')?);
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    Some(body)
}

/// Sum of the metric `name` over the bench's partitions (topics `bench-*`).
fn bench_total(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l.contains("topic=\"bench-"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Waits until the broker's metrics show the bench's records appended (and, if `consumed`,
/// fetched), failing the test if the bench exits or `LOAD_START_TIMEOUT` passes first.
fn wait_for_load(broker: &BrokerProcess, bench: &mut Bench, consumed: bool) {
    let url = broker.metrics.clone().expect("the broker serves metrics");
    let deadline = Instant::now() + LOAD_START_TIMEOUT;
    loop {
        if let Some(status) = bench.exited() {
            panic!("the bench exited with {status} before its load reached the broker");
        }
        if let Some(metrics) = scrape(&url) {
            let appended = bench_total(&metrics, "quiver_partition_records_in_total");
            let fetched = bench_total(&metrics, "quiver_partition_records_out_total");
            if appended > 0 && (!consumed || fetched > 0) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no bench records reached the broker within {LOAD_START_TIMEOUT:?}:\n{}",
            broker.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `workload` against a broker, SIGKILLs the broker mid-run, and checks the bench fails
/// loudly and in bounded time.
fn bench_reports_killed_broker(workload: &str, extra: &[&str], consumed: bool) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let broker = BrokerProcess::start(dir.path(), 1, &[]);
    let started = Instant::now();
    let mut bench = Bench::start(&broker, workload, extra);
    wait_for_load(&broker, &mut bench, consumed);
    std::thread::sleep(LOAD_BEFORE_KILL);
    if let Some(status) = bench.exited() {
        panic!("the bench exited with {status} before the broker was killed");
    }
    let load = started.elapsed();
    broker.kill9();
    let killed = Instant::now();

    let (status, stdout, stderr) = bench.finish(BENCH_EXIT_TIMEOUT);
    let after_kill = killed.elapsed();
    eprintln!(
        "{workload}: broker killed {load:.1?} after the bench started; the bench ended \
         {after_kill:.1?} later with {status:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let status = status.unwrap_or_else(|| {
        panic!(
            "{workload}: the bench still ran {BENCH_EXIT_TIMEOUT:?} after the broker died\n\
             stdout:\n{stdout}\nstderr:\n{stderr}"
        )
    });
    assert_eq!(
        status.code(),
        Some(1),
        "{workload}: a run that hit errors exits with status 1, not {status}\n\
         stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains("the run hit") && stderr.contains("error(s)"),
        "{workload}: the bench must say the run hit errors\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains("not trustworthy"),
        "{workload}: the bench must not present the figures as clean\nstderr:\n{stderr}"
    );
    // The table is still printed, with the errors in it rather than a clean result.
    assert!(
        stdout.contains("records/s"),
        "{workload}: no table\n{stdout}"
    );
    let errors = stdout
        .split("ERRORS: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(
        errors.is_some_and(|n| n > 0),
        "{workload}: the table must list the errors\n{stdout}"
    );
}

#[test]
fn producer_bench_fails_when_the_broker_is_killed() {
    bench_reports_killed_broker(
        "pinned-producer",
        &["--duration", BENCH_DURATION_SECS],
        false,
    );
}

#[test]
fn end_to_end_bench_fails_when_the_broker_is_killed() {
    bench_reports_killed_broker(
        "end-to-end",
        &["--duration", BENCH_DURATION_SECS, "--message-size", "256"],
        true,
    );
}
