//! The operator side of clustering through the real binary: `quiver broker`'s cluster flags
//! (`--node-id`, `--controllers`, `--tls-ca` and the replication and session settings, from
//! flags, environment and TOML) with clear refusals of bad combinations, and `quiver cluster
//! certs`, whose CA-signed certificate a broker serves to clients that trust only the CA.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::broker::{free_udp_ports, BrokerProcess};
use common::{quiver, quiver_bin, stderr_of, stdout_of};

/// How long a broker with bad settings may take to refuse them (it must not start at all).
const REFUSE_TIMEOUT: Duration = Duration::from_secs(30);

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// Runs `quiver broker` on a fresh data dir and loopback port with `args` and `envs`, expecting
/// it to refuse its settings; returns its exit status code and stderr.
fn broker_refusal(args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = free_udp_ports(1);
    let mut child = Command::new(quiver_bin())
        .arg("broker")
        .args(["--data-dir", path(&dir.path().join("data"))])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--shards", "1", "--metrics-listen", "off", "--no-pin"])
        .args(args)
        .env_remove("QUIVER_CONFIG")
        .env_remove("QUIVER_CONTROLLERS")
        .env_remove("QUIVER_NODE_ID")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the quiver binary runs");
    let deadline = Instant::now() + REFUSE_TIMEOUT;
    while child.try_wait().expect("wait for the broker").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("reap the broker");
            panic!(
                "the broker accepted {args:?} {envs:?} and ran: {}",
                stderr_of(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("the broker's output");
    assert!(
        !dir.path().join("data").exists(),
        "settings are refused before the data dir is created"
    );
    (out.status.code(), stderr_of(&out))
}

/// Broker flags, environment variables, and what its error must say.
type Refusal<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);

#[test]
fn broker_refuses_bad_cluster_settings() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let toml = dir.path().join("broker.toml");
    std::fs::write(&toml, "replica_lag_time_max_ms = 1000\n").expect("write the TOML file");
    let toml_bad_controllers = dir.path().join("controllers.toml");
    std::fs::write(&toml_bad_controllers, "controllers = \"0@h\"\n").expect("write TOML");
    let cases: Vec<Refusal> = vec![
        (
            vec!["--controllers", "nonsense"],
            vec![],
            "not ID@HOST:PORT",
        ),
        (
            vec!["--controllers", "0@127.0.0.1:0"],
            vec![],
            "--controllers",
        ),
        (
            vec!["--controllers", "0@127.0.0.1:9,0@127.0.0.1:10"],
            vec![],
            "listed twice",
        ),
        (
            vec![],
            vec![("QUIVER_CONTROLLERS", "x@y:1")],
            "not a broker id",
        ),
        (
            vec!["--config", path(&toml_bad_controllers)],
            vec![],
            "not HOST:PORT",
        ),
        (
            vec!["--node-id=-1"],
            vec![],
            "--node-id must not be negative",
        ),
        (
            vec!["--broker-session-timeout-ms", "5000"],
            vec![],
            "--broker-session-timeout-ms is a cluster setting: it needs --controllers",
        ),
        (
            vec!["--default-replication-factor", "3"],
            vec![],
            "--default-replication-factor is a cluster setting",
        ),
        (
            vec![],
            vec![("QUIVER_BROKER_HEARTBEAT_INTERVAL_MS", "100")],
            "--broker-heartbeat-interval-ms is a cluster setting",
        ),
        (
            vec!["--config", path(&toml)],
            vec![],
            "--replica-lag-time-max-ms is a cluster setting",
        ),
        (
            vec![
                "--controllers",
                "1@127.0.0.1:9000",
                "--broker-heartbeat-interval-ms",
                "9000",
            ],
            vec![],
            "interval (9000 ms) must be at least 1 and below the session timeout (9000 ms)",
        ),
        (
            vec![
                "--controllers",
                "1@127.0.0.1:9000",
                "--broker-session-timeout-ms",
                "1000",
                "--broker-heartbeat-interval-ms",
                "1500",
            ],
            vec![],
            "below the session timeout (1000 ms)",
        ),
        (
            vec![
                "--controllers",
                "1@127.0.0.1:9000",
                "--default-replication-factor",
                "0",
            ],
            vec![],
            "replication factor must be at least 1",
        ),
        (
            vec![
                "--controllers",
                "1@127.0.0.1:9000",
                "--replica-lag-time-max-ms",
                "0",
            ],
            vec![],
            "replica.lag.time.max.ms must be at least 1",
        ),
        (
            // This broker is controller 0, but --controllers puts it on another port.
            vec!["--node-id", "0", "--controllers", "0@127.0.0.1:1"],
            vec![],
            "lists this broker (node id 0) at 127.0.0.1:1, but it listens on port",
        ),
    ];
    for (args, envs, expected) in cases {
        let (code, stderr) = broker_refusal(&args, &envs);
        assert_eq!(code, Some(1), "{args:?} {envs:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?} {envs:?}: expected {expected:?} in: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn certs_are_written_once_with_private_keys() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let tls = dir.path().join("tls");
    let out = quiver(&["cluster", "certs", "--dir", path(&tls)]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains("127.0.0.1,localhost"),
        "{}",
        stdout_of(&out)
    );
    let mode = |name: &str| {
        std::fs::metadata(tls.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("ca-key.pem"), 0o600);
    assert_eq!(mode("broker-key.pem"), 0o600);
    let broker_pem = std::fs::read_to_string(tls.join("broker.pem")).expect("broker.pem");
    assert_eq!(
        broker_pem.matches("BEGIN CERTIFICATE").count(),
        2,
        "the broker certificate, then the CA's"
    );
    let ca_pem = std::fs::read_to_string(tls.join("ca.pem")).expect("ca.pem");
    assert!(broker_pem.ends_with(&ca_pem), "broker.pem ends with the CA");

    // A second run refuses, naming the files, and changes nothing.
    let again = quiver(&["cluster", "certs", "--dir", path(&tls)]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr_of(&again).contains("--force"),
        "{}",
        stderr_of(&again)
    );
    assert!(
        stderr_of(&again).contains("ca.pem"),
        "{}",
        stderr_of(&again)
    );
    assert_eq!(
        std::fs::read_to_string(tls.join("ca.pem")).expect("ca.pem"),
        ca_pem
    );
    // Even one existing file is enough to refuse.
    let partial = dir.path().join("partial");
    std::fs::create_dir(&partial).expect("mkdir");
    std::fs::write(partial.join("broker-key.pem"), "mine").expect("write");
    let refused = quiver(&["cluster", "certs", "--dir", path(&partial)]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr_of(&refused).contains("broker-key.pem"));
    assert!(!partial.join("ca.pem").exists(), "nothing written");

    // --force replaces them all with a new CA.
    let forced = quiver(&["cluster", "certs", "--dir", path(&tls), "--force"]);
    assert!(forced.status.success(), "{}", stderr_of(&forced));
    assert_ne!(
        std::fs::read_to_string(tls.join("ca.pem")).expect("ca.pem"),
        ca_pem
    );
    assert_eq!(mode("broker-key.pem"), 0o600);

    let empty = quiver(&[
        "cluster",
        "certs",
        "--dir",
        path(&dir.path().join("x")),
        "--hosts",
        " , ",
    ]);
    assert_eq!(empty.status.code(), Some(1));
    assert!(
        stderr_of(&empty).contains("--hosts"),
        "{}",
        stderr_of(&empty)
    );
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({}): {}",
        out.status,
        stderr_of(out)
    );
    stdout_of(out)
}

#[test]
fn cluster_broker_serves_clients_that_trust_only_the_ca() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let tls = dir.path().join("tls");
    ok(&quiver(&["cluster", "certs", "--dir", path(&tls)]));
    let (cert, key, ca) = (
        tls.join("broker.pem"),
        tls.join("broker-key.pem"),
        tls.join("ca.pem"),
    );
    let broker = BrokerProcess::start_with(&dir.path().join("data"), 2, |port| {
        vec![
            "--tls-cert".into(),
            path(&cert).into(),
            "--tls-key".into(),
            path(&key).into(),
            "--tls-ca".into(),
            path(&ca).into(),
            "--node-id".into(),
            "0".into(),
            "--controllers".into(),
            format!("0@127.0.0.1:{port}"),
            "--broker-heartbeat-interval-ms".into(),
            "500".into(),
        ]
    })
    .trusting(&ca);
    assert!(
        broker.stderr().contains(&format!(
            "cluster mode: node id 0 (a controller), controllers 0@127.0.0.1:{}",
            broker.port
        )),
        "{}",
        broker.stderr()
    );
    assert!(
        !broker.data_dir.join("tls").exists(),
        "no self-signed certificate when --tls-cert is given"
    );

    ok(&broker.cli(&["topic", "create", "t", "--partitions", "2"], None));
    ok(&broker.cli(
        &["produce", "t", "--partition", "1"],
        Some(b"one\ntwo\n".as_slice()),
    ));
    let consumed = ok(&broker.cli(
        &[
            "consume",
            "t",
            "--partition",
            "1",
            "--from-beginning",
            "--max-messages",
            "2",
        ],
        None,
    ));
    assert_eq!(consumed, "one\ntwo\n");

    // A client trusting another CA is refused; one trusting the broker's chain file is not.
    let other = dir.path().join("other");
    ok(&quiver(&["cluster", "certs", "--dir", path(&other)]));
    for (trust, works) in [(other.join("ca.pem"), false), (cert.clone(), true)] {
        let out = Command::new(quiver_bin())
            .args([
                "topic",
                "list",
                "--bootstrap",
                &broker.bootstrap(),
                "--tls-ca",
            ])
            .arg(&trust)
            .output()
            .expect("quiver runs");
        assert_eq!(
            out.status.success(),
            works,
            "{trust:?}: {}",
            stderr_of(&out)
        );
    }
    assert!(broker.stop().success());
}

#[test]
fn cluster_settings_come_from_toml_and_default_trust_is_the_own_certificate() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("broker.toml");
    let broker = BrokerProcess::start_with(&dir.path().join("data"), 1, |port| {
        std::fs::write(
            &config,
            format!(
                "node_id = 3\ncontrollers = \"3@127.0.0.1:{port}\"\n\
                 replica_lag_time_max_ms = 10000\nbroker_session_timeout_ms = 3000\n\
                 broker_heartbeat_interval_ms = 1000\ndefault_replication_factor = 1\n"
            ),
        )
        .expect("write the TOML file");
        vec!["--config".into(), path(&config).into()]
    });
    let stderr = broker.stderr();
    assert!(
        stderr.contains(&format!(
            "cluster mode: node id 3 (a controller), controllers 3@127.0.0.1:{}",
            broker.port
        )),
        "{stderr}"
    );
    assert!(stderr.contains("no --tls-ca"), "{stderr}");
    // A one-voter quorum of itself: the broker leads its partitions under its node id.
    ok(&broker.cli(&["topic", "create", "t"], None));
    let described = ok(&broker.cli(&["topic", "describe", "t"], None));
    assert!(described.contains("\tleader\t3\t"), "{described}");
    let status = ok(&broker.cli(&["cluster", "status"], None));
    assert!(status.contains("broker\t3\t"), "{status}");
    assert!(status.contains("\tlive\tcontroller"), "{status}");
    assert!(status.contains("\tshards=1\t"), "{status}");
    assert!(status.contains("controller 3 "), "{status}");
    assert!(status.contains("under-replicated 0 offline 0"), "{status}");
    assert!(broker.stop().success());
}
