//! [`VecMap`]: an ordered map kept as one sorted vector, the storage behind
//! [`MapValue`](crate::MapValue).
//!
//! Objects in state and configuration are small (a resource's attributes, a
//! nested block's few fields) and there are hundreds of thousands of them.
//! A `BTreeMap` allocates a leaf node for eleven entries even when it holds
//! three, about 600 bytes for a three-attribute object; this map holds its
//! entries in one allocation of exactly their size when it is built from an
//! iterator or decoded, which is how values are made.
//!
//! It behaves as a `BTreeMap<K, V>` does where the workspace uses one:
//! iteration in key order, the last of duplicate keys wins when collecting or
//! extending, equality and serialisation entry by entry (so JSON is byte for
//! byte what the `BTreeMap` gave), and the same method names.
//!
//! Costs differ in one place: inserting a key that is not after every key
//! already there moves the entries after it, O(n). Appending in key order is
//! O(1), and building from an iterator or [`Extend`] sorts once
//! (O(n log n), O(n) on sorted input), so code building a large map from
//! unordered keys should collect rather than insert one at a time.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt;
use std::iter::FusedIterator;
use std::marker::PhantomData;

/// An ordered map in one sorted vector of unique keys (see the module docs).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VecMap<K, V> {
    /// Sorted by key, no key twice.
    entries: Vec<(K, V)>,
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> VecMap<K, V> {
        VecMap { entries: Vec::new() }
    }
}

impl<K, V> VecMap<K, V> {
    pub const fn new() -> VecMap<K, V> {
        VecMap { entries: Vec::new() }
    }

    pub fn with_capacity(capacity: usize) -> VecMap<K, V> {
        VecMap { entries: Vec::with_capacity(capacity) }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The entries in key order.
    pub fn as_slice(&self) -> &[(K, V)] {
        &self.entries
    }

    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter(self.entries.iter())
    }

    pub fn iter_mut(&mut self) -> IterMut<'_, K, V> {
        IterMut(self.entries.iter_mut())
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator + Clone + '_ {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator + Clone + '_ {
        self.entries.iter().map(|(_, v)| v)
    }

    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> + ExactSizeIterator + '_ {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    pub fn into_keys(self) -> impl DoubleEndedIterator<Item = K> + ExactSizeIterator {
        self.entries.into_iter().map(|(k, _)| k)
    }

    pub fn into_values(self) -> impl DoubleEndedIterator<Item = V> + ExactSizeIterator {
        self.entries.into_iter().map(|(_, v)| v)
    }

    pub fn first_key_value(&self) -> Option<(&K, &V)> {
        self.entries.first().map(|(k, v)| (k, v))
    }

    pub fn last_key_value(&self) -> Option<(&K, &V)> {
        self.entries.last().map(|(k, v)| (k, v))
    }

    pub fn pop_first(&mut self) -> Option<(K, V)> {
        if self.entries.is_empty() {
            return None;
        }
        Some(self.entries.remove(0))
    }

    pub fn pop_last(&mut self) -> Option<(K, V)> {
        self.entries.pop()
    }

    /// Keeps the entries for which `keep` says yes, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
    }
}

