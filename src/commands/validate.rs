//! `strata validate`: every configuration problem at once; `-json` in
//! Terraform's `validate -json` shape.

use super::*;

pub(super) fn validate(shell: &Shell, ws: &Workspace, json: bool) -> ops::OpResult<i32> {
    match ops::validate(ws) {
        Ok(warnings) => {
            if json {
                // Warnings point into the files: load their text for ranges.
                let sources = (!warnings.0.is_empty()).then(|| crate::config::Config::load(&ws.dir).0.sources);
                shell.out(&output::tf_json::validate_document(sources.as_ref(), &warnings).to_string());
            } else {
                shell.out("The configuration is valid.");
            }
            Ok(0)
        }
        Err(OpError::Config(sources, diags)) if json => {
            shell.out(&output::tf_json::validate_document(Some(&sources), &diags).to_string());
            Ok(1)
        }
        Err(e) => Err(e),
    }
}
