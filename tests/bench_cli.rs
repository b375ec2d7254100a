//! `quiver bench` end to end: each implemented workload runs briefly against an `--embedded`
//! broker (a child `quiver broker` on free ports, temporary data dir) and its JSON report is
//! checked for exact record counts (fixed `--messages`, no warm-up), the documented shape and
//! no errors; the consumer-group workloads share one topic through one group; `compare` and `--plot`
//! (SVG and PNG) work on the reports written.

mod common;

use std::path::Path;

use common::{quiver, stderr_of, stdout_of};
use serde_json::Value;

/// Runs `quiver bench <workload> --embedded <args>`, requires success, returns the report.
fn bench(dir: &Path, workload: &str, args: &[&str]) -> Value {
    let json = dir.join(format!("{workload}.json"));
    let json_arg = json.to_str().expect("utf-8 path");
    let embedded_dir = dir.to_str().expect("utf-8 path");
    let mut all = vec![
        "bench",
        workload,
        "--embedded",
        "--embedded-shards",
        "2",
        "--embedded-dir",
        embedded_dir,
        "--warmup",
        "0",
        "--no-progress",
        "--json",
        json_arg,
    ];
    all.extend_from_slice(args);
    let out = quiver(&all);
    assert!(
        out.status.success(),
        "quiver {all:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout_of(&out),
        stderr_of(&out)
    );
    let table = stdout_of(&out);
    assert!(table.contains("records/s"), "{table}");
    assert!(table.contains(workload), "{table}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("report"))
        .expect("the report is JSON");
    for key in ["params", "machine", "results", "series"] {
        assert!(report.get(key).is_some(), "{workload}: no {key}");
    }
    for key in [
        "cores",
        "memory_bytes",
        "kernel",
        "file_system",
        "git_revision",
    ] {
        assert!(report["machine"].get(key).is_some(), "machine.{key}");
    }
    assert_eq!(report["params"]["workload"], workload);
    assert_eq!(report["results"]["errors"], 0, "{report:#}");
    let results = &report["results"];
    assert!(
        results["records_per_sec"].as_f64().unwrap() > 0.0,
        "{report:#}"
    );
    assert!(results["mb_per_sec"].as_f64().unwrap() > 0.0, "{report:#}");
    let latency = &results["latency_ms"];
    for key in ["p50", "p90", "p99", "p999", "p9999", "max"] {
        assert!(
            latency[key].as_f64().unwrap() > 0.0,
            "{workload} latency {key}"
        );
    }
    assert!(latency["p50"].as_f64() <= latency["max"].as_f64());
    assert!(!report["series"].as_array().unwrap().is_empty());
    // The data dir was removed with the broker.
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("quiver-bench-"))
        .collect();
    assert!(left.is_empty(), "temporary data dirs left: {left:?}");
    report
}

fn records(report: &Value, side: &str) -> u64 {
    report["results"][side]["records"]
        .as_u64()
        .unwrap_or_else(|| panic!("no results.{side}.records in {report:#}"))
}

