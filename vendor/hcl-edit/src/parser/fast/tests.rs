//! Differential tests of the fast parser: on every input it accepts, its
//! tree (values, spans, decor spans) and the despanned tree are exactly the
//! winnow parser's; inputs winnow rejects it must decline.
//!
//! The corpus is every HCL file of the Strata workspace this crate is
//! vendored in (tests, examples, fuzz seeds and artifacts, the HCL snippets
//! inside its Rust sources and the function cases), the generator's
//! realistic configuration, hand-written snippets of every construct, and
//! systematic mutations of all of them.

use super::parse_body;
use crate::parser::{parse_complete, structure::body};
use crate::structure::Body;
use std::path::{Path, PathBuf};

/// What the fast parser did with one input.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    accepted: usize,
    declined: usize,
    rejected: usize,
}

/// Checks one input; panics when the fast parser accepts it with a tree
/// other than winnow's, or accepts what winnow rejects.
fn check(input: &str, tally: &mut Tally) {
    let winnow = parse_complete(input, body);
    let fast = parse_body(input, 0);
    match (fast, winnow) {
        (Some(fast), Ok(winnow)) => {
            assert_same(input, &fast, &winnow);
            tally.accepted += 1;
        }
        (Some(fast), Err(err)) => {
            panic!("fast parser accepted what winnow rejects ({err}):\n{input:?}\n{fast:?}")
        }
        (None, Ok(_)) => tally.declined += 1,
        (None, Err(_)) => tally.rejected += 1,
    }
}

fn assert_same(input: &str, fast: &Body, winnow: &Body) {
    let (fast_tree, winnow_tree) = (format!("{fast:?}"), format!("{winnow:?}"));
    assert!(
        fast_tree == winnow_tree,
        "trees differ on {input:?}\nfast:   {fast_tree}\nwinnow: {winnow_tree}"
    );
    let (mut fast, mut winnow) = (fast.clone(), winnow.clone());
    fast.despan(input);
    winnow.despan(input);
    assert_eq!(format!("{fast:?}"), format!("{winnow:?}"), "despanned trees differ on {input:?}");
    assert_eq!(fast.to_string(), winnow.to_string());
}

/// Checks `input` and its mutations: every prefix cut at a stride, and
/// whitespace or a comment inserted at every stride.
fn check_with_mutations(input: &str, stride: usize, tally: &mut Tally) {
    check(input, tally);
    let boundaries: Vec<usize> = (0..=input.len())
        .filter(|&i| input.is_char_boundary(i))
        .collect();
    for &cut in boundaries.iter().step_by(stride) {
        check(&input[..cut], tally);
        for insert in [" ", "\n", "/* c */", "# c\n", "\t", "(", ")", "\"", "{", ",", "."] {
            let mutated = format!("{}{insert}{}", &input[..cut], &input[cut..]);
            check(&mutated, tally);
        }
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn files_under(dir: &Path, keep: &dyn Fn(&Path) -> bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            files_under(&path, keep, out);
        } else if keep(&path) {
            out.push(path);
        }
    }
}

fn is_hcl(path: &Path) -> bool {
    let name = path.to_string_lossy();
    name.ends_with(".hcl") || name.ends_with(".tf") || name.ends_with(".tfvars")
}

/// The HCL files of the workspace, and its fuzz inputs.
fn workspace_files() -> Vec<(PathBuf, String)> {
    let root = workspace();
    let mut paths = Vec::new();
    for dir in ["tests", "examples", "bench"] {
        files_under(&root.join(dir), &is_hcl, &mut paths);
    }
    for dir in ["fuzz/seeds", "fuzz/artifacts"] {
        files_under(&root.join(dir), &|_| true, &mut paths);
    }
    paths
        .into_iter()
        .filter_map(|p| {
            let text = String::from_utf8(std::fs::read(&p).ok()?).ok()?;
            Some((p, text))
        })
        .collect()
}