impl<K: Ord, V> VecMap<K, V> {
    /// Where `key` is (`Ok`) or would go (`Err`).
    fn search<Q>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.search(key).ok().map(|i| &self.entries[i].1)
    }

    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.search(key).ok().map(|i| {
            let (k, v) = &self.entries[i];
            (k, v)
        })
    }

    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match self.search(key) {
            Ok(i) => Some(&mut self.entries[i].1),
            Err(_) => None,
        }
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.search(key).is_ok()
    }

    /// Sets `key` to `value`, giving back the value it replaces. O(1) when
    /// `key` sorts after every key there, O(n) otherwise.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        // The common way maps are built, in order, skips the search.
        if self.entries.last().is_none_or(|(last, _)| *last < key) {
            self.entries.push((key, value));
            return None;
        }
        match self.search(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.remove_entry(key).map(|(_, v)| v)
    }

    pub fn remove_entry<Q>(&mut self, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match self.search(key) {
            Ok(i) => Some(self.entries.remove(i)),
            Err(_) => None,
        }
    }

    /// The entry for `key`, to read, change or fill in place.
    pub fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        match self.search(&key) {
            Ok(index) => Entry::Occupied(OccupiedEntry { map: self, index }),
            Err(index) => Entry::Vacant(VacantEntry { map: self, index, key }),
        }
    }

    /// Moves every entry of `other` into `self`; `other`'s win on equal keys.
    pub fn append(&mut self, other: &mut VecMap<K, V>) {
        let other = std::mem::take(other);
        self.extend(other);
    }

    /// Restores the invariant after entries were pushed unsorted from
    /// `from` on: a stable sort (linear on the already sorted prefix plus a
    /// sorted tail, which is the usual case) and, of equal keys, keeping
    /// the one pushed last, as inserting them one by one would.
    fn normalize(&mut self, from: usize) {
        let tail_sorted = self.entries[from.saturating_sub(1)..].windows(2).all(|w| w[0].0 < w[1].0);
        if tail_sorted {
            return;
        }
        self.entries.sort_by(|a, b| a.0.cmp(&b.0));
        // `dedup_by` keeps the first of a run and hands the later one as
        // `later`: swapping keeps the later value (and key) in its place.
        self.entries.dedup_by(|later, kept| {
            if later.0 == kept.0 {
                std::mem::swap(later, kept);
                true
            } else {
                false
            }
        });
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for VecMap<K, V> {
    /// Sorts once, so building is O(n log n) whatever the order; the last
    /// of equal keys wins.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> VecMap<K, V> {
        let mut map = VecMap { entries: iter.into_iter().collect() };
        map.normalize(0);
        // Duplicates dropped leave spare room; values are many and small.
        if map.entries.capacity() > map.entries.len() {
            map.entries.shrink_to_fit();
        }
        map
    }
}

impl<K: Ord, V> Extend<(K, V)> for VecMap<K, V> {
    /// The last of equal keys wins, as with `insert`.
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        let from = self.entries.len();
        self.entries.extend(iter);
        self.normalize(from);
    }
}

impl<'a, K: Ord + Clone, V: Clone> Extend<(&'a K, &'a V)> for VecMap<K, V> {
    fn extend<I: IntoIterator<Item = (&'a K, &'a V)>>(&mut self, iter: I) {
        self.extend(iter.into_iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

impl<K: Ord, V, const N: usize> From<[(K, V); N]> for VecMap<K, V> {
    fn from(entries: [(K, V); N]) -> VecMap<K, V> {
        entries.into_iter().collect()
    }
}

/// Already sorted and unique: a copy into one allocation, O(n).
impl<K, V> From<BTreeMap<K, V>> for VecMap<K, V> {
    fn from(map: BTreeMap<K, V>) -> VecMap<K, V> {
        VecMap { entries: map.into_iter().collect() }
    }
}

impl<K: Ord, V> From<VecMap<K, V>> for BTreeMap<K, V> {
    fn from(map: VecMap<K, V>) -> BTreeMap<K, V> {
        map.entries.into_iter().collect()
    }
}

impl<K, Q, V> std::ops::Index<&Q> for VecMap<K, V>
where
    K: Ord + Borrow<Q>,
    Q: Ord + ?Sized,
{
    type Output = V;
    /// Panics if the key is absent, as `BTreeMap`'s does.
    fn index(&self, key: &Q) -> &V {
        self.get(key).expect("no entry found for key")
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for VecMap<K, V> {
    /// As a `BTreeMap` prints: `{k: v, ...}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Serialize, V: Serialize> Serialize for VecMap<K, V> {
    /// As a `BTreeMap` serialises: a map, entries in key order.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> Deserialize<'de> for VecMap<K, V> {
    /// Any order; the last of equal keys wins, as a `BTreeMap`'s does.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<VecMap<K, V>, D::Error> {
        struct MapVisitor<K, V>(PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> Visitor<'de> for MapVisitor<K, V> {
            type Value = VecMap<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<VecMap<K, V>, A::Error> {
                let mut entries = Vec::with_capacity(access.size_hint().unwrap_or(0).min(4096));
                while let Some(entry) = access.next_entry()? {
                    entries.push(entry);
                }
                Ok(entries.into_iter().collect())
            }
        }
        d.deserialize_map(MapVisitor(PhantomData))
    }
}

/// Borrowed entries in key order.
#[derive(Clone)]
pub struct Iter<'a, K, V>(std::slice::Iter<'a, (K, V)>);

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);
    fn next(&mut self) -> Option<(&'a K, &'a V)> {
        self.0.next().map(|(k, v)| (k, v))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
    fn nth(&mut self, n: usize) -> Option<(&'a K, &'a V)> {
        self.0.nth(n).map(|(k, v)| (k, v))
    }
}

impl<K, V> DoubleEndedIterator for Iter<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl<K, V> ExactSizeIterator for Iter<'_, K, V> {}
impl<K, V> FusedIterator for Iter<'_, K, V> {}

/// Entries in key order, values writable.
pub struct IterMut<'a, K, V>(std::slice::IterMut<'a, (K, V)>);

