//! STRATA PATCH: turns bindgen's `extern "C"` declarations into Rust
//! functions of the same names and signatures that call through a table of
//! symbols `src/lazy.rs` fills with `dlsym` on first use, so that the crate
//! needs no `-lvirt` at link time and a process that never calls libvirt never
//! maps it. Everything that is not a foreign function (types, constants) is
//! kept as bindgen wrote it.

use quote::{format_ident, quote};
use std::error::Error;
use syn::{FnArg, ForeignItem, Item, Pat};

/// The bindings file for `OUT_DIR`: bindgen's items, each foreign function
/// replaced by a wrapper, plus `SYMBOLS`, the names the loader resolves.
pub fn lazy_bindings(bindings: &str) -> Result<String, Box<dyn Error>> {
    let file = syn::parse_file(bindings)?;
    let mut items = Vec::new();
    let mut names = Vec::new();
    for item in file.items {
        let Item::ForeignMod(block) = item else {
            items.push(quote! { #item });
            continue;
        };
        for foreign in block.items {
            match foreign {
                ForeignItem::Fn(f) => {
                    let index = names.len();
                    names.push(f.sig.ident.to_string());
                    items.push(wrapper(index, f)?);
                }
                // `virConnectAuthPtrDefault`, the only data symbol, is not
                // used by the virt crate; a data symbol cannot be looked up
                // lazily, so it is left out (a use is a compile error, not a
                // link error).
                ForeignItem::Static(_) => {}
                other => return Err(format!("unexpected item in an extern block: {}", quote! { #other }).into()),
            }
        }
    }
    let symbols = names.iter().map(|n| format!("{n}\0"));
    let count = names.len();
    let names = names.iter();
    Ok(quote! {
        #(#items)*
        /// The libvirt functions the wrappers call, NUL-terminated for `dlsym`,
        /// in the order of their index.
        pub(crate) static SYMBOLS: [&str; #count] = [#(#symbols),*];
        /// The same names without the terminator, for messages.
        #[allow(dead_code)]
        pub(crate) static NAMES: [&str; #count] = [#(#names),*];
    }
    .to_string())
}

/// `pub unsafe extern "C" fn virX(a: A) -> R` calling symbol `index`.
fn wrapper(index: usize, f: syn::ForeignItemFn) -> Result<proc_macro2::TokenStream, Box<dyn Error>> {
    let sig = &f.sig;
    if sig.variadic.is_some() {
        return Err(format!("{} is variadic: it cannot be wrapped", sig.ident).into());
    }
    let attrs = &f.attrs;
    let vis = &f.vis;
    let name = &sig.ident;
    let output = &sig.output;
    let mut params = Vec::new();
    let mut types = Vec::new();
    let mut args = Vec::new();
    for (i, input) in sig.inputs.iter().enumerate() {
        let FnArg::Typed(arg) = input else {
            return Err(format!("{name} has a receiver").into());
        };
        // bindgen names every parameter; `_` or a pattern would not be
        // usable as an argument, so such a parameter gets a name of its own.
        let ident = match &*arg.pat {
            Pat::Ident(p) => p.ident.clone(),
            _ => format_ident!("arg{}", i),
        };
        let ty = &arg.ty;
        params.push(quote! { #ident: #ty });
        types.push(quote! { #ty });
        args.push(ident);
    }
    Ok(quote! {
        #(#attrs)*
        #[inline]
        #vis unsafe extern "C" fn #name(#(#params),*) #output {
            let function: unsafe extern "C" fn(#(#types),*) #output =
                ::core::mem::transmute::<usize, _>(crate::lazy::symbol(#index));
            function(#(#args),*)
        }
    })
}
