//! `strata fmt`: rewrite files in the canonical layout.

use super::*;

pub(super) fn fmt(shell: &Shell, dir: &std::path::Path, check: bool, diff: bool, paths: Vec<PathBuf>) -> ops::OpResult<i32> {
    let mut files = Vec::new();
    for p in if paths.is_empty() { vec![dir.to_owned()] } else { paths } {
        if p.is_dir() {
            files.extend(crate::config::config_files(&p, crate::config::CONFIG_SUFFIX).map_err(|e| format!("{}: {e}", p.display()))?);
            files.extend(crate::config::config_files(&p, crate::config::VARS_SUFFIX).map_err(|e| format!("{}: {e}", p.display()))?);
        } else {
            files.push(p);
        }
    }
    let mut unformatted = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let formatted = crate::config::fmt::format_source(&text).map_err(|e| format!("{}: {e}", f.display()))?;
        if formatted == text {
            continue;
        }
        unformatted += 1;
        shell.out(&f.display().to_string());
        if diff {
            let d = similar::TextDiff::from_lines(&text, &formatted);
            shell.out(&d.unified_diff().header(&f.display().to_string(), &f.display().to_string()).to_string());
        }
        if !check {
            std::fs::write(&f, formatted).map_err(|e| format!("{}: {e}", f.display()))?;
        }
    }
    Ok(if check && unformatted > 0 { 3 } else { 0 })
}