impl<'a, K, V> Iterator for IterMut<'a, K, V> {
    type Item = (&'a K, &'a mut V);
    fn next(&mut self) -> Option<(&'a K, &'a mut V)> {
        self.0.next().map(|(k, v)| (&*k, v))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<K, V> DoubleEndedIterator for IterMut<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (&*k, v))
    }
}

impl<K, V> ExactSizeIterator for IterMut<'_, K, V> {}
impl<K, V> FusedIterator for IterMut<'_, K, V> {}

impl<K, V> IntoIterator for VecMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a, K, V> IntoIterator for &'a VecMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;
    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}

impl<'a, K, V> IntoIterator for &'a mut VecMap<K, V> {
    type Item = (&'a K, &'a mut V);
    type IntoIter = IterMut<'a, K, V>;
    fn into_iter(self) -> IterMut<'a, K, V> {
        self.iter_mut()
    }
}

/// One key's place in a [`VecMap`], from [`VecMap::entry`].
pub enum Entry<'a, K, V> {
    Occupied(OccupiedEntry<'a, K, V>),
    Vacant(VacantEntry<'a, K, V>),
}

pub struct OccupiedEntry<'a, K, V> {
    map: &'a mut VecMap<K, V>,
    index: usize,
}

pub struct VacantEntry<'a, K, V> {
    map: &'a mut VecMap<K, V>,
    /// Where the key goes to keep the order.
    index: usize,
    key: K,
}

impl<'a, K, V> Entry<'a, K, V> {
    pub fn key(&self) -> &K {
        match self {
            Entry::Occupied(e) => e.key(),
            Entry::Vacant(e) => &e.key,
        }
    }

    pub fn or_insert(self, default: V) -> &'a mut V {
        self.or_insert_with(|| default)
    }

    pub fn or_insert_with(self, default: impl FnOnce() -> V) -> &'a mut V {
        match self {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(default()),
        }
    }

    pub fn or_default(self) -> &'a mut V
    where
        V: Default,
    {
        self.or_insert_with(V::default)
    }

    pub fn and_modify(self, f: impl FnOnce(&mut V)) -> Entry<'a, K, V> {
        match self {
            Entry::Occupied(mut e) => {
                f(e.get_mut());
                Entry::Occupied(e)
            }
            vacant => vacant,
        }
    }
}

