//! `strata output`.

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
                shell.out(&v.to_redacted_json().to_string());
            } else {
                shell.out(&output::render_value(v));
            }
        }
        None if json => {
            let all: serde_json::Map<_, _> = snap
                .outputs
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::json!({"sensitive": v.is_sensitive(), "value": v.to_redacted_json()})))
                .collect();
            shell.out(&serde_json::Value::Object(all).to_string());
        }
        None => {
            for (k, v) in &snap.outputs {
                shell.out(&format!("{k} = {}", output::render_value(v)));
            }
        }
    }
    Ok(0)
}
