//! The expression tree the configuration model keeps: what the evaluator,
//! the template renderer, static references and type constraints read.
//!
//! hcl-edit's tree is made for editing: every node keeps its decor, its
//! source representation and spans of 64-bit offsets, and numbers are read
//! from their text on every evaluation. This tree is made for evaluation:
//! small nodes, children in boxed slices, spans as 32-bit offsets into the
//! file (the file id is `config::Expr`'s), names shared as `Arc<str>` (so a
//! model is `Send + Sync`), numbers converted and string literals put in
//! Unicode normal form C once, and templates already flattened into HCL's
//! token sequence with strip markers and `<<-` indentation applied (see
//! `lower/template.rs`). `lower/expr.rs` builds it from hcl-edit's tree.

use std::ops::Range;
use std::sync::Arc;
use strata_provider::Number;

pub use hcl::edit::expr::{BinaryOperator, UnaryOperator};

/// A name (variable, attribute, function, bound iterator, object key):
/// shared, because the same few names recur in every block.
pub type Name = Arc<str>;

/// A byte range into the expression's file, or none for a node built in
/// code. Offsets beyond `u32` (a file over 4 GiB) saturate: the span is
/// then wrong, never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    start: u32,
    end: u32,
}

impl Offsets {
    const NONE: Offsets = Offsets { start: u32::MAX, end: u32::MAX };

    pub fn new(range: Option<Range<usize>>) -> Offsets {
        let narrow = |at: usize| u32::try_from(at).unwrap_or(u32::MAX - 1).min(u32::MAX - 1);
        match range {
            Some(r) => Offsets { start: narrow(r.start), end: narrow(r.end) },
            None => Offsets::NONE,
        }
    }

    pub fn range(self) -> Option<Range<usize>> {
        (self != Offsets::NONE).then(|| self.start as usize..self.end as usize)
    }
}

/// One expression with its place in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    offsets: Offsets,
}

impl Node {
    pub fn new(kind: Kind, range: Option<Range<usize>>) -> Node {
        Node { kind, offsets: Offsets::new(range) }
    }

    /// A literal made in code (the index of `x.0`, as `x[0]`).
    pub fn number(n: Number) -> Node {
        Node::new(Kind::Number(n), None)
    }

    /// The byte range of the whole expression in its file.
    pub fn span(&self) -> Option<Range<usize>> {
        self.offsets.range()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    /// Inline: a `Number` is two words, and one that is an integer fitting
    /// an `i64` (counts, ports, sizes: most literals) allocates nothing.
    Number(Number),
    /// A number literal whose text does not read as a number: the message,
    /// reported where it is evaluated (as when the text was read then).
    BadNumber(Box<str>),
    /// A string literal, in normal form C.
    String(Name),
    Array(Box<[Node]>),
    Object(Box<[(ObjectKey, Node)]>),
    /// A quoted string with interpolations or directives, or a heredoc.
    Template(Box<Template>),
    Parenthesis(Box<Node>),
    Variable(Name),
    Conditional(Box<Conditional>),
    FuncCall(Box<FuncCall>),
    Traversal(Box<Traversal>),
    Unary(Box<Unary>),
    Binary(Box<Binary>),
    For(Box<ForExpr>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ObjectKey {
    /// `name = ...`: the name is the key.
    Ident(Name),
    /// `"name" = ...` or `(expr) = ...`: boxed, so the far more common
    /// identifier key keeps an object's entries small.
    Expr(Box<Node>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Conditional {
    pub cond: Node,
    pub if_true: Node,
    pub if_false: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FuncCall {
    /// The function's name without a namespace (`provider::p::f` is `f`).
    pub name: Name,
    pub args: Box<[Node]>,
    /// `f(a, list...)`: the last argument's elements are the rest.
    pub expand_final: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Traversal {
    pub root: Node,
    pub ops: Box<[Operator]>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operator {
    GetAttr(Name),
    /// `[expr]`: boxed, so the far more common `.name` keeps a traversal's
    /// operators at the size of a name.
    Index(Box<Node>),
    /// `x.0`.
    LegacyIndex(u64),
    /// `.*`: applies the attribute names after it to each element.
    AttrSplat,
    /// `[*]`: applies everything after it to each element.
    FullSplat,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Unary {
    pub op: UnaryOperator,
    pub expr: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Binary {
    pub op: BinaryOperator,
    pub lhs: Node,
    pub rhs: Node,
}

/// `[for k, v in coll : value if cond]` or `{for k, v in coll : key => value... if cond}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ForExpr {
    pub key_var: Option<Name>,
    pub value_var: Name,
    pub collection: Node,
    /// Set for an object `for`.
    pub key: Option<Node>,
    pub value: Node,
    pub cond: Option<Node>,
    /// `key => value...`: values with the same key are grouped in a list.
    pub grouping: bool,
}

/// A template as HCL's flat token sequence, strip markers and `<<-`
/// indentation already applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// A template that is one interpolation and nothing else is that value,
    /// with its type (`"${1.0}"` is the number 1); `parts` is then that one
    /// interpolation.
    pub lone: bool,
    pub parts: Box<[Part]>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(Box<str>),
    Interpolation(Node),
    /// `%{ if cond }`, with the indexes of its `Else` (if any) and `EndIf`;
    /// the condition boxed, so text and interpolations, the common parts,
    /// are not padded to the directive's size.
    If { cond: Box<Node>, else_at: Option<u32>, end: u32 },
    Else,
    EndIf,
    /// `%{ for k, v in coll }`, with the index of its `EndFor`.
    For(Box<ForDirective>),
    EndFor,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ForDirective {
    pub key_var: Option<Name>,
    pub value_var: Name,
    pub collection: Node,
    pub end: u32,
}

// The sizes the model's memory depends on (issue 12): every expression is
// a `Node`, every `.name` an `Operator`, every object entry an `ObjectKey`
// and a `Node`, every piece of a template a `Part`. A change that grows one
// fails to compile here instead of costing every block unnoticed.
const _: () = assert!(std::mem::size_of::<Node>() == 32);
const _: () = assert!(std::mem::size_of::<Operator>() == 24);
const _: () = assert!(std::mem::size_of::<ObjectKey>() == 16);
const _: () = assert!(std::mem::size_of::<Part>() == 32);

#[cfg(test)]
mod tests {
    use super::*;

    /// The sizes the model's memory depends on (issue 12); a change shows here.
    #[test]
    fn nodes_are_small() {
        assert_eq!(std::mem::size_of::<Node>(), 32);
        assert_eq!(std::mem::size_of::<Operator>(), 24);
        assert_eq!(std::mem::size_of::<ObjectKey>(), 16);
        assert_eq!(std::mem::size_of::<Part>(), 32);
    }

    #[test]
    fn offsets_keep_ranges_and_none() {
        assert_eq!(Offsets::new(Some(3..9)).range(), Some(3..9));
        assert_eq!(Offsets::new(None).range(), None);
        assert!(Offsets::new(Some(0..usize::MAX)).range().is_some());
    }
}