impl<'a, K, V> OccupiedEntry<'a, K, V> {
    pub fn key(&self) -> &K {
        &self.map.entries[self.index].0
    }
    pub fn get(&self) -> &V {
        &self.map.entries[self.index].1
    }
    pub fn get_mut(&mut self) -> &mut V {
        &mut self.map.entries[self.index].1
    }
    pub fn into_mut(self) -> &'a mut V {
        &mut self.map.entries[self.index].1
    }
    pub fn insert(&mut self, value: V) -> V {
        std::mem::replace(self.get_mut(), value)
    }
    pub fn remove(self) -> V {
        self.map.entries.remove(self.index).1
    }
}

impl<'a, K, V> VacantEntry<'a, K, V> {
    pub fn key(&self) -> &K {
        &self.key
    }
    pub fn into_key(self) -> K {
        self.key
    }
    pub fn insert(self, value: V) -> &'a mut V {
        self.map.entries.insert(self.index, (self.key, value));
        &mut self.map.entries[self.index].1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (no dependency for the tests).
    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        *seed >> 33
    }

    fn same<K: Ord + Clone + fmt::Debug, V: PartialEq + Clone + fmt::Debug>(v: &VecMap<K, V>, b: &BTreeMap<K, V>) {
        assert_eq!(v.len(), b.len());
        assert!(v.iter().eq(b.iter()), "{v:?} != {b:?}");
        assert!(v.as_slice().windows(2).all(|w| w[0].0 < w[1].0), "sorted and unique");
    }

    #[test]
    fn behaves_as_a_btree_map_under_random_operations() {
        let mut seed = 7;
        let (mut v, mut b) = (VecMap::new(), BTreeMap::new());
        for step in 0..20_000u64 {
            let key = lcg(&mut seed) % 300;
            match lcg(&mut seed) % 8 {
                0..=2 => assert_eq!(v.insert(key, step), b.insert(key, step)),
                3 => assert_eq!(v.remove(&key), b.remove(&key)),
                4 => {
                    *v.entry(key).or_insert(0) += 1;
                    *b.entry(key).or_insert(0) += 1;
                }
                5 => {
                    let more: Vec<(u64, u64)> = (0..lcg(&mut seed) % 5).map(|i| (lcg(&mut seed) % 300, step + i)).collect();
                    v.extend(more.iter().copied());
                    b.extend(more.iter().copied());
                }
                6 => assert_eq!(v.get(&key), b.get(&key)),
                _ => {
                    if let (Some(x), Some(y)) = (v.get_mut(&key), b.get_mut(&key)) {
                        *x += 3;
                        *y += 3;
                    }
                }
            }
        }
        same(&v, &b);
        v.retain(|k, _| k % 3 == 0);
        b.retain(|k, _| k % 3 == 0);
        same(&v, &b);
        assert_eq!(v.first_key_value(), b.first_key_value());
        assert_eq!(v.last_key_value(), b.last_key_value());
    }

    #[test]
    fn collecting_sorts_and_the_last_duplicate_wins() {
        let pairs = [("b", 1), ("a", 2), ("b", 3), ("c", 4), ("a", 5), ("b", 6)];
        let v: VecMap<&str, i32> = pairs.into_iter().collect();
        let b: BTreeMap<&str, i32> = pairs.into_iter().collect();
        same(&v, &b);
        assert_eq!(v.as_slice(), &[("a", 5), ("b", 6), ("c", 4)]);
        // Exactly the room the entries need.
        assert_eq!(v.entries.capacity(), 3);
        let mut e = v.clone();
        e.extend([("c", 7), ("a", 8), ("d", 9), ("c", 10)]);
        assert_eq!(e.as_slice(), &[("a", 8), ("b", 6), ("c", 10), ("d", 9)]);
        let empty: VecMap<&str, i32> = std::iter::empty().collect();
        assert!(empty.is_empty());
    }

    #[test]
    fn appending_in_order_and_sorted_input_stay_cheap() {
        // Would take minutes if either were quadratic.
        let n = 200_000;
        let mut v = VecMap::new();
        for i in 0..n {
            v.insert(format!("{i:08}"), i);
        }
        assert_eq!(v.len(), n);
        let mut seed = 1;
        let shuffled: Vec<(u64, u64)> = (0..n as u64).map(|i| (lcg(&mut seed), i)).collect();
        let m: VecMap<u64, u64> = shuffled.iter().copied().collect();
        let b: BTreeMap<u64, u64> = shuffled.iter().copied().collect();
        same(&m, &b);
        let mut merged = m.clone();
        merged.extend(b.iter().map(|(k, v)| (*k, v + 1)));
        assert!(merged.iter().all(|(k, v)| *v == b[k] + 1));
    }

    #[test]
    fn entries_and_removal() {
        let mut v: VecMap<String, i32> = [("x".to_owned(), 1)].into();
        assert_eq!(v.entry("y".into()).key(), "y");
        v.entry("y".into()).and_modify(|n| *n += 1).or_insert(10);
        v.entry("x".into()).and_modify(|n| *n += 1).or_insert(10);
        *v.entry("w".into()).or_default() += 4;
        assert_eq!(v.as_slice(), &[("w".to_owned(), 4), ("x".to_owned(), 2), ("y".to_owned(), 10)]);
        assert_eq!(v["x"], 2);
        assert!(v.contains_key("w") && !v.contains_key("z"));
        assert_eq!(v.remove_entry("x"), Some(("x".to_owned(), 2)));
        assert_eq!(v.remove("x"), None);
        assert_eq!(v.pop_first(), Some(("w".to_owned(), 4)));
        assert_eq!(v.pop_last(), Some(("y".to_owned(), 10)));
        assert_eq!(v.pop_first(), None);
        if let Entry::Occupied(mut e) = VecMap::from([(1, 'a')]).entry(1) {
            assert_eq!(e.insert('b'), 'a');
            assert_eq!(e.remove(), 'b');
        } else {
            panic!("occupied");
        }
    }

    #[test]
    fn prints_and_serialises_as_a_btree_map() {
        let pairs = [("b".to_owned(), 2), ("a".to_owned(), 1), ("c".to_owned(), 3)];
        let v: VecMap<String, i32> = pairs.clone().into_iter().collect();
        let b: BTreeMap<String, i32> = pairs.into_iter().collect();
        assert_eq!(format!("{v:?}"), format!("{b:?}"));
        assert_eq!(format!("{v:#?}"), format!("{b:#?}"));
        assert_eq!(serde_json::to_string(&v).unwrap(), serde_json::to_string(&b).unwrap());
        let back: VecMap<String, i32> = serde_json::from_str(r#"{"z":1,"a":2,"z":3}"#).unwrap();
        let want: BTreeMap<String, i32> = serde_json::from_str(r#"{"z":1,"a":2,"z":3}"#).unwrap();
        same(&back, &want);
        assert_eq!(VecMap::from(b.clone()), v);
        assert_eq!(BTreeMap::from(v), b);
    }

    #[test]
    fn iterators_run_both_ways_and_know_their_length() {
        let mut v: VecMap<i32, i32> = (0..5).map(|i| (i, i * 10)).collect();
        assert_eq!(v.iter().len(), 5);
        assert_eq!(v.iter().next_back(), Some((&4, &40)));
        assert_eq!(v.iter().nth(2), Some((&2, &20)));
        assert_eq!(v.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
        for (_, x) in &mut v {
            *x += 1;
        }
        v.values_mut().for_each(|x| *x += 1);
        assert_eq!(v.values().copied().collect::<Vec<_>>(), vec![2, 12, 22, 32, 42]);
        assert_eq!(v.clone().into_values().sum::<i32>(), 110);
        assert_eq!(v.into_iter().map(|(k, _)| k).sum::<i32>(), 10);
    }
}
