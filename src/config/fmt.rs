//! Placeholder until the canonical formatter lands.
pub fn format_source(source: &str) -> Result<String, hcl::edit::parser::Error> {
    hcl::edit::parser::parse_body(source).map(|b| b.to_string())
}
