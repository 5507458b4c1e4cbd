//! What a provider declares about itself: its configuration, its resource and
//! data-source types, and for every attribute how a change to it is applied.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A Terraform-style type constraint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Type {
    String,
    Number,
    Bool,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Object(BTreeMap<String, Type>),
    /// A fixed sequence of element types (`tuple([string, number])`).
    Tuple(Vec<Type>),
    /// Any type at all (Terraform's `any` / dynamic pseudo-type).
    Any,
    /// An object attribute that may be left out (`optional(T, default)` in a
    /// variable's type constraint); it then takes the default, or null.
    Optional(Box<Type>, Option<Box<crate::Value>>),
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::String => f.write_str("string"),
            Type::Number => f.write_str("number"),
            Type::Bool => f.write_str("bool"),
            Type::List(t) => write!(f, "list({t})"),
            Type::Set(t) => write!(f, "set({t})"),
            Type::Map(t) => write!(f, "map({t})"),
            Type::Object(attrs) => {
                f.write_str("object({")?;
                for (i, (k, t)) in attrs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} = {t}")?;
                }
                f.write_str("})")
            }
            Type::Tuple(elems) => {
                f.write_str("tuple([")?;
                for (i, t) in elems.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str("])")
            }
            Type::Any => f.write_str("any"),
            Type::Optional(t, None) => write!(f, "optional({t})"),
            Type::Optional(t, Some(d)) => write!(f, "optional({t}, {d})"),
        }
    }
}

/// Whether the user sets an attribute, the provider computes it, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Required,
    Optional,
    /// Set by the provider only.
    Computed,
    /// Set by the user, or computed by the provider when the user leaves it out.
    OptionalComputed,
}

/// How a change to an attribute reaches the real object. Ordered from least to
/// most disruptive, so the disruption of a change is the maximum over its
/// changed attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Disruption {
    /// In place, no disruption.
    Live,
    /// In place, but the guest (or service) restarts.
    Restart,
    /// The object is destroyed and created again.
    Replace,
    /// The change destroys data (e.g. shrinking a disk).
    DataLoss,
}

impl fmt::Display for Disruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Disruption::Live => "live",
            Disruption::Restart => "restart",
            Disruption::Replace => "replace",
            Disruption::DataLoss => "data-loss",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    pub ty: Type,
    pub presence: Presence,
    pub sensitive: bool,
    /// How a change to this attribute is applied.
    pub on_change: Disruption,
    pub description: String,
    /// For a computed attribute: the provider promises its value changes
    /// only when the object is replaced (an identifier, a path made of
    /// replace-only inputs). An in-place update then keeps it known, so
    /// what refers to it does not wait for the apply.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stable: bool,
}

impl Attribute {
    fn new(ty: Type, presence: Presence) -> Attribute {
        Attribute { ty, presence, sensitive: false, on_change: Disruption::Live, description: String::new(), stable: false }
    }
    pub fn required(ty: Type) -> Attribute {
        Attribute::new(ty, Presence::Required)
    }
    pub fn optional(ty: Type) -> Attribute {
        Attribute::new(ty, Presence::Optional)
    }
    pub fn computed(ty: Type) -> Attribute {
        Attribute::new(ty, Presence::Computed)
    }
    pub fn optional_computed(ty: Type) -> Attribute {
        Attribute::new(ty, Presence::OptionalComputed)
    }
    pub fn sensitive(mut self) -> Attribute {
        self.sensitive = true;
        self
    }
    pub fn on_change(mut self, d: Disruption) -> Attribute {
        self.on_change = d;
        self
    }
    /// Declares a computed attribute stable (see the `stable` field).
    pub fn stable(mut self) -> Attribute {
        self.stable = true;
        self
    }
    pub fn describe(mut self, text: &str) -> Attribute {
        self.description = text.to_owned();
        self
    }
    pub fn is_settable(&self) -> bool {
        self.presence != Presence::Computed
    }
}

/// How many times a nested block may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Nesting {
    /// At most one; the attribute value is an object or null.
    Single,
    /// Any number, ordered; the attribute value is a list of objects.
    List,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NestedBlock {
    pub nesting: Nesting,
    pub block: Block,
    /// How a change inside the block is applied when the provider does not
    /// refine it.
    pub on_change: Disruption,
}

/// The schema of a configuration body: attributes and nested blocks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Block {
    pub attributes: BTreeMap<String, Attribute>,
    pub blocks: BTreeMap<String, NestedBlock>,
    pub description: String,
}

impl Block {
    pub fn new(description: &str) -> Block {
        Block { description: description.to_owned(), ..Block::default() }
    }
    pub fn attr(mut self, name: &str, attr: Attribute) -> Block {
        self.attributes.insert(name.to_owned(), attr);
        self
    }
    pub fn block(mut self, name: &str, nesting: Nesting, block: Block, on_change: Disruption) -> Block {
        self.blocks.insert(name.to_owned(), NestedBlock { nesting, block, on_change });
        self
    }
    /// Names of attributes whose values are sensitive.
    pub fn is_sensitive(&self, name: &str) -> bool {
        self.attributes.get(name).is_some_and(|a| a.sensitive)
    }
}

/// Everything a provider declares.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderSchema {
    /// The body of the `provider "name" { ... }` block.
    pub provider: Block,
    pub resources: BTreeMap<String, Block>,
    pub data_sources: BTreeMap<String, Block>,
    /// What rollback restores exactly, per resource type; types not listed
    /// support neither (see [`crate::UndoSupport`]).
    #[serde(default)]
    pub undo: BTreeMap<String, crate::UndoSupport>,
}
