//! `strata console`.

use super::*;

pub(super) fn console(shell: &Shell, ws: &Workspace, vars: &[VarArg]) -> ops::OpResult<i32> {
    let console = ops::Console::open(ws, vars)?;
    let interactive = std::io::stdin().is_terminal();
    let mut failed = false;
    loop {
        if interactive {
            shell.raw("> ");
        }
        let mut line = String::new();
        if std::io::stdin().read_line(&mut line).map_err(|e| format!("reading input: {e}"))? == 0 {
            break;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "exit" {
            break;
        }
        match console.eval(line) {
            // to_hcl redacts secrets and unknowns wherever they sit.
            Ok(v) => shell.out(&v.to_hcl()),
            Err(e) => {
                failed = true;
                shell.error(&e);
            }
        }
    }
    Ok(if failed && !interactive { 1 } else { 0 })
}
