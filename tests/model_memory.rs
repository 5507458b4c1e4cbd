//! What the configuration model costs in heap bytes per resource block, on
//! blocks shaped like `bench/gen.py`'s realistic ones (a templated name, an
//! attribute of an object in a local, a literal, references to earlier
//! blocks' `id`). Counted by a global allocator that keeps the live total,
//! so the figure is the model alone, not what the process's allocator
//! keeps around it (issue 12).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use strata::config::{Config, Diagnostics};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const BLOCKS: usize = 4000;

/// The realistic shape's distinct blocks, as `bench/gen.py` writes them.
fn realistic(n: usize) -> String {
    let tiers = ["web", "app", "db"];
    let mut text = String::from(
        "locals {\n  prefix = \"bench\"\n  tiers = {\n    web = { label = \"web\", port = 443 }\n    app = { label = \"app\", port = 8080 }\n    db  = { label = \"db\", port = 5432 }\n  }\n}\n\n",
    );
    for i in 0..n {
        let deps: Vec<String> = [i / 2, i.saturating_sub(1), i / 3]
            .iter()
            .take(1 + i % 3)
            .filter(|&&d| d < i)
            .map(|d| format!("strata_data.r{d}.id"))
            .collect();
        text.push_str(&format!(
            "resource \"strata_data\" \"r{i}\" {{\n  input = {{\n    name = \"${{local.prefix}}-r{i}\"\n    tier = local.tiers.{}.label\n    size = {}\n    deps = [{}]\n  }}\n}}\n\n",
            tiers[i % 3],
            i + 1,
            deps.join(", ")
        ));
    }
    text
}

#[test]
fn the_model_of_a_realistic_block_stays_small() {
    let text = realistic(BLOCKS);
    let text_len = text.len();
    let before = LIVE.load(Ordering::Relaxed);
    let mut config = Config::default();
    let mut diags = Diagnostics::default();
    config.add_source("main.strata.hcl".into(), text, &mut diags);
    let after = LIVE.load(Ordering::Relaxed);
    assert!(diags.0.is_empty(), "{:?}", diags.0);
    assert_eq!(config.resources.len(), BLOCKS);
    // The source text stays in `Sources` (diagnostics show it); the rest
    // is the model.
    let model = (after - before) as usize - text_len;
    let per_block = model / BLOCKS;
    eprintln!(
        "model: {model} bytes for {BLOCKS} blocks, {per_block} bytes per block (source text {} per block); \
         size_of hcl-edit Expression {}, config::Expr {}",
        text_len / BLOCKS,
        std::mem::size_of::<hcl::edit::expr::Expression>(),
        std::mem::size_of::<strata::config::Expr>(),
    );
    // 2003 bytes before stop 21 (front8), 1099 after.
    assert!(per_block < 1280, "{per_block} bytes per block");
    drop(config);
}

