//! `strata validate`: every configuration problem at once.

use super::*;

pub(super) fn validate(shell: &Shell, ws: &Workspace, json: bool) -> ops::OpResult<i32> {
    match ops::validate(ws) {
        Ok(_) => {
            if json {
                shell.out(&serde_json::json!({"valid": true, "error_count": 0}).to_string());
            } else {
                shell.out("The configuration is valid.");
            }
            Ok(0)
        }
        Err(OpError::Config(sources, diags)) if json => {
            let list: Vec<_> = diags
                .iter()
                .map(|d| serde_json::json!({"severity": if d.is_error() {"error"} else {"warning"}, "message": d.message, "location": d.location(&sources)}))
                .collect();
            shell.out(&serde_json::json!({"valid": false, "error_count": diags.errors(), "diagnostics": list}).to_string());
            Ok(1)
        }
        Err(e) => Err(e),
    }
}
