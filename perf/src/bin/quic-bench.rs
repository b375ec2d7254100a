//! `quic-bench`: QUIC one-way throughput over loopback, quinn on Quiver's glommio adapter
//! against quinn on tokio. See `quiver_perf::quic`.
//!
//! Prints every run on stderr as it finishes, then the table on stdout, and ends with one line:
//! `glommio_mib_s=.. tokio_mib_s=.. ratio=..` (medians; ratio = glommio / tokio).

use std::process::ExitCode;

use clap::Parser;
use quiver_perf::quic::{run, Options};

fn main() -> ExitCode {
    let options = Options::parse();
    let report = match run(&options) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("quic-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report.table());
    match report.save_json(&options.json) {
        Ok(()) => println!("\nJSON report: {}", options.json.display()),
        Err(e) => {
            eprintln!("quic-bench: cannot write the JSON report: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!("{}", report.last_line());
    ExitCode::SUCCESS
}
