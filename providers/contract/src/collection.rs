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

use crate::Value;
use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};

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

/// Elements of a tuple, list or set.
#[derive(Debug, Clone, Default)]
pub struct ListValue {
    pub items: Vec<Value>,
    pub kind: ListKind,
}

/// Attributes of an object, or elements of a map.
#[derive(Debug, Clone, Default)]
pub struct MapValue {
    pub entries: BTreeMap<String, Value>,
    pub kind: MapKind,
}

impl ListValue {
    pub fn new(items: Vec<Value>, kind: ListKind) -> ListValue {
        ListValue { items, kind }
    }

    pub fn into_vec(self) -> Vec<Value> {
        self.items
    }
}

impl MapValue {
    pub fn new(entries: BTreeMap<String, Value>, kind: MapKind) -> MapValue {
        MapValue { entries, kind }
    }

    pub fn into_map(self) -> BTreeMap<String, Value> {
        self.entries
    }
}

impl PartialEq for ListValue {
    fn eq(&self, other: &ListValue) -> bool {
        self.items == other.items
    }
}

impl PartialEq for MapValue {
    fn eq(&self, other: &MapValue) -> bool {
        self.entries == other.entries
    }
}

impl Deref for ListValue {
    type Target = Vec<Value>;
    fn deref(&self) -> &Vec<Value> {
        &self.items
    }
}

impl DerefMut for ListValue {
    fn deref_mut(&mut self) -> &mut Vec<Value> {
        &mut self.items
    }
}

impl Deref for MapValue {
    type Target = BTreeMap<String, Value>;
    fn deref(&self) -> &BTreeMap<String, Value> {
        &self.entries
    }
}

impl DerefMut for MapValue {
    fn deref_mut(&mut self) -> &mut BTreeMap<String, Value> {
        &mut self.entries
    }
}

/// A plain vector is a tuple.
impl From<Vec<Value>> for ListValue {
    fn from(items: Vec<Value>) -> ListValue {
        ListValue { items, kind: ListKind::Tuple }
    }
}

/// A plain map is an object.
impl From<BTreeMap<String, Value>> for MapValue {
    fn from(entries: BTreeMap<String, Value>) -> MapValue {
        MapValue { entries, kind: MapKind::Object }
    }
}

impl FromIterator<Value> for ListValue {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> ListValue {
        ListValue::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl FromIterator<(String, Value)> for MapValue {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> MapValue {
        MapValue::from(iter.into_iter().collect::<BTreeMap<_, _>>())
    }
}

impl IntoIterator for ListValue {
    type Item = Value;
    type IntoIter = std::vec::IntoIter<Value>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
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
        self.items.iter_mut()
    }
}

impl IntoIterator for MapValue {
    type Item = (String, Value);
    type IntoIter = std::collections::btree_map::IntoIter<String, Value>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a> IntoIterator for &'a MapValue {
    type Item = (&'a String, &'a Value);
    type IntoIter = std::collections::btree_map::Iter<'a, String, Value>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

impl<'a> IntoIterator for &'a mut MapValue {
    type Item = (&'a String, &'a mut Value);
    type IntoIter = std::collections::btree_map::IterMut<'a, String, Value>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter_mut()
    }
}
