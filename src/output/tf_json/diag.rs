//! Diagnostics in Terraform's JSON shape, for `validate -json` and the
//! `diagnostic` messages of the machine-readable UI: `severity`,
//! `summary`, `detail`, `range` (file, start and end as line, column and
//! byte) and `snippet` (the source line with the highlighted part).

use crate::config::{Diagnostic, Diagnostics, Severity, Sources};
use serde_json::{json, Value as Json};

/// The `validate -json` document.
pub fn validate_document(sources: Option<&Sources>, diags: &Diagnostics) -> Json {
    let errors = diags.errors();
    let warnings = diags.iter().filter(|d| d.severity == Severity::Warning).count();
    json!({
        "format_version": super::STATE_FORMAT_VERSION,
        "valid": errors == 0,
        "error_count": errors,
        "warning_count": warnings,
        "diagnostics": diags.iter().map(|d| diagnostic(sources, d)).collect::<Vec<_>>(),
    })
}

/// One diagnostic. Its `detail` is the help text, or the label Strata
/// prints under the snippet when there is no help.
pub fn diagnostic(sources: Option<&Sources>, d: &Diagnostic) -> Json {
    let mut out = json!({
        "severity": if d.is_error() { "error" } else { "warning" },
        "summary": d.message,
        "detail": d.help.clone().unwrap_or_else(|| d.label.clone()),
    });
    if let (Some(sources), Some(span)) = (sources, &d.span) {
        let text = sources.text(span.file);
        let start = floor_char_boundary(text, span.range.start);
        let end = floor_char_boundary(text, span.range.end.max(start));
        let position = |offset: usize| {
            let (line, column) = sources.line_col(span.file, offset);
            json!({"line": line, "column": column, "byte": offset})
        };
        out["range"] = json!({
            "filename": sources.path(span.file).display().to_string(),
            "start": position(start),
            "end": position(end),
        });
        // The snippet is the line the range starts on; the highlight offsets
        // are bytes into that line, clipped to it as Terraform clips them.
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let code = &text[line_start..line_end];
        out["snippet"] = json!({
            "context": Json::Null,
            "code": code,
            "start_line": sources.line_col(span.file, start).0,
            "highlight_start_offset": start - line_start,
            "highlight_end_offset": end.min(line_end) - line_start,
            "values": [],
        });
    }
    out
}

/// `offset` within `text`, moved back to the start of its character.
fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Span;
    use std::path::PathBuf;

    #[test]
    fn range_and_snippet_point_at_the_span() {
        let mut sources = Sources::default();
        let text = "resource \"strata_data\" \"a\" {\n  input = var.nope\n}\n";
        let file = sources.add(PathBuf::from("main.strata.hcl"), text.into());
        let start = text.find("var.nope").unwrap();
        let d = Diagnostic::error("undeclared", Span::new(file, Some(start..start + 8)), "here");
        let j = diagnostic(Some(&sources), &d);
        assert_eq!(j["range"]["filename"], "main.strata.hcl");
        assert_eq!(j["range"]["start"], json!({"line": 2, "column": 11, "byte": 39}));
        assert_eq!(j["range"]["end"], json!({"line": 2, "column": 19, "byte": 47}));
        assert_eq!(j["snippet"]["code"], "  input = var.nope");
        assert_eq!(j["snippet"]["highlight_start_offset"], 10);
        assert_eq!(j["snippet"]["highlight_end_offset"], 18);
        let doc = validate_document(Some(&sources), &Diagnostics(vec![d]));
        assert_eq!(doc["valid"], false);
        assert_eq!(doc["error_count"], 1);
        assert_eq!(doc["warning_count"], 0);
    }
}
