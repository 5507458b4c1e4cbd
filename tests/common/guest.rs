//! The tiny bootable guest of the KVM tests (built by `scripts/tiny-guest.sh`
//! from Debian packages) and its serial console log.
//!
//! Include with `#[path = "common/guest.rs"] mod guest;`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The directory holding the guest's kernel and initramfs, built once and
/// cached by the script.
pub fn tiny_guest() -> PathBuf {
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/tiny-guest.sh"))
        .output()
        .expect("run scripts/tiny-guest.sh");
    assert!(out.status.success(), "building the tiny guest failed: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().lines().last().unwrap_or_default())
}

/// What the guest printed so far on its serial console (`DIR/console.log`).
pub fn console(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("console.log")).unwrap_or_default()
}

/// Waits until the console shows `marker`, at most `seconds`; returns the log.
pub fn wait_for(dir: &Path, marker: &str, seconds: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let log = console(dir);
        if log.contains(marker) || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
