//! Property: after an apply, an immediate plan shows no changes, for random
//! configurations of counts, for_each maps, references and values.

mod common;

use common::*;
use proptest::prelude::*;

fn config(counts: &[u8], keys: &[String], value: &str) -> String {
    let mut text = format!("variable \"v\" {{\n  default = {value:?}\n}}\n");
    for (i, n) in counts.iter().enumerate() {
        let input = if i == 0 { "\"${var.v}-${count.index}\"".to_owned() } else { format!("\"${{strata_data.r{}[0].output}}/${{count.index}}\"", i - 1) };
        let n = if i == 0 { (*n).max(1) } else { *n };
        text.push_str(&format!("resource \"strata_data\" \"r{i}\" {{\n  count = {n}\n  input = {input}\n}}\n"));
        if n == 0 {
            break;
        }
    }
    let map: Vec<String> = keys.iter().map(|k| format!("{k:?} = upper({k:?})")).collect();
    text.push_str(&format!("resource \"strata_data\" \"m\" {{\n  for_each = {{ {} }}\n  input = [each.key, each.value, strata_data.r0[0].id]\n}}\n", map.join(", ")));
    text.push_str("output \"first\" {\n  value = strata_data.r0[0].output\n}\n");
    text
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn plan_after_apply_shows_no_changes(
        counts in proptest::collection::vec(0u8..4, 1..4),
        keys in proptest::collection::btree_set("[a-z]{1,6}", 0..4),
        value in "[a-zA-Z0-9 ]{0,12}",
        second in "[a-zA-Z0-9 ]{0,12}",
    ) {
        let keys: Vec<String> = keys.into_iter().collect();
        let dir = scratch();
        write(dir.path(), "main.strata.hcl", &config(&counts, &keys, &value));
        expect(dir.path(), &["apply", "-auto-approve"], 0);
        expect(dir.path(), &["plan", "-detailed-exitcode"], 0);
        // And again after a change that ripples through the references.
        write(dir.path(), "main.strata.hcl", &config(&counts, &keys, &second));
        expect(dir.path(), &["apply", "-auto-approve"], 0);
        expect(dir.path(), &["plan", "-detailed-exitcode"], 0);
    }
}
