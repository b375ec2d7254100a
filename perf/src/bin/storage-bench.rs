//! `storage-bench`: the partition log's append and cold read throughput against fio.
//! See `quiver_perf::storage`; `hack/bench-storage` installs fio, builds and runs it.
//!
//! Prints progress on stderr, then the table and the fio command lines on stdout, and ends
//! with one line: `append_mib_s=.. fio_write_mib_s=.. append_ratio=.. read_mib_s=..
//! fio_read_mib_s=.. read_ratio=..` for the 1 MiB batch, flush=never case.

use std::process::ExitCode;

use clap::Parser;
use quiver_perf::storage::{clean_up, run, Options};

fn main() -> ExitCode {
    let options = Options::parse();
    let result = run(&options);
    clean_up(&options.dir);
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("storage-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report.table());
    match report.save_json(&options.json) {
        Ok(()) => println!("\nJSON report: {}", options.json.display()),
        Err(e) => {
            eprintln!("storage-bench: cannot write the JSON report: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!("{}", report.last_line());
    ExitCode::SUCCESS
}
