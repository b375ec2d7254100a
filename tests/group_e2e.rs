//! Consumer groups end to end, with real processes: three `quiver consume --group` members
//! share six partitions (two each), every record is printed exactly once through the joins (a
//! clean rebalance commits before it moves a partition); one member is SIGKILLed and its
//! partitions move to the others within the session timeout, and later records still all
//! arrive; a second group reads everything on its own; the committed offsets survive a broker
//! restart, so a restarted member reads nothing again.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::broker::BrokerProcess;
use common::{quiver_bin, stderr_of, stdout_of};

const TOPIC: &str = "orders";
const GROUP: &str = "shipping";
const SESSION_TIMEOUT_MS: u64 = 3000;
const WAIT_MAX: Duration = Duration::from_secs(40);

/// A `quiver consume --group` process whose printed `(partition, offset)` pairs are collected.
struct Member {
    child: Child,
    seen: Arc<Mutex<Vec<(i32, i64)>>>,
}

impl Member {
    fn start(broker: &BrokerProcess, group: &str, extra: &[&str]) -> Member {
        let mut child = Command::new(quiver_bin())
            .args([
                "consume",
                TOPIC,
                "--group",
                group,
                "--from-beginning",
                "--print-offset",
            ])
            .args(["--session-timeout-ms", &SESSION_TIMEOUT_MS.to_string()])
            .args(extra)
            .env("QUIVER_BOOTSTRAP", broker.bootstrap())
            .env("QUIVER_TLS_CA", broker.ca())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("quiver consume starts");
        let stdout = child.stdout.take().expect("piped");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut f = line.split('\t');
                let p = f.next().and_then(|x| x.parse().ok());
                let o = f.next().and_then(|x| x.parse().ok());
                if let (Some(p), Some(o)) = (p, o) {
                    sink.lock().unwrap().push((p, o));
                }
            }
        });
        Member { child, seen }
    }

    fn seen(&self) -> Vec<(i32, i64)> {
        self.seen.lock().unwrap().clone()
    }

    fn kill9(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn produce(broker: &BrokerProcess, from: usize, count: usize) {
    let lines: String = (from..from + count)
        .map(|i| format!("k{i}:v{i}\n"))
        .collect();
    let out = broker.cli(
        &["produce", TOPIC, "--key-separator", ":"],
        Some(lines.as_bytes()),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
}

/// `member` lines of `group describe`: member id → assigned partitions.
fn assignment(broker: &BrokerProcess, group: &str) -> BTreeMap<String, BTreeSet<i32>> {
    let out = broker.cli(&["group", "describe", group], None);
    if !out.status.success() {
        return BTreeMap::new();
    }
    stdout_of(&out)
        .lines()
        .filter(|l| l.starts_with("member\t"))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let parts = f[7]
                .strip_prefix(&format!("{TOPIC}:"))
                .map(|ps| ps.split(',').map(|p| p.parse().unwrap()).collect())
                .unwrap_or_default();
            (f[1].to_string(), parts)
        })
        .collect()
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < WAIT_MAX, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    started.elapsed()
}

fn union(members: &[&Member]) -> Vec<(i32, i64)> {
    members.iter().flat_map(|m| m.seen()).collect()
}

/// Log end offsets from `topic describe`: the set of every (partition, offset) produced.
fn all_records(broker: &BrokerProcess) -> BTreeSet<(i32, i64)> {
    let out = broker.cli(&["topic", "describe", TOPIC], None);
    stdout_of(&out)
        .lines()
        .filter(|l| l.starts_with("partition\t"))
        .flat_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let p: i32 = f[1].parse().unwrap();
            let end: i64 = f[7].parse().unwrap();
            (0..end).map(move |o| (p, o))
        })
        .collect()
}