/// Raw string literals (`r#"..."#`) of the workspace's Rust sources: the
/// HCL snippets of its tests.
fn rust_snippets() -> Vec<String> {
    let root = workspace();
    let mut paths = Vec::new();
    for dir in ["tests", "src"] {
        files_under(&root.join(dir), &|p| p.extension().is_some_and(|e| e == "rs"), &mut paths);
    }
    let mut snippets = Vec::new();
    for path in paths {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let mut rest = text.as_str();
        while let Some(start) = rest.find("r#\"") {
            rest = &rest[start + 3..];
            let Some(end) = rest.find("\"#") else {
                break;
            };
            snippets.push(rest[..end].to_owned());
            rest = &rest[end + 2..];
        }
    }
    snippets
}

/// The function cases (`EXPR => EXPECTED` lines) as attributes.
fn function_cases() -> Vec<String> {
    let mut paths = Vec::new();
    files_under(
        &workspace().join("tests/functions"),
        &|p| p.extension().is_some_and(|e| e == "txt"),
        &mut paths,
    );
    let mut cases = Vec::new();
    for path in paths {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for line in text.lines() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let (expr, expected) = line.split_once(" => ").unwrap_or((line, "null"));
            cases.push(format!("x = {expr}\ny = {expected}\n"));
        }
    }
    cases
}

