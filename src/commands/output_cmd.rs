//! `strata output`; `-json` as Terraform prints it (`sensitive`, `type`,
//! `value`), except that a sensitive value is never printed.

use super::*;

pub(super) fn output_cmd(shell: &Shell, ws: &Workspace, name: Option<String>, json: bool, raw: bool) -> ops::OpResult<i32> {
    let snap = ws.store.snapshot()?;
    match name {
        Some(name) => {
            let v = snap.outputs.get(&name).ok_or_else(|| format!("no output named {name:?}"))?;
            if raw {
                // -raw prints the value itself, as Terraform does, even if sensitive.
                let s = v.unmarked().to_template_string().ok_or_else(|| "-raw works only with string, number and bool outputs".to_owned())?;
                shell.raw(&s);
            } else if json {
                // Terraform prints the secret here; Strata prints secrets
                // only when asked by -raw.
                if v.contains_sensitive() {
                    return Err(OpError::Message(format!("output {name:?} is sensitive: -json does not print it; read it with -raw")));
                }
                shell.out(&output::tf_json::values::known_or_null(v).to_string());
            } else {
                shell.out(&output::render_value(v));
            }
        }
        None if json => shell.out(&output::tf_json::outputs_document(&snap.outputs).to_string()),
        None => {
            for (k, v) in &snap.outputs {
                shell.out(&format!("{k} = {}", output::render_value(v)));
            }
        }
    }
    Ok(0)
}