#[test]
fn members_share_partitions_survive_a_kill_and_commit_what_they_printed() {
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--group-min-session-timeout-ms",
        "1000",
        "--group-heartbeat-interval-ms",
        "200",
    ];
    let broker = BrokerProcess::start(dir.path(), 2, &flags);
    let out = broker.cli(&["topic", "create", TOPIC, "--partitions", "6"], None);
    assert!(out.status.success(), "{}", stderr_of(&out));
    produce(&broker, 0, 600);
    let first = all_records(&broker);
    assert_eq!(first.len(), 600);

    // Three members join one after another; each ends with two partitions.
    let mut a = Member::start(&broker, GROUP, &[]);
    std::thread::sleep(Duration::from_millis(500));
    let b = Member::start(&broker, GROUP, &[]);
    let c = Member::start(&broker, GROUP, &[]);
    wait_for("2-2-2", || {
        let now = assignment(&broker, GROUP);
        now.len() == 3 && now.values().all(|ps| ps.len() == 2)
    });
    wait_for("every record printed", || {
        union(&[&a, &b, &c]).into_iter().collect::<BTreeSet<_>>() == first
    });
    // Exactly once through the clean rebalances: revoked partitions were committed first.
    let printed = union(&[&a, &b, &c]);
    assert_eq!(printed.len(), 600, "records printed twice during the joins");

    // SIGKILL one member: its partitions move to the others within the session timeout.
    std::thread::sleep(Duration::from_millis(1500)); // let the 1 s auto-commit run
    a.kill9();
    let moved = wait_for("3-3 after the kill", || {
        let now = assignment(&broker, GROUP);
        now.len() == 2 && now.values().all(|ps| ps.len() == 3)
    });
    assert!(
        moved < Duration::from_millis(SESSION_TIMEOUT_MS + 3000),
        "partitions moved only after {moved:?}"
    );

    // Later records all reach the survivors.
    produce(&broker, 600, 600);
    let everything = all_records(&broker);
    assert_eq!(everything.len(), 1200);
    wait_for("every record printed after the kill", || {
        union(&[&a, &b, &c]).into_iter().collect::<BTreeSet<_>>() == everything
    });

    // Another group gets every record too, on its own.
    let other = broker.cli(
        &[
            "consume",
            TOPIC,
            "--group",
            "audit",
            "--from-beginning",
            "--print-offset",
            "--idle-timeout-ms",
            "3000",
            "--session-timeout-ms",
            "3000",
        ],
        None,
    );
    assert!(other.status.success(), "{}", stderr_of(&other));
    let audit: Vec<(i32, i64)> = stdout_of(&other)
        .lines()
        .map(|l| {
            let mut f = l.split('\t');
            (
                f.next().unwrap().parse().unwrap(),
                f.next().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(audit.len(), 1200);
    assert_eq!(audit.into_iter().collect::<BTreeSet<_>>(), everything);

    // Let the survivors commit, stop them, restart the broker: nothing is read again.
    std::thread::sleep(Duration::from_millis(1500));
    drop(b);
    drop(c);
    drop(a);
    let port = broker.port;
    assert!(broker.stop().success());
    let broker = BrokerProcess::start_on(dir.path(), 2, port, &flags);
    let out = broker.cli(&["group", "describe", GROUP], None);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let lags: Vec<i64> = stdout_of(&out)
        .lines()
        .filter(|l| l.starts_with("partition\t"))
        .map(|l| l.split('\t').nth(8).unwrap().parse().unwrap())
        .collect();
    assert_eq!(lags, vec![0; 6], "{}", stdout_of(&out));
    let again = broker.cli(
        &[
            "consume",
            TOPIC,
            "--group",
            GROUP,
            "--from-beginning",
            "--idle-timeout-ms",
            "2000",
            "--session-timeout-ms",
            "3000",
        ],
        None,
    );
    assert!(again.status.success(), "{}", stderr_of(&again));
    assert_eq!(stdout_of(&again), "", "committed records were read again");
    assert!(broker.stop().success());
}

/// The SDK's `GroupConsumer`: a member that stops polling past its session timeout is removed
/// (its partition goes to the other member), and when it polls again it rejoins without an
/// error; manual `commit_offsets` is fenced for the removed incarnation but works after.
#[test]
fn a_member_that_stops_polling_is_replaced_and_rejoins() {
    use quiver_transport::client::{
        Client, ClientConfig, ConsumerConfig, GroupConfig, GroupConsumer, OffsetReset,
    };
    use quiver_transport::quic::Trust;

    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        dir.path(),
        2,
        &[
            "--group-min-session-timeout-ms",
            "500",
            "--group-heartbeat-interval-ms",
            "100",
        ],
    );
    let out = broker.cli(&["topic", "create", TOPIC, "--partitions", "2"], None);
    assert!(out.status.success(), "{}", stderr_of(&out));
    produce(&broker, 0, 100);
    let trust = Trust::from_pem_file(&broker.ca()).unwrap();
    let config = ClientConfig::new(broker.bootstrap(), trust);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let join = |config: ClientConfig| async move {
            let client = Client::connect(config).await.unwrap();
            let consumer_config = ConsumerConfig {
                auto_offset_reset: OffsetReset::Earliest,
                ..ConsumerConfig::default()
            };
            let mut group = GroupConfig::new("sdk");
            group.session_timeout = Duration::from_millis(1000);
            group.auto_commit_interval = Duration::from_millis(200);
            GroupConsumer::subscribe(client, consumer_config, group, vec![TOPIC.into()])
                .await
                .unwrap()
        };
        let mut a = join(config.clone()).await;
        let mut b = join(config.clone()).await;
        let deadline = Instant::now() + WAIT_MAX;
        while a.assignment().len() + b.assignment().len() < 2 || a.assignment().is_empty() {
            assert!(Instant::now() < deadline, "never balanced");
            a.poll(Duration::from_millis(50)).await.unwrap();
            b.poll(Duration::from_millis(50)).await.unwrap();
        }
        let old_id = a.member_id().to_string();
        // a goes quiet for twice its session; b keeps polling and takes a's partition.
        let quiet_until = Instant::now() + Duration::from_millis(2000);
        while Instant::now() < quiet_until {
            b.poll(Duration::from_millis(50)).await.unwrap();
        }
        assert_eq!(b.assignment().len(), 2, "b did not take over");
        // a polls again: no error; it rejoins under a new id and gets a partition back.
        let deadline = Instant::now() + WAIT_MAX;
        while a.assignment().is_empty() || b.assignment().len() != 1 {
            assert!(Instant::now() < deadline, "a never rejoined");
            a.poll(Duration::from_millis(50)).await.unwrap();
            b.poll(Duration::from_millis(50)).await.unwrap();
        }
        assert_ne!(a.member_id(), old_id);
        let mine: BTreeMap<_, _> = a.assignment().into_iter().map(|tp| (tp, 1)).collect();
        a.commit_offsets(&mine).await.unwrap();
        a.close().await.unwrap();
        b.close().await.unwrap();
    });
    assert!(broker.stop().success());
}
