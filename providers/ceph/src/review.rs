//! Rules over a whole plan that no single change shows: a pool must not be
//! destroyed while images stay in it, and thin provisioning that
//! over-commits a pool is said before apply (the images' provisioned sizes
//! against the pool's quota, or what the pool had stored plus available).

use std::collections::BTreeMap;
use strata_provider::{ChangeAction, Review, ReviewedChange, Value};

/// The instance's values once the plan is applied; `None` when it goes.
fn after<'a>(c: &ReviewedChange<'a>) -> Option<&'a Value> {
    match c.action {
        ChangeAction::Delete => None,
        _ => c.planned.or(c.prior),
    }
}

pub fn review(changes: &[ReviewedChange<'_>]) -> Review {
    let mut review = Review::default();
    let pool_of = |v: &Value| v.get("pool").as_str().map(str::to_owned);

    // Pools that go away (destroyed, or replaced: destroyed first).
    for pool in changes.iter().filter(|c| c.type_name == "ceph_pool") {
        if !matches!(pool.action, ChangeAction::Delete | ChangeAction::Replace) {
            continue;
        }
        let Some(name) = pool.prior.and_then(|p| p.get("name").as_str()) else { continue };
        let staying: Vec<&str> = changes
            .iter()
            .filter(|c| c.type_name == "ceph_rbd_image" && matches!(c.action, ChangeAction::NoOp | ChangeAction::Update))
            .filter(|c| c.prior.and_then(pool_of).as_deref() == Some(name))
            .map(|c| c.address)
            .collect();
        if !staying.is_empty() {
            review.errors.push((
                pool.address.to_owned(),
                format!(
                    "pool {name:?} would be destroyed while images stay in it ({}); destroy or move those images in the same plan",
                    staying.join(", ")
                ),
            ));
        }
    }

    // Provisioned bytes per pool once the plan is applied.
    let mut provisioned: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for image in changes.iter().filter(|c| c.type_name == "ceph_rbd_image") {
        let Some(v) = after(image) else { continue };
        let (Some(pool), Some(size)) = (pool_of(v), v.get("size").as_f64()) else { continue };
        let entry = provisioned.entry(pool).or_default();
        entry.0 += size;
        entry.1 += 1;
    }
    for pool in changes.iter().filter(|c| c.type_name == "ceph_pool") {
        let Some(v) = after(pool) else { continue };
        let Some(name) = v.get("name").as_str() else { continue };
        let Some(&(bytes, images)) = provisioned.get(name) else { continue };
        let quota = v.get("quota_max_bytes").as_f64().filter(|q| *q > 0.0);
        let capacity = quota.map(|q| (q, "its quota")).or_else(|| {
            let stored = pool.prior?.get("stored").as_f64()?;
            let available = pool.prior?.get("available").as_f64()?;
            Some((stored + available, "its stored plus available bytes"))
        });
        let Some((capacity, what)) = capacity.filter(|(c, _)| *c > 0.0) else { continue };
        if bytes > capacity {
            review.warnings.push((
                pool.address.to_owned(),
                format!(
                    "thin provisioning over-commits pool {name:?}: {images} image(s) provision {} bytes against {what} of {} bytes \
                     ({:.2}x); writes block once the pool is full",
                    bytes as u64,
                    capacity as u64,
                    bytes / capacity
                ),
            ));
        }
    }
    review
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(name: &str, quota: Option<i64>) -> Value {
        Value::object([("name", Value::from(name)), ("quota_max_bytes", quota.map(Value::from).unwrap_or(Value::Null))])
    }

    fn image(pool: &str, size: i64) -> Value {
        Value::object([("pool", Value::from(pool)), ("size", Value::from(size))])
    }

    fn change<'a>(address: &'a str, type_name: &'a str, action: ChangeAction, prior: Option<&'a Value>, planned: Option<&'a Value>) -> ReviewedChange<'a> {
        ReviewedChange { address, type_name, action, prior, planned }
    }

    #[test]
    fn a_pool_is_not_destroyed_under_images_that_stay() {
        let (p, a, b) = (pool("rbd1", None), image("rbd1", 1 << 20), image("rbd1", 1 << 20));
        let changes = [
            change("ceph_pool.p", "ceph_pool", ChangeAction::Delete, Some(&p), None),
            change("ceph_rbd_image.a", "ceph_rbd_image", ChangeAction::Delete, Some(&a), None),
            change("ceph_rbd_image.b", "ceph_rbd_image", ChangeAction::NoOp, Some(&b), Some(&b)),
        ];
        let r = review(&changes);
        assert_eq!(r.errors.len(), 1, "{r:?}");
        assert!(r.errors[0].1.contains("ceph_rbd_image.b") && !r.errors[0].1.contains("ceph_rbd_image.a"), "{r:?}");
        // Destroying the images too is fine.
        let changes = [
            change("ceph_pool.p", "ceph_pool", ChangeAction::Delete, Some(&p), None),
            change("ceph_rbd_image.a", "ceph_rbd_image", ChangeAction::Delete, Some(&a), None),
            change("ceph_rbd_image.b", "ceph_rbd_image", ChangeAction::Delete, Some(&b), None),
        ];
        assert!(review(&changes).errors.is_empty());
    }

    #[test]
    fn over_commit_against_the_quota_is_a_warning_with_the_ratio() {
        let p = pool("thin", Some(16 << 20));
        let images: Vec<Value> = (0..3).map(|_| image("thin", 8 << 20)).collect();
        let mut changes = vec![change("ceph_pool.p", "ceph_pool", ChangeAction::Create, None, Some(&p))];
        let names = ["ceph_rbd_image.c[0]", "ceph_rbd_image.c[1]", "ceph_rbd_image.c[2]"];
        for (name, v) in names.iter().zip(&images) {
            changes.push(change(name, "ceph_rbd_image", ChangeAction::Create, None, Some(v)));
        }
        let r = review(&changes);
        assert_eq!(r.warnings.len(), 1, "{r:?}");
        assert!(r.warnings[0].1.contains("3 image(s) provision 25165824 bytes against its quota of 16777216 bytes (1.50x)"), "{r:?}");
        // Two fit.
        changes.truncate(3);
        assert!(review(&changes).warnings.is_empty());
    }
}
