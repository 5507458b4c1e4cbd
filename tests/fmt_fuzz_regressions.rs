//! Regressions found by the fuzz target: formatting is idempotent and never
//! changes what a file means (the parsed tree, spans and layout aside).

use strata::config::fmt::format_source;

fn check_stable(input: &str) {
    let Ok(once) = format_source(input) else { return };
    let twice = format_source(&once).unwrap_or_else(|e| panic!("output does not parse again: {e}\ninput: {input:?}\nonce: {once:?}"));
    assert_eq!(once, twice, "not idempotent for {input:?}");
    let before = hcl::parse(input).unwrap_or_else(|e| panic!("format_source accepted what hcl::parse refuses: {e}"));
    let after = hcl::parse(&once).unwrap_or_else(|e| panic!("output does not parse: {e}\nonce: {once:?}"));
    assert_eq!(before, after, "formatting changed the meaning of {input:?}\nonce: {once:?}");
}

#[test]
fn heredoc_cases_found_by_fuzzing() {
    for input in [
        "t=<<-EOT\n %{foru inl\n}%{endfor}\nEOT",
        "d = <<-EOT\n  ${e}\nabcdef\nEOT\n",
        "a{\nd=<<-EOT\n    ${e}\nl<<-EOT\nEOT\n}",
        "s=<<-E\n \nE",
        "d = <<-EOT\n    a\nxEOT\nEOT\n",
        "l = <<-EOT\n\x0bon\nEOT\n",
    ] {
        check_stable(input);
    }
}

#[test]
fn quoted_template_cases_found_by_fuzzing() {
    let crash = "provider \"testing\" {\n name  = \"web-${coun0sers }${u}% { endfor }\n    %{ if length(local.users) > 1 }matrata {\n  backend \"/ocal\" {\n    path = \"state.jindex%{ else }one%{ endif }\n  EO.index}\"\n  size  = count.inex * 10 .web[*].sensitnamcunt.index * 10 .web[*].name\n}\n";
    check_stable(crash);
    check_stable("a = \"x${b}\\u00e9 %{ if c }\\\"q\\\"%{ endif }\"\n");
}

#[test]
fn escaped_template_markers_stay_escaped() {
    for input in [
        // hcl-edit prints the literal `${a}%${var.b}` back as `"$${a}%${var.b}"`.
        "x = \"$${a}%$${var.b}\"\n",
        "x = \"$$${a}\"\n",
        "x = \"%%%{a}$%%{b}\"\n",
        "x = { \"%$${k}\" = 1, long_key = 2 }\n",
        "x = [\"a\\u00e9\", \"$${x}\"]\n",
        // Found by fuzzing: keys print through the same escaping as literals.
        "y = { \"%$${\0\0$${a}%$${v\0id\0\0}\" = 1, lo= \"$$\0{%%{b}\" }\n",
        "y = {\n  \"${a}%$${b}\" = 1\n  longer_key = 2\n}\n",
    ] {
        check_stable(input);
    }
    // The escapes are kept exactly as written.
    assert_eq!(format_source("x = \"$${a}%$${var.b}\"\n").unwrap(), "x = \"$${a}%$${var.b}\"\n");
}
