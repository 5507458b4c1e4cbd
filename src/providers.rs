//! The providers this build of Strata has: the one place the engine names
//! them. Each provider crate is behind a cargo feature of the same name (all
//! on by default), so a build without `kvm` needs no libvirt to build or run.

use std::sync::Arc;
use strata_provider::ProviderFactory;

/// Every provider compiled into this binary.
pub fn factories() -> Vec<Arc<dyn ProviderFactory>> {
    #[allow(unused_mut)] // Without optional providers nothing is pushed.
    let mut all = strata_provider_builtin::factories();
    #[cfg(feature = "kvm")]
    all.push(Arc::new(strata_provider_kvm::KvmFactory));
    #[cfg(feature = "ovs")]
    all.push(Arc::new(strata_provider_ovs::OvsFactory));
    #[cfg(feature = "ceph")]
    all.push(Arc::new(strata_provider_ceph::CephFactory));
    all
}

/// Providers Strata has but this build was compiled without (their cargo
/// feature was off).
const LEFT_OUT: &[&str] = &[
    #[cfg(not(feature = "kvm"))]
    "kvm",
    #[cfg(not(feature = "ovs"))]
    "ovs",
    #[cfg(not(feature = "ceph"))]
    "ceph",
];

/// Why `name` is missing when this build left it out, to tell that apart
/// from a misspelt provider.
pub fn left_out(name: &str) -> Option<String> {
    LEFT_OUT.contains(&name).then(|| {
        format!("this strata was built without the {name} provider (build it with `--features {name}`, or with the default features)")
    })
}
