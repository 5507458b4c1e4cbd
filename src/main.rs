//! The `strata` binary: parses the command line and runs it.

use strata::commands::{parse, run};

/// mimalloc instead of glibc malloc: the engine allocates and frees millions
/// of small strings and maps per large plan, where glibc spent a quarter of
/// the time (consolidating and unlinking free chunks).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    strata::output::log::init();
    let cli = match parse(std::env::args()) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version are answers; anything else is a usage error,
            // which exits 1 as Terraform's do (2 means "changes present"
            // under -detailed-exitcode). A closed pipe changes neither.
            let _ = e.print();
            let code = if e.use_stderr() { 1 } else { 0 };
            // SAFETY: _exit ends the process at once; nothing runs after it.
            unsafe { libc::_exit(code) }
        }
    };
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
        // The reader went away (`strata ... | head -1`): nobody is left to
        // tell; end quietly with the shell's code for SIGPIPE.
        Err(failure) if failure.broken_pipe => 128 + libc::SIGPIPE,
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