/// Hand-written snippets of every construct the fast parser handles, and
/// of the ones it leaves to winnow.
const SNIPPETS: &[&str] = &[
    "",
    "\n\n",
    "a = 1",
    "a = 1\n",
    "a=1\nb=2 # c\n// d\n/* e */ c = 3 /* f */ // g\n",
    "a = 1\na = 2\n",
    "a = -1\nb = - 2\nc = -/* x */3\nd = -a\ne = !a\nf = - a.b[0]\ng = !!a\n",
    "a = 1.5\nb = 1e10\nc = 2.5E-3\nd = 18446744073709551616\ne = 1e400\nf = 1.x\ng = 1..\nh = 007\n",
    "a = 1e\n",
    "a = 1.5e+\n",
    "a = \"\"\nb = \"x\\n\\t\\r\\\\\\\"\\u00e9\\U0001F600\"\nc = \"$${a} %%{b} $ % $$ %% $x\"\n",
    "a = \"\\q\"\n",
    "a = \"\\ud800\"\n",
    "a = \"${x}\"\nb = \"a${x}b${ y }c\"\nc = \"${~x~}\"\nd = \"${x}${y}\"\ne = \"${\"${x}\"}\"\n",
    "a = \"%{if x}y%{endif}\"\n",
    "a = \"%{ if x ~}y\\n%{~ else ~} z ${w} %{ endif }\"\nb = \"%{for v in l}${v},%{endfor}\"\nc = \"%{for k, v in m}%{if v}${k}%{endif}%{endfor}\"\nd = \"%{endif}\"\ne = \"%{if x}\"\nf = \"%{iffy}%{endif}\"\n",
    "a = <<EOT\n%{ for x in y ~}\n${x}\n%{~ endfor }\nEOT\nb = <<EOT\n%{if a}\nb\n%{else}\nc\n%{endif}\nEOT\n",
    "a = <<EOT\n%{if a}\nEOT\n%{endif}\nEOT\n",
    "a = \"unterminated\n",
    "a = [1, 2, 3]\nb = []\nc = [ ]\nd = [1,]\ne = [\n  1,\n  2,\n]\nf = [ # c\n 1 /* d */ , 2 ]\n",
    "a = [,]\n",
    "a = {}\nb = { }\nc = { a = 1 }\nd = { a = 1, b = 2 }\ne = {\n  a = 1\n  b = 2 # c\n  c = 3 // d\n  d: 4,\n}\n",
    "a = { a = 1, a = 2 }\n",
    "a = { \"a\" = 1, (b) = 2, c.d = 3, \"${e}\" = 4 }\n",
    "a = { a = 1 /* c */ # d\n}\n",
    "a = { a = 1 b = 2 }\n",
    "a = x.y.z\nb = x[0]\nc = x.0\nd = x.*.y\ne = x[*].y\nf = x [ 0 ] . y\ng = x\n  .y\nh = x.\n y\ni = x[\n0\n]\n",
    "a = x.01\n",
    "a = f()\nb = f( )\nc = f(1)\nd = f(1, 2)\ne = f(1, 2,)\nf = f(a...)\ng = f(\n  1,\n  2\n)\nh = f (1)\ni = f(1).x[0]\n",
    "a = f(a, ...)\n",
    "a = p::f(1)\n",
    "a = 1 + 2 * 3 - 4 / 5 % 6\nb = a == b && c != d || !e\nc = a < b\nd = a <= b\ne = a > b\nf = a >= b\ng = (1 + 2) * 3\nh = a+-1\n",
    "a = 1 +\n2\n",
    "a = f(1) +\n2\n",
    "a = [1] +\n2\n",
    "a = a ? b : c\nb = a ? b ? c : d : e\nc = a == 1 ? \"x\" : \"y\"\nd = (a\n?\nb\n:\nc)\n",
    "a = a ?\n",
    "a = [for x in y : x]\nb = [for i, x in y : x if x]\nc = {for k, v in m : k => v}\nd = {for k, v in m : k => v... if v}\ne = {for k, v in m : k => v...}\nf = [ for x in y: upper(x) ]\ng = {\n  for k, v in m :\n  k => v\n}\n",
    "a = [formatlist(\"%s\", x)]\nb = {format = 1}\nc = [for_each]\n",
    "a {\n}\nb {}\nc { }\nd { x = 1 }\ne \"l\" {\n  f = 2\n}\ng \"l1\" l2 \"l3\" {\n  h {\n    i = 3\n  }\n}\n",
    "a { # c\n  b = 1\n}\n",
    "a { /* c */\n  b = 1\n}\n",
    "a { b = 1 c = 2 }\n",
    "a { b {} }\n",
    "a \"${b}\" {}\n",
    "a b=1\n",
    "a = 1 b = 2\n",
    "a = <<EOT\nx\nEOT\n",
    "a = <<EOT\nEOT\nb = <<-EOT\n  EOT\nc = <<EOT\n\nEOT\nd = <<EOT\n  x ${y} $${z} %%{w}\n  EOT\ne = <<EOT\n${x}\nEOT\n",
    "a = <<-EOT\n    x\n      y\n    EOT\nb = <<EOT\nEOTX\nEOT\nc = <<EOT\nx EOT\nEOT  \nd = [<<EOT\nx\nEOT\n, 1]\n",
    "a = <<EOT\n%{if x}y%{endif}\nEOT\n",
    "a = <<EOT\nx\n",
    "a = <<EOT x\nEOT\n",
    "a = 1\r\nb = 2\r\n",
    "é = 1\n",
    "a = \"é\"\n# é\nb = x.é\n",
    "a = null\nb = true\nc = false\nd = nullx\n",
    "a = x /* c */ .y\nb = x /* c */ [0]\n",
    "a = 1 // c\nb = 2 # c\n",
    "a = /* x */ 1\n",
    "a = 1 /",
    "a = x /2\n",
    "a = (\n  1\n)\n",
    "a = f(\n  # c\n  1, # d\n  2 // e\n)\n",
    "resource \"a\" \"b\" {\n  for_each = local.m\n  name     = \"${each.key}-x\"\n  list     = [for s in var.l : s.id if s.enabled]\n  tags     = merge(var.tags, { Name = \"x\" })\n  count    = var.n > 0 ? var.n : 1\n\n  lifecycle {\n    ignore_changes = [tags]\n  }\n}\n",
];

#[test]
fn snippets_parse_as_winnow_parses_them() {
    let mut tally = Tally::default();
    for snippet in SNIPPETS {
        check_with_mutations(snippet, 1, &mut tally);
    }
    eprintln!("snippets: {tally:?}");
    assert!(tally.accepted > 1000, "{tally:?}");
}

#[test]
fn workspace_files_parse_as_winnow_parses_them() {
    let files = workspace_files();
    assert!(files.len() >= 20, "found only {} files", files.len());
    let mut tally = Tally::default();
    for (path, text) in &files {
        let stride = (text.len() / 400).max(1);
        let before = tally;
        check_with_mutations(text, stride, &mut tally);
        if tally.declined > before.declined && parse_body(text, 0).is_none() {
            eprintln!("declined whole file: {}", path.display());
        }
    }
    eprintln!("workspace files: {tally:?}");
    assert!(tally.accepted > 0, "{tally:?}");
}

