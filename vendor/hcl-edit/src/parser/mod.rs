//! An HCL parser which keeps track of whitespace, comments and span information.

mod error;
mod expr;
mod fast;
mod nesting;
mod number;
mod pratt;
mod repr;
mod state;
mod string;
mod structure;
mod template;
// STRATA PATCH: upstream's parser tests need its unpublished `testdata`
// crate; the fast parser's differential tests (`fast/tests.rs`) run instead.
#[cfg(all(test, strata_upstream_testdata))]
mod tests;
mod trivia;

pub use self::error::{Error, Location};
use self::expr::root_expr;
use self::structure::body;
use self::template::template;
use crate::expr::Expression;
use crate::structure::Body;
use crate::template::Template;

mod prelude {
    pub(super) use winnow::error::{ContextError, StrContext, StrContextValue};
    pub(super) use winnow::stream::Stream;
    pub(super) use winnow::{dispatch, ModalParser, ModalResult, Parser};

    pub(super) type Input<'a> =
        winnow::stream::Stateful<winnow::stream::LocatingSlice<&'a str>, NestingState>;

    use super::nesting::NestingState;

    /// Creates a new parser input from `s`.
    pub(super) fn new_input(s: &str) -> Input<'_> {
        Input {
            input: winnow::stream::LocatingSlice::new(s),
            state: NestingState::default(),
        }
    }
}

use self::prelude::*;

/// Parse an input into a [`Body`].
///
/// # Errors
///
/// Returns an error if the input does not resemble a valid HCL body.
pub fn parse_body(input: &str) -> Result<Body, Error> {
    let mut body = parse_body_spanned(input)?;
    body.despan(input);
    Ok(body)
}

/// STRATA PATCH: parse an input into a [`Body`] whose decor (whitespace and
/// comments around each node) is left as spans into `input` instead of being
/// copied out of it: for readers that use the tree's values and spans and never
/// print it, which saves a string per node. Printing such a body writes default
/// spacing where the source had its own.
///
/// # Errors
///
/// Returns an error if the input does not resemble a valid HCL body.
pub fn parse_body_spanned(input: &str) -> Result<Body, Error> {
    // STRATA PATCH: the fast parser first; it declines what it does not
    // handle, and every error, to the winnow parser (see `fast`).
    match fast::parse_body(input, 0) {
        Some(body) => Ok(body),
        None => parse_complete(input, body),
    }
}

/// STRATA PATCH: parse the structures in `input[range]` into a [`Body`], as
/// [`parse_body_spanned`] does, with every span counted from the start of
/// `input` (so pieces of one file can be parsed and dropped one by one).
/// `range` must start where a structure may start and end where one ends;
/// else this errs, and the error (its location is within the piece) is not
/// the whole file's.
///
/// # Errors
///
/// Returns an error if the piece does not resemble a valid HCL body.
pub fn parse_body_spanned_range(input: &str, range: std::ops::Range<usize>) -> Result<Body, Error> {
    let Some(upto) = input.get(..range.end) else {
        return parse_body_spanned(input);
    };
    if !upto.is_char_boundary(range.start) {
        return parse_body_spanned(input);
    }
    if let Some(body) = fast::parse_body(upto, range.start) {
        return Ok(body);
    }
    let mut stream = new_input(upto);
    let _ = stream.next_slice(range.start);
    body.parse(stream).map_err(|err| Error::from_parse_error(&err))
}

/// STRATA PATCH: parse the structures in `input[range]` into a [`Body`], as
/// [`parse_body`] does (decor copied out of the input), with every span
/// counted from the start of `input`: a large file can be parsed, used and
/// dropped one piece of whole structures at a time. `range` must start where
/// a structure may start and end where one ends; else this errs (or, for a
/// range that does not fall on character boundaries, parses all of `input`,
/// as [`parse_body_spanned_range`] does).
///
/// # Errors
///
/// Returns an error if the piece does not resemble a valid HCL body; its
/// location is within the piece and it is not the whole file's.
pub fn parse_body_range(input: &str, range: std::ops::Range<usize>) -> Result<Body, Error> {
    let mut body = parse_body_spanned_range(input, range)?;
    body.despan(input);
    Ok(body)
}

/// Parse an input into an [`Expression`].
///
/// # Errors
///
/// Returns an error if the input does not resemble a valid HCL expression.
pub fn parse_expr(input: &str) -> Result<Expression, Error> {
    let mut expr = parse_complete(input, root_expr)?;
    expr.despan(input);
    Ok(expr)
}

/// Parse an input into a [`Template`].
///
/// # Errors
///
/// Returns an error if the input does not resemble a valid HCL template.
pub fn parse_template(input: &str) -> Result<Template, Error> {
    let mut template = parse_complete(input, template)?;
    template.despan(input);
    Ok(template)
}

fn parse_complete<'a, P, O>(input: &'a str, mut parser: P) -> Result<O, Error>
where
    P: ModalParser<Input<'a>, O, ContextError>,
{
    let input = new_input(input);

    parser
        .parse(input)
        .map_err(|err| Error::from_parse_error(&err))
}
