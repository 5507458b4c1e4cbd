//! The `strata` binary: parses the command line and runs it.

use clap::Parser;
use strata::commands::{normalize_args, run, Cli};

fn main() {
    let cli = Cli::parse_from(normalize_args(std::env::args()));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("start the tokio runtime");
    let code = runtime.block_on(run(cli));
    // Providers may hold blocking threads; do not wait for them.
    runtime.shutdown_background();
    std::process::exit(code);
}
