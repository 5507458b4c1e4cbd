//! The payloads of [`Value::List`](crate::Value::List) and
//! [`Value::Map`](crate::Value::Map): the elements plus which of
//! Terraform's collection types they are.
//!
//! Terraform tells a tuple (`["a", 1]`) from a list (`tolist(["a"])`) and a
//! set, and an object (`{a = 1}`) from a map (`tomap({a = 1})`): its `==`
//! compares types, and conversions and unification depend on them. The
//! kind is one byte beside the elements, so it costs no allocation. Equality
//! of these payloads (and so of [`Value`](crate::Value)) ignores the kind:
//! what the engine compares (plans, state, provider results) is data, and
//! the language's `==`, which compares types too, is the engine's.
//! The kind is not serialised either: stored values are typed again by the
//! schema or the configuration that reads them.
//!
//! The elements sit behind an [`Arc`], so a copy of a list or map is a
//! reference count, not a walk of the tree: state, the plan's prior and
//! planned values, the planner's instance values and the providers' review
//! share one tree per instance instead of holding four to six copies.
//! Values keep value semantics: writing through `DerefMut` (or `&mut`
//! iteration) copies the elements first when they are shared
//! ([`Arc::make_mut`]), so a change is never seen through another copy.
//!
//! A map's entries are a [`VecMap`]: one sorted vector instead of a
//! `BTreeMap`'s eleven-entry nodes, which matters at hundreds of thousands of
//! small objects (see that module).

use crate::Value;
use crate::vec_map::{self, VecMap};
use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// Which sequence type a [`ListValue`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ListKind {
    /// Structural: each element has its own type (`[...]` literals).
    #[default]
    Tuple,
    /// Every element of one type (`tolist`, `list(T)`).
    List,
    /// Unordered and unique, kept sorted (`toset`, `set(T)`).
    Set,
}

/// Which mapping type a [`MapValue`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MapKind {
    /// Structural: each attribute has its own type (`{...}` literals).
    #[default]
    Object,
    /// Every element of one type (`tomap`, `map(T)`).
    Map,
}

/// Elements of a tuple, list or set (shared: see the module docs).
#[derive(Debug, Clone, Default)]
pub struct ListValue {
    pub items: Arc<Vec<Value>>,
    pub kind: ListKind,
}

/// Attributes of an object, or elements of a map (shared: see the module
/// docs).
#[derive(Debug, Clone, Default)]
pub struct MapValue {
    pub entries: Arc<VecMap<String, Value>>,
    pub kind: MapKind,
}

impl ListValue {
    pub fn new(items: Vec<Value>, kind: ListKind) -> ListValue {
        ListValue { items: Arc::new(items), kind }
    }

    /// The elements, copied only if another value shares them.
    pub fn into_vec(self) -> Vec<Value> {
        Arc::unwrap_or_clone(self.items)
    }

    /// Whether both are the same shared elements (then they are equal
    /// without looking at them).
    pub fn shares(&self, other: &ListValue) -> bool {
        Arc::ptr_eq(&self.items, &other.items)
    }
}

impl MapValue {
    pub fn new(entries: VecMap<String, Value>, kind: MapKind) -> MapValue {
        MapValue { entries: Arc::new(entries), kind }
    }

    /// The entries, copied only if another value shares them.
    pub fn into_map(self) -> VecMap<String, Value> {
        Arc::unwrap_or_clone(self.entries)
    }

    /// Whether both are the same shared entries (then they are equal
    /// without looking at them).
    pub fn shares(&self, other: &MapValue) -> bool {
        Arc::ptr_eq(&self.entries, &other.entries)
    }
}

impl PartialEq for ListValue {
    fn eq(&self, other: &ListValue) -> bool {
        self.shares(other) || self.items == other.items
    }
}

impl PartialEq for MapValue {
    fn eq(&self, other: &MapValue) -> bool {
        self.shares(other) || self.entries == other.entries
    }
}

impl Deref for ListValue {
    type Target = Vec<Value>;
    fn deref(&self) -> &Vec<Value> {
        &self.items
    }
}

/// Copies the elements first if they are shared.
impl DerefMut for ListValue {
    fn deref_mut(&mut self) -> &mut Vec<Value> {
        Arc::make_mut(&mut self.items)
    }
}

impl Deref for MapValue {
    type Target = VecMap<String, Value>;
    fn deref(&self) -> &VecMap<String, Value> {
        &self.entries
    }
}

/// Copies the entries first if they are shared.
impl DerefMut for MapValue {
    fn deref_mut(&mut self) -> &mut VecMap<String, Value> {
        Arc::make_mut(&mut self.entries)
    }
}

/// A plain vector is a tuple.
impl From<Vec<Value>> for ListValue {
    fn from(items: Vec<Value>) -> ListValue {
        ListValue::new(items, ListKind::Tuple)
    }
}

/// A plain map is an object.
impl From<VecMap<String, Value>> for MapValue {
    fn from(entries: VecMap<String, Value>) -> MapValue {
        MapValue::new(entries, MapKind::Object)
    }
}

/// A plain map is an object (converted in one pass: it is sorted).
impl From<BTreeMap<String, Value>> for MapValue {
    fn from(entries: BTreeMap<String, Value>) -> MapValue {
        MapValue::new(entries.into(), MapKind::Object)
    }
}

impl FromIterator<Value> for ListValue {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> ListValue {
        ListValue::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl FromIterator<(String, Value)> for MapValue {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> MapValue {
        MapValue::from(iter.into_iter().collect::<VecMap<_, _>>())
    }
}

impl IntoIterator for ListValue {
    type Item = Value;
    type IntoIter = std::vec::IntoIter<Value>;
    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

impl<'a> IntoIterator for &'a ListValue {
    type Item = &'a Value;
    type IntoIter = std::slice::Iter<'a, Value>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<'a> IntoIterator for &'a mut ListValue {
    type Item = &'a mut Value;
    type IntoIter = std::slice::IterMut<'a, Value>;
    fn into_iter(self) -> Self::IntoIter {
        Arc::make_mut(&mut self.items).iter_mut()
    }
}

impl IntoIterator for MapValue {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.into_map().into_iter()
    }
}

impl<'a> IntoIterator for &'a MapValue {
    type Item = (&'a String, &'a Value);
    type IntoIter = vec_map::Iter<'a, String, Value>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

impl<'a> IntoIterator for &'a mut MapValue {
    type Item = (&'a String, &'a mut Value);
    type IntoIter = vec_map::IterMut<'a, String, Value>;
    fn into_iter(self) -> Self::IntoIter {
        Arc::make_mut(&mut self.entries).iter_mut()
    }
}
