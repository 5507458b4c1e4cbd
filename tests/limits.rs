//! Bad input and resource limits, end to end: generated configurations that
//! once overflowed the stack, took minutes, or lost their place, and output
//! that cannot be written.

mod common;

use common::*;
use std::process::Stdio;

#[test]
fn a_long_chain_of_locals_evaluates_without_recursing_per_link() {
    let dir = scratch();
    let mut text = String::from("locals {\n  l0 = 1\n");
    for i in 1..3000 {
        text.push_str(&format!("  l{i} = local.l{} + 1\n", i - 1));
    }
    text.push_str("}\noutput \"last\" {\n  value = local.l2999\n}\n");
    write(dir.path(), "main.strata.hcl", &text);
    let out = expect(dir.path(), &["plan", "-no-color"], 0);
    assert!(stdout(&out).contains("+ last = 3000"), "{}", stdout(&out));
}

#[test]
fn an_error_at_the_end_of_a_chain_of_locals_is_named_once() {
    let dir = scratch();
    let mut text = String::from("locals {\n  l0 = 1 + \"x\"\n");
    for i in 1..3000 {
        text.push_str(&format!("  l{i} = local.l{} + 1\n", i - 1));
    }
    text.push_str("}\noutput \"last\" {\n  value = local.l2999\n}\n");
    write(dir.path(), "main.strata.hcl", &text);
    let out = expect(dir.path(), &["plan", "-no-color"], 1);
    let err = stderr(&out);
    assert!(err.contains("in local.l0:"), "{err}");
    assert!(!err.contains("in local.l1:"), "the error is nested once per link: {}", &err[..err.len().min(2000)]);
}

#[test]
fn many_undeclared_names_in_a_variable_file_are_counted_not_each_rendered() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", "output \"n\" {\n  value = 1\n}\n");
    let names: String = (0..40_000).map(|i| format!("v{i} = {i}\n")).collect();
    write(dir.path(), "x.auto.stratavars.hcl", &names);
    let out = expect(dir.path(), &["plan", "-no-color"], 0);
    let err = stderr(&out);
    assert_eq!(err.matches("value for undeclared variable").count(), 3, "{err}");
    assert!(err.contains("39997 more values for undeclared variables in x.auto.stratavars.hcl"), "{err}");
}

#[test]
fn diagnostics_deep_in_a_large_file_show_their_own_lines() {
    // Each report used to rescan and copy the whole file: quadratic in the
    // number of diagnostics. Now each reads the lines around its span.
    let dir = scratch();
    let mut text = String::new();
    for i in 0..20_000 {
        text.push_str(&format!("output \"o{i}\" {{\n  value = {i}\n}}\n"));
    }
    text.push_str("output \"bad\" {\n  value = local.nope\n}\n");
    write(dir.path(), "main.strata.hcl", &text);
    let out = expect(dir.path(), &["validate", "-no-color"], 1);
    let err = stderr(&out);
    assert!(err.contains("(at main.strata.hcl:60002:11)"), "{err}");
    assert!(err.contains("60002 │   value = local.nope"), "{err}");
    assert!(err.contains("60001 │ output \"bad\" {"), "{err}");
}

#[test]
fn invalid_utf8_is_reported_at_its_line_and_column() {
    let dir = scratch();
    std::fs::write(dir.path().join("main.strata.hcl"), b"output \"o\" {\n  value = \"caf\xe9\"\n}\n").unwrap();
    let out = expect(dir.path(), &["validate", "-no-color"], 1);
    let err = stderr(&out);
    assert!(err.contains("invalid UTF-8: byte 0xe9 is not valid here (at main.strata.hcl:2:15)"), "{err}");
    assert!(err.contains("2 │   value = \"caf"), "{err}");
}

#[test]
fn invalid_utf8_in_a_variable_file_is_reported_at_its_place() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", "variable \"x\" {\n  type = string\n}\n");
    std::fs::write(dir.path().join("x.auto.stratavars.hcl"), b"x = \"\xff\"\n").unwrap();
    let out = expect(dir.path(), &["plan", "-no-color"], 1);
    assert!(stderr(&out).contains("invalid UTF-8: byte 0xff is not valid here (at x.auto.stratavars.hcl:1:6)"), "{}", stderr(&out));
}

/// Runs strata with stdout on /dev/full.
fn with_stdout_full(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full exists");
    command(dir, args).stdout(Stdio::from(full)).stderr(Stdio::piped()).output().expect("run strata")
}

