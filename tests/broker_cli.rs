//! The `quiver` CLI against a real broker: settings from a TOML file and the environment, topic
//! administration (create, list, describe, alter, delete), produce/consume options, and clear
//! failures (unknown topic, untrusted certificate) with non-zero exit codes.

mod common;

use std::process::{Command, Output};

use common::broker::BrokerProcess;
use common::quiver_bin;

fn cli(broker: &BrokerProcess, args: &[&str], stdin: Option<&str>) -> Output {
    broker.cli(args, stdin.map(str::as_bytes))
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn topic_admin_produce_and_consume_options() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    std::fs::write(&config, "default_partitions = 3\n").unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        2,
        &["--config", config.to_str().unwrap()],
    );

    // The TOML file's default partition count applies.
    ok(&cli(&broker, &["topic", "create", "orders"], None));
    ok(&cli(
        &broker,
        &[
            "topic",
            "create",
            "audit",
            "--partitions",
            "1",
            "--config",
            "flush=always",
        ],
        None,
    ));
    let list = ok(&cli(&broker, &["topic", "list"], None));
    assert_eq!(list, "audit\t1\norders\t3\n");

    let created = cli(&broker, &["topic", "create", "orders"], None);
    assert!(!created.status.success(), "a second create must fail");
    assert!(
        String::from_utf8_lossy(&created.stderr).contains("TopicAlreadyExists"),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    // Alter, then describe shows the new value; reset brings the default back.
    ok(&cli(
        &broker,
        &["topic", "alter", "orders", "--config", "retention.ms=60000"],
        None,
    ));
    let described = ok(&cli(&broker, &["topic", "describe", "orders"], None));
    assert!(
        described.contains("config\tretention.ms\t60000\n"),
        "{described}"
    );
    assert_eq!(described.matches("\npartition\t").count(), 3, "{described}");
    ok(&cli(
        &broker,
        &[
            "topic",
            "alter",
            "orders",
            "--delete-config",
            "retention.ms",
        ],
        None,
    ));
    let described = ok(&cli(&broker, &["topic", "describe", "orders"], None));
    assert!(
        described.contains("config\tretention.ms\t604800000\n"),
        "{described}"
    );
    let bad = cli(
        &broker,
        &["topic", "alter", "orders", "--config", "flush=sometimes"],
        None,
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("flush"));

    // Produce to one partition with keys; consume it with offsets and keys printed.
    let before = quiver_engine::rt::now_ms();
    ok(&cli(
        &broker,
        &[
            "produce",
            "orders",
            "--partition",
            "2",
            "--key-separator",
            "=",
            "--acks",
            "1",
        ],
        Some("a=1\nb=2\nno-key\n"),
    ));
    let consumed = ok(&cli(
        &broker,
        &[
            "consume",
            "orders",
            "--partition",
            "2",
            "--from-beginning",
            "--print-offset",
            "--print-key",
            "--max-messages",
            "3",
        ],
        None,
    ));
    assert_eq!(consumed, "2\t0\ta\t1\n2\t1\tb\t2\n2\t2\t\tno-key\n");
    let from_offset = ok(&cli(
        &broker,
        &[
            "consume",
            "orders",
            "--partition",
            "2",
            "--offset",
            "1",
            "--max-messages",
            "2",
        ],
        None,
    ));
    assert_eq!(from_offset, "2\nno-key\n");
    let from_time = ok(&cli(
        &broker,
        &[
            "consume",
            "orders",
            "--from-timestamp",
            &before.to_string(),
            "--idle-timeout-ms",
            "1500",
        ],
        None,
    ));
    assert_eq!(from_time, "1\n2\nno-key\n");
    let later = ok(&cli(
        &broker,
        &[
            "consume",
            "orders",
            "--from-timestamp",
            &(before + 3_600_000).to_string(),
            "--idle-timeout-ms",
            "500",
        ],
        None,
    ));
    assert_eq!(later, "", "nothing is newer than an hour from now");

    // Delete, and errors for what no longer exists.
    ok(&cli(&broker, &["topic", "delete", "audit"], None));
    assert_eq!(ok(&cli(&broker, &["topic", "list"], None)), "orders\t3\n");
    let missing = cli(&broker, &["produce", "audit"], Some("x\n"));
    assert!(
        !missing.status.success(),
        "producing to a deleted topic must fail"
    );
    let missing = cli(&broker, &["topic", "describe", "audit"], None);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("UnknownTopicOrPartition"));

    // A client that does not trust the broker's certificate fails clearly.
    let other = tempfile::tempdir().unwrap();
    let (_, _) = quiver_transport::quic::Identity::load_or_create_self_signed(
        &other.path().join("tls"),
        &[],
    )
    .unwrap();
    let untrusted = Command::new(quiver_bin())
        .args([
            "topic",
            "list",
            "--bootstrap",
            &broker.bootstrap(),
            "--tls-ca",
        ])
        .arg(other.path().join("tls/cert.pem"))
        .output()
        .unwrap();
    assert!(!untrusted.status.success(), "a wrong CA must not connect");
    assert!(broker.stop().success());
}