#[test]
fn rust_snippets_and_function_cases_parse_as_winnow_parses_them() {
    let mut tally = Tally::default();
    let snippets = rust_snippets();
    assert!(snippets.len() > 100, "found only {} snippets", snippets.len());
    for snippet in &snippets {
        check_with_mutations(snippet, (snippet.len() / 40).max(1), &mut tally);
    }
    let cases = function_cases();
    assert!(cases.len() > 100, "found only {} cases", cases.len());
    for case in &cases {
        check_with_mutations(case, 3, &mut tally);
    }
    eprintln!("rust snippets and function cases: {tally:?}");
}

/// The benchmark generator's realistic configuration: the fast parser
/// must take all of it (it is the shape the targets are measured on).
#[test]
fn generated_realistic_configuration_is_never_declined() {
    let dir = std::env::temp_dir().join(format!("hcl-edit-fast-{}", std::process::id()));
    let status = std::process::Command::new("python3")
        .arg(workspace().join("bench/gen.py"))
        .arg(&dir)
        .args(["300", "realistic"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("python3 runs bench/gen.py");
    assert!(status.success());
    let mut paths = Vec::new();
    files_under(&dir, &is_hcl, &mut paths);
    assert!(paths.len() >= 2, "{paths:?}");
    let mut tally = Tally::default();
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap();
        let whole = parse_body(&text, 0);
        assert!(whole.is_some(), "fast parser declined {}", path.display());
        check(&text, &mut tally);
        check_with_mutations(&text[..text.len().min(3000)], 7, &mut tally);
        // Pieces, as `strata fmt` and the loader parse them.
        let piece = text.find("\nresource").map_or(0, |i| i + 1);
        let upto = &text[..text.len()];
        let fast = parse_body(upto, piece).expect("piece parses");
        let mut stream = crate::parser::prelude::new_input(upto);
        let _ = winnow::stream::Stream::next_slice(&mut stream, piece);
        let winnow = winnow::Parser::parse(&mut body, stream).expect("winnow parses the piece");
        assert_same(&text, &fast, &winnow);
    }
    std::fs::remove_dir_all(&dir).unwrap();
    eprintln!("generated: {tally:?}");
}

/// Random edits (a fixed-seed xorshift, so failures reproduce): each input
/// gets one to four insertions, deletions or replacements drawn from the
/// grammar's tokens and odd bytes.
#[test]
fn random_edits_parse_as_winnow_parses_them() {
    const TOKENS: &[&str] = &[
        " ", "\n", "\t", "\r\n", "#", "//", "/*", "*/", "{", "}", "[", "]", "(", ")", "\"", "\\",
        "${", "%{", "$${", "~", "=", "==", ":", "?", ",", ".", "..", "...", "=>", "-", "!", "*",
        "<<", "<<EOT\n", "\nEOT\n", "for ", " in ", "if ", "else", "endif", "endfor", "a", "_",
        "0", "1.5", "1e3", "é", "null", "true", "::", "&&", "||", "<=", "%",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut inputs: Vec<String> = SNIPPETS.iter().map(|s| (*s).to_owned()).collect();
    inputs.extend(workspace_files().into_iter().map(|(_, text)| text).filter(|t| t.len() < 4000));
    let mut tally = Tally::default();
    for round in 0..40_000usize {
        let Some(base) = inputs.get(round % inputs.len()) else {
            break;
        };
        let mut text = base.clone();
        for _ in 0..=(next() % 4) {
            let boundaries: Vec<usize> =
                (0..=text.len()).filter(|&i| text.is_char_boundary(i)).collect();
            let at = boundaries[(next() as usize) % boundaries.len()];
            let token = TOKENS[(next() as usize) % TOKENS.len()];
            let end = boundaries
                .iter()
                .copied()
                .find(|&i| i > at)
                .unwrap_or(at);
            match next() % 3 {
                0 => text.insert_str(at, token),
                1 => text.replace_range(at..end, ""),
                _ => text.replace_range(at..end, token),
            }
        }
        check(&text, &mut tally);
    }
    eprintln!("random edits: {tally:?}");
    assert!(tally.accepted > 1000, "{tally:?}");
}
