//! Fuzz target for the configuration front end: parse + lower a file, run the
//! static validation against the builtin providers' schemas, and check that
//! the formatter is idempotent and preserves meaning: parse(fmt(x)) is the
//! same syntax tree as parse(x), spans and layout aside.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use strata::config::{Config, Diagnostics};
use strata::plan::Schemas;

fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        Schemas(
            strata_provider_builtin::factories()
                .iter()
                .map(|f| (f.name().to_owned(), f.schema()))
                .collect(),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    // The front end as a user runs it: parse + lower, then validate.
    let mut config = Config::default();
    let mut diags = Diagnostics::default();
    config.add_source("fuzz.strata.hcl".into(), text.to_owned(), &mut diags);
    let _ = strata::plan::validate(&config, schemas());

    // `strata fmt`: formatting what it produced must change nothing more.
    if let Ok(once) = strata::config::fmt::format_source(text) {
        match strata::config::fmt::format_source(&once) {
            Ok(twice) => assert_eq!(once, twice, "format_source is not idempotent"),
            Err(e) => panic!("format_source output does not parse again: {e}\n--- output ---\n{once}"),
        }
        // hcl-rs's tree has no spans or decor: equal trees mean the same file.
        let before = hcl::parse(text).expect("format_source parsed it");
        let after = hcl::parse(&once).expect("the output parses (checked above)");
        assert_eq!(before, after, "formatting changed the meaning\n--- output ---\n{once}");
    }
});
