//! `terraform fmt` compatibility: pairs of input and the output terraform fmt (hclwrite's
//! `Format`) produces for it. Most cases come from hclwrite's own `format_test.go`, wrapped in an
//! attribute where hclwrite formats a bare expression; the others follow the rules of its
//! `spaceAfterToken` and `formatCells`. Every case also checks that formatting the output
//! changes nothing and that formatting never changes what the configuration means.

use strata::config::fmt::format_source;

/// (input, expected output), both without the final newline.
const CASES: &[(&str, &str)] = &[
    // hclwrite format_test.go
    ("a=1", "a = 1"),
    ("a=b.c", "a = b.c"),
    ("a=b[c]", "a = b[c]"),
    ("a=b()[c]", "a = b()[c]"),
    (r#"a=["hello"][0]"#, r#"a = ["hello"][0]"#),
    ("x = ( a+2 )", "x = (a + 2)"),
    ("x = ( a*2 )", "x = (a * 2)"),
    ("x = ( a+-2 )", "x = (a + -2)"),
    ("x = ( a*-2 )", "x = (a * -2)"),
    ("x = (-2+1)", "x = (-2 + 1)"),
    ("x = foo(1, -2,a*b, b,c)", "x = foo(1, -2, a * b, b, c)"),
    ("b{}", "b {}"),
    (
        "x = foo(\n1,\n- 2,\na*b,\nb,\nc,\n)",
        "x = foo(\n  1,\n  -2,\n  a * b,\n  b,\n  c,\n)",
    ),
    ("x = [ [ ] ]", "x = [[]]"),
    ("x = [\n[\na\n]\n]", "x = [\n  [\n    a\n  ]\n]"),
    ("x = [[\na\n]]", "x = [[\n  a\n]]"),
    ("x = [[\n[\na\n]\n]]", "x = [[\n  [\n    a\n  ]\n]]"),
    ("b {\na = 1\n}", "b {\n  a = 1\n}"),
    ("a = 1\nbungle = 2", "a      = 1\nbungle = 2"),
    ("a = 1\n\nbungle = 2", "a = 1\n\nbungle = 2"),
    ("a = 1 # foo\nbungle = 2", "a      = 1 # foo\nbungle = 2"),
    (
        "a = 1 # foo\nbungle = \"bonce\" # baz",
        "a      = 1       # foo\nbungle = \"bonce\" # baz",
    ),
    (
        "# here we go\na = 1 # foo\nbungle = \"bonce\" # baz",
        "# here we go\na      = 1       # foo\nbungle = \"bonce\" # baz",
    ),
    (
        "foo {} # here we go\na = 1 # foo\nbungle = \"bonce\" # baz",
        "foo {}           # here we go\na      = 1       # foo\nbungle = \"bonce\" # baz",
    ),
    (
        "a = 1 # foo\nbungle = \"bonce\" # baz\nzebra = \"striped\" # baz",
        "a      = 1         # foo\nbungle = \"bonce\"   # baz\nzebra  = \"striped\" # baz",
    ),
    (
        "a = 1 # foo\nbungle = (\n    \"bonce\"\n) # baz\nzebra = \"striped\" # baz",
        "a = 1 # foo\nbungle = (\n  \"bonce\"\n)                 # baz\nzebra = \"striped\" # baz",
    ),
    (
        "a=\"apple\"# foo\nbungle=(# woo parens\n\"bonce\"\n)# baz\nzebra=\"striped\"# baz",
        "a = \"apple\" # foo\nbungle = (  # woo parens\n  \"bonce\"\n)                 # baz\nzebra = \"striped\" # baz",
    ),
    ("𝒜 = 1 # foo\nzebra = \"striped\" # baz", "𝒜     = 1         # foo\nzebra = \"striped\" # baz"),
    // Binary and unary operators.
    ("x = a+b", "x = a + b"),
    ("x = a   -   b", "x = a - b"),
    ("x = a==b", "x = a == b"),
    ("x = a!=b&&c<=d||e>=f", "x = a != b && c <= d || e >= f"),
    ("x = a%b/c", "x = a % b / c"),
    ("x = - y", "x = -y"),
    ("x = ! y", "x = !y"),
    ("x = !(a&&b)", "x = !(a && b)"),
    ("x = a * - b", "x = a * -b"),
    ("x = a == - b", "x = a == -b"),
    ("x = a || - b", "x = a || -b"),
    ("x = - - y", "x = --y"),
    // Conditionals.
    ("x = a?b:c", "x = a ? b : c"),
    ("x = a  ?  - 1  :  2", "x = a ? -1 : 2"),
    // Lists, calls, commas.
    ("x = [ 1,2 ,3 ]", "x = [1, 2, 3]"),
    ("x = [1, 2,]", "x = [1, 2, ]"),
    ("x = []", "x = []"),
    ("x = [ ]", "x = []"),
    ("x = f( a )", "x = f(a)"),
    ("x = f (a,b)", "x = f(a, b)"),
    ("x = f()", "x = f()"),
    ("x = f( )", "x = f()"),
    ("x = f(a, b ...)", "x = f(a, b...)"),
    ("x = provider :: p :: f(1)", "x = provider::p::f(1)"),
    ("x = [\n  1 ,\n  2\n]", "x = [\n  1,\n  2\n]"),
    // Objects keep a space inside their braces.
    ("x = {a=1}", "x = { a = 1 }"),
    ("x = { a = 1 }", "x = { a = 1 }"),
    ("x = {a=1,b=2}", "x = { a = 1, b = 2 }"),
    ("x = {  a = 1 ,  b = 2 , }", "x = { a = 1, b = 2, }"),
    ("x = { }", "x = {}"),
    ("x = {a:1}", "x = { a : 1 }"),
    (
        "x = {\n  a = [ 1 ]\n  bb = { c=2 }\n}",
        "x = {\n  a  = [1]\n  bb = { c = 2 }\n}",
    ),
    // for expressions.
    ("x = [ for v in y : v ]", "x = [for v in y : v]"),
    ("x = [for v in y: v if v!=1]", "x = [for v in y : v if v != 1]"),
    ("x = {for k,v in y : k=>v}", "x = { for k, v in y : k => v }"),
    ("x = {for k, v in y : k => v if v}", "x = { for k, v in y : k => v if v }"),
    ("x = [for v in [1, 2] : v]", "x = [for v in [1, 2] : v]"),
    // hclwrite guesses subtraction after `=>`, `in` and `if`.
    ("x = {for k, v in y : k => -v}", "x = { for k, v in y : k => - v }"),
    ("x = [for v in y : -v if -v]", "x = [for v in y : -v if - v]"),
    ("x = {for k, v in y : k => -1.50}", "x = { for k, v in y : k => - 1.50 }"),
    ("x = [for v in - 1 : v]", "x = [for v in - 1 : v]"),
    ("x = - 1.50", "x = -1.50"),
    // Traversals and splats.
    ("x = a . b", "x = a.b"),
    ("x = a [0]", "x = a[0]"),
    ("x = a[ 0 ][ 1 ]", "x = a[0][1]"),
    ("x = a[*].b", "x = a[*].b"),
    ("x = a[ * ] . b", "x = a[*].b"),
    ("x = a.*.b", "x = a.*.b"),
    ("x = a.0 .b", "x = a.0.b"),
    ("x = f(a)[0] . b", "x = f(a)[0].b"),
    // hclwrite puts a space between a closing quote and `[`.
    ("x = \"abc\"[0]", "x = \"abc\" [0]"),
    // Single-line blocks.
    ("b { a=1 }", "b { a = 1 }"),
    ("b \"l\" {   }", "b \"l\" {}"),
    // Trailing comments are aligned across block headers and closing braces.
    (
        "resource \"x\" \"y\" { # a\n  a = 1 # b\n} # c",
        "resource \"x\" \"y\" { # a\n  a = 1            # b\n}                  # c",
    ),
    (
        "b {\n  c = [ # open\n    1, # one\n    22, # two\n  ] # close\n}",
        "b {\n  c = [ # open\n    1,  # one\n    22, # two\n  ]     # close\n}",
    ),
    // Comments are never lost, whatever the spacing around them.
    ("x = a /* c */ + b", "x = a /* c */ + b"),
    ("x = [1, /* c */ 2]", "x = [1, /* c */ 2]"),
];

#[test]
fn matches_terraform_fmt() {
    let mut failures = Vec::new();
    for (input, expected) in CASES {
        let expected = format!("{expected}\n");
        let formatted = format_source(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        if formatted != expected {
            failures.push(format!(
                "input:\n{input}\nexpected:\n{expected}got:\n{formatted}"
            ));
            continue;
        }
        let again = format_source(&formatted).expect("output parses");
        assert_eq!(again, formatted, "not idempotent for {input:?}");
        assert_eq!(
            hcl::parse(input).ok(),
            hcl::parse(&formatted).ok(),
            "formatting changed the meaning of {input:?}"
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}