#[test]
fn output_that_cannot_be_written_fails_the_command() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", "resource \"strata_data\" \"d\" {\n  input = \"x\"\n}\noutput \"o\" {\n  value = 1\n}\n");
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    for args in [&["show", "-json"][..], &["show"], &["output", "-json"], &["version"], &["plan"]] {
        let out = with_stdout_full(dir.path(), args);
        assert_eq!(out.status.code(), Some(1), "strata {args:?} with stdout on /dev/full: {}", stderr(&out));
        assert!(stderr(&out).contains("cannot write to stdout: No space left on device"), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn numbers_beyond_f64_keep_every_digit_from_literal_to_output_json() {
    // Terraform's numbers are 512-bit floats with an unbounded exponent:
    // 1.5e400 is a number, and `output -json` writes all its digits.
    let dir = scratch();
    let config = "output \"big\" {\n  value = 1.5e400\n}\noutput \"third\" {\n  value = 1/3\n}\n\
                  output \"tiny\" {\n  value = 1e-400\n}\n";
    write(dir.path(), "main.strata.hcl", config);
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let out = expect(dir.path(), &["output", "-json", "big"], 0);
    assert_eq!(stdout(&out).trim(), format!("15{}", "0".repeat(399)));
    let out = expect(dir.path(), &["output", "-json", "third"], 0);
    assert_eq!(stdout(&out).trim(), format!("0.{}5", "3".repeat(154)));
    let out = expect(dir.path(), &["output", "-json", "tiny"], 0);
    assert_eq!(stdout(&out).trim(), format!("0.{}1", "0".repeat(399)));
}

#[test]
fn a_map_of_forty_thousand_keys_loads() {
    // hcl-edit's object parser searched every earlier key for each new one
    // (7 s for this file, 33 s for 80,000 keys); the patched parser
    // (vendor/hcl-edit) finds duplicates by hash.
    let dir = scratch();
    let config = "variable \"m\" {\n  type = map(number)\n}\noutput \"n\" {\n  value = length(var.m)\n}\n\
                  output \"last\" {\n  value = var.m[\"k39999\"]\n}\n";
    write(dir.path(), "main.strata.hcl", config);
    let entries: String = (0..40_000).map(|i| format!("  k{i} = {i}\n")).collect();
    write(dir.path(), "x.auto.stratavars.hcl", &format!("m = {{\n{entries}}}\n"));
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert_eq!(stdout(&expect(dir.path(), &["output", "-json", "n"], 0)).trim(), "40000");
    assert_eq!(stdout(&expect(dir.path(), &["output", "-json", "last"], 0)).trim(), "39999");
    // A duplicate key is still refused, at its place.
    write(dir.path(), "x.auto.stratavars.hcl", "m = {\n  a = 1\n  b = 2\n  a = 3\n}\n");
    let out = expect(dir.path(), &["plan", "-no-color"], 1);
    assert!(stderr(&out).contains("redefined object key"), "{}", stderr(&out));
}

/// Inputs the fuzz targets found, each once a panic or a parse taking
/// minutes; each must now end in a diagnostic.
#[test]
fn inputs_found_by_fuzzing_end_in_diagnostics() {
    use strata::config::{Config, Diagnostics};
    // A multi-byte character just before where the parser stopped.
    let panicked = "strata {\n  backend \"local\" {\n   }\n}\n\nlocals {\ne t\"sting_object\" \"web\" {\n  count = \u{3ba}";
    let mut config = Config::default();
    let mut diags = Diagnostics::default();
    config.add_source("fuzz.strata.hcl".into(), panicked.to_owned(), &mut diags);
    assert!(diags.has_errors());

    // Unclosed brackets made hcl-edit backtrack exponentially (minutes).
    let slow = "11110110/0------1+4-11111115/1111111.19/(9/g/f/-0-2-(-9/9/g/f/{0.0109/9.0111/9/9.0110/9.115/1111111.19/(9/g/f/-0-2-(-9/9/g/f/{0.0109/9.0111/9/9.0110/9.19/(9/g/f/{0.0109/9/{0.01---------0-1+-0110/0------1+4-11111115/1111111.19/(9/19/(9/g/f/{0.0109/9/{0.01---------0-1+-0110/0------1+4-11111115/1111111.19/(9/g/f/-0-2-(-9/9/g/f/{0.0109/9.0111/9/9.0110/9.19/(9/g/f/{0.0109/9/{0.01--------41111";
    let e = strata::config::parse::parse_expr(slow).unwrap_err();
    assert!(e.message.contains("are never closed"), "{}", e.message);
    let unclosed_directives = format!("x = \"{}", "%{".repeat(127));
    assert_eq!(unclosed_directives.len(), 259);
    let mut diags = Diagnostics::default();
    config.add_source("unclosed.strata.hcl".into(), unclosed_directives, &mut diags);
    assert!(diags.iter().any(|d| d.message.contains("128 brackets, strings or templates are never closed")), "{diags:?}");
}
