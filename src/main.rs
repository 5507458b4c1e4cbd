//! The `strata` binary: parses the command line and runs it.

use clap::Parser;
use strata::commands::{normalize_args, run, Cli};

fn main() {
    let cli = Cli::parse_from(normalize_args(std::env::args()));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("start the tokio runtime");
    let code = runtime.block_on(run(cli));
    // Providers may hold blocking threads; do not wait for them.
    runtime.shutdown_background();
    // Everything is durable and printed by now. End without running exit-time
    // cleanup: with worker threads still inside C libraries (libvirt's
    // thread-local errors), glibc's exit handlers raced them and corrupted
    // the heap (malloc_consolidate aborts, seen in the KVM tests).
    // Output nobody received (a full disk, a closed pipe) is a failure.
    let code = match strata::output::finish() {
        Ok(()) => code,
        Err(failure) => {
            // stderr may be what failed; this is the last try.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "error: {failure}");
            if code == 0 {
                1
            } else {
                code
            }
        }
    };
    // SAFETY: _exit ends the process at once; nothing runs after it.
    unsafe { libc::_exit(code) }
}
