#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]

// Bindgen generated tests dereference null pointers for struct layout testing.
#![cfg_attr(test, allow(unknown_lints, deref_nullptr))]

pub type _virTypedParameterValue = _virTypedParameter__bindgen_ty_1;

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

// STRATA PATCH: on Linux the bindings load libvirt on first use (see
// STRATA-PATCH.md); elsewhere libvirt is linked and `load` has nothing to do.
#[cfg(virt_sys_lazy)]
mod lazy;
#[cfg(virt_sys_lazy)]
pub use lazy::load;

/// libvirt is linked into this build: always loaded.
#[cfg(not(virt_sys_lazy))]
pub fn load() -> Result<(), String> {
    Ok(())
}
