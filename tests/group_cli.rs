//! `quiver group` against a real broker process: offsets reset from outside the group (dry run
//! first, then `--execute`, every target kind), describe with committed offset, log end and lag
//! per partition, list, restart (the offsets come back from `__consumer_offsets`), delete.

mod common;

use std::collections::BTreeMap;

use common::broker::BrokerProcess;
use common::{stderr_of, stdout_of};

const TOPIC: &str = "events";
const GROUP: &str = "audit";

/// `partition` lines of `group describe`: partition → (committed, log end, lag).
fn partitions(broker: &BrokerProcess) -> BTreeMap<i32, (String, i64, i64)> {
    let out = broker.cli(&["group", "describe", GROUP], None);
    assert!(out.status.success(), "{}", stderr_of(&out));
    stdout_of(&out)
        .lines()
        .filter(|l| l.starts_with("partition\t"))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f[1], TOPIC, "{l}");
            (
                f[2].parse().unwrap(),
                (
                    f[4].to_string(),
                    f[6].parse().unwrap(),
                    f[8].parse().unwrap(),
                ),
            )
        })
        .collect()
}

fn reset(broker: &BrokerProcess, how: &[&str], execute: bool) -> String {
    let mut args = vec!["group", "reset-offsets", GROUP, "--topic", TOPIC];
    args.extend_from_slice(how);
    if execute {
        args.push("--execute");
    }
    let out = broker.cli(&args, None);
    assert!(out.status.success(), "{how:?}: {}", stderr_of(&out));
    stdout_of(&out)
}

#[test]
fn reset_describe_restart_and_delete_group_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), 2, &[]);
    let out = broker.cli(&["topic", "create", TOPIC, "--partitions", "3"], None);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let lines: String = (0..60).map(|i| format!("k{i}:v{i}\n")).collect();
    let out = broker.cli(
        &["produce", TOPIC, "--key-separator", ":"],
        Some(lines.as_bytes()),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));

    // No groups yet; describing an unknown group fails clearly.
    let out = broker.cli(&["group", "list"], None);
    assert!(out.status.success());
    assert_eq!(stdout_of(&out), "");
    let out = broker.cli(&["group", "describe", GROUP], None);
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("GroupIdNotFound"),
        "{}",
        stderr_of(&out)
    );

    // A dry run prints the plan and changes nothing.
    let plan = reset(&broker, &["--to-offset", "5"], false);
    assert_eq!(plan.lines().count(), 3, "{plan}");
    assert!(
        plan.lines().all(|l| l.split('\t').nth(2) == Some("-")),
        "{plan}"
    );
    assert!(!broker
        .cli(&["group", "describe", GROUP], None)
        .status
        .success());

    // --to-offset, clamped to each partition's log.
    reset(&broker, &["--to-offset", "5"], true);
    let parts = partitions(&broker);
    assert_eq!(parts.len(), 3);
    let total: i64 = parts.values().map(|(_, end, _)| end).sum();
    assert_eq!(total, 60, "{parts:?}");
    for (p, (committed, end, lag)) in &parts {
        let want = 5.min(*end);
        assert_eq!(committed, &want.to_string(), "partition {p}");
        assert_eq!(*lag, end - want, "partition {p}");
    }
    let out = broker.cli(&["group", "list"], None);
    assert_eq!(stdout_of(&out), format!("{GROUP}\tEmpty\t0\n"));

    // --shift-by moves from the committed offset; --to-earliest, --to-datetime, --to-latest.
    reset(&broker, &["--shift-by", "-2"], true);
    for (committed, end, _) in partitions(&broker).values() {
        assert_eq!(committed, &(5.min(*end) - 2).max(0).to_string());
    }
    reset(&broker, &["--to-latest"], true);
    assert!(partitions(&broker).values().all(|(_, _, lag)| *lag == 0));
    reset(&broker, &["--to-datetime", "1970-01-01T00:00:00Z"], true);
    assert!(partitions(&broker).values().all(|(c, _, _)| c == "0"));
    reset(&broker, &["--to-earliest"], true);
    let before = partitions(&broker);
    assert!(before.values().all(|(c, end, lag)| c == "0" && lag == end));

    // Bad input is refused clearly.
    let out = broker.cli(
        &[
            "group",
            "reset-offsets",
            GROUP,
            "--topic",
            TOPIC,
            "--to-datetime",
            "soon",
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("RFC 3339"), "{}", stderr_of(&out));
    let out = broker.cli(&["group", "reset-offsets", GROUP, "--topic", TOPIC], None);
    assert!(!out.status.success(), "a target is required");

    // The offsets survive a restart.
    let port = broker.port;
    assert!(broker.stop().success());
    let broker = BrokerProcess::start_on(dir.path(), 2, port, &[]);
    assert_eq!(partitions(&broker), before);

    // Delete: gone, and deleting again fails.
    let out = broker.cli(&["group", "delete", GROUP], None);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!broker
        .cli(&["group", "describe", GROUP], None)
        .status
        .success());
    let out = broker.cli(&["group", "delete", GROUP], None);
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("GroupIdNotFound"),
        "{}",
        stderr_of(&out)
    );
    assert!(broker.stop().success());
}