#[test]
fn every_implemented_workload_runs_embedded_and_reports_exact_counts() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let d = dir.path();

    let png = d.join("pinned-producer.PNG");
    let pp = bench(
        d,
        "pinned-producer",
        &[
            "--producers",
            "2",
            "--messages",
            "20000",
            "--plot",
            png.to_str().unwrap(),
        ],
    );
    assert_eq!(records(&pp, "produce"), 20_000);
    assert_eq!(pp["results"]["headline"], "produce");
    assert_eq!(pp["results"]["latency_kind"], "produce-ack");
    assert!(pp["results"]["consume"].is_null());
    assert!(pp["results"]["loop_mode"]
        .as_str()
        .unwrap()
        .starts_with("closed-loop"));
    // 1000 records of 1024 B each count 1024 payload bytes, nothing of the framing.
    assert_eq!(
        pp["results"]["produce"]["bytes"].as_u64(),
        Some(20_000 * 1024)
    );

    // A PNG (by the extension, any case) of the 1800-pixel-wide chart.
    let png = std::fs::read(&png).expect("the PNG plot was written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&png[12..16], b"IHDR");
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!((be(16), be(20)), (1800, 1320));
    let pc = bench(d, "pinned-consumer", &["--messages", "20000"]);
    assert_eq!(records(&pc, "consume"), 20_000);
    assert_eq!(pc["results"]["latency_kind"], "fetch");

    let both = bench(
        d,
        "pinned-producer-and-consumer",
        &["--messages", "20000", "--message-size", "100..300"],
    );
    assert_eq!(records(&both, "produce"), 20_000);
    assert_eq!(records(&both, "consume"), 20_000);
    assert_eq!(
        both["results"]["produce"]["bytes"],
        both["results"]["consume"]["bytes"]
    );
    assert_eq!(both["results"]["latency_kind"], "end-to-end");

    let balanced = bench(
        d,
        "balanced-producer",
        &[
            "--keyed",
            "--producers",
            "3",
            "--partitions",
            "4",
            "--messages",
            "20000",
            "--messages-per-batch",
            "100",
        ],
    );
    assert_eq!(records(&balanced, "produce"), 20_000);

    let plot = d.join("e2e.svg");
    let e2e = bench(
        d,
        "end-to-end",
        &[
            "--rate",
            "4000",
            "--messages",
            "4000",
            "--plot",
            plot.to_str().unwrap(),
        ],
    );
    assert_eq!(records(&e2e, "produce"), 4000);
    assert_eq!(records(&e2e, "consume"), 4000);
    assert!(e2e["results"]["loop_mode"]
        .as_str()
        .unwrap()
        .starts_with("open-loop"));
    let svg = std::fs::read_to_string(&plot).expect("the plot was written");
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{svg}"
    );

    let out = quiver(&[
        "bench",
        "compare",
        d.join("pinned-producer.json").to_str().unwrap(),
        d.join("balanced-producer.json").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = stdout_of(&out);
    assert!(text.contains("B/A"), "{text}");
    assert!(text.contains("produce-ack p99 ms"), "{text}");
    assert!(text.contains("different workloads"), "{text}");
}

#[test]
fn consumer_group_workloads_share_a_topic_through_one_group() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let d = dir.path();
    // Three members of one group share a filled 6-partition topic: together they read it
    // exactly (the count is the group's total, not a per-member share).
    let group = bench(
        d,
        "balanced-consumer-group",
        &[
            "--consumers",
            "3",
            "--partitions",
            "6",
            "--messages",
            "20000",
        ],
    );
    assert_eq!(records(&group, "consume"), 20_000);
    assert!(group["results"]["produce"].is_null());
    // Producers and a group of consumers on one topic: everything produced is consumed.
    let both = bench(
        d,
        "balanced-producer-and-consumer-group",
        &[
            "--producers",
            "2",
            "--consumers",
            "2",
            "--partitions",
            "4",
            "--messages",
            "20000",
        ],
    );
    assert_eq!(records(&both, "produce"), 20_000);
    assert_eq!(records(&both, "consume"), 20_000);
    assert_eq!(both["results"]["latency_kind"], "end-to-end");
}

#[test]
fn bad_parameters_are_refused_before_anything_starts() {
    // End-to-end values carry an 8-byte send stamp.
    let out = quiver(&[
        "bench",
        "end-to-end",
        "--embedded",
        "--message-size",
        "4",
        "--no-progress",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr_of(&out).contains("--message-size must be >= 8"));
    let out = quiver(&["bench", "pinned-producer", "--plot", "x.gif"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr_of(&out).contains("*.svg or *.png"));
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.json");
    std::fs::write(&bogus, "{\"params\": 1}").unwrap();
    let out = quiver(&[
        "bench",
        "compare",
        bogus.to_str().unwrap(),
        bogus.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr_of(&out).contains("not a quiver bench report"));
}
