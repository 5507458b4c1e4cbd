//! Expressions of the fast parser: terms, traversals, operators,
//! conditionals, collections and `for` expressions, each mirroring its
//! winnow counterpart in `parser/expr.rs`.

use super::{Cursor, Decline, Fast};
use crate::expr::{
    Array, BinaryOperator, Expression, ForCond, ForExpr, ForIntro, FuncArgs, FuncCall, FuncName,
    Object, ObjectKey, ObjectValue, ObjectValueAssignment, ObjectValueTerminator, Parenthesis,
    Splat, TraversalOperator, UnaryOp, UnaryOperator,
};
use crate::parser::expr::UniqueKeys;
use crate::parser::nesting::MAX_OPERATOR_DEPTH;
use crate::parser::state::ExprParseState;
use crate::{Decorate, Decorated, Formatted, Ident, Number, RawString, SetSpan, Spanned};
use std::ops::Range;
use std::str::FromStr;

impl Cursor<'_> {
    fn ws_or_sp(&mut self, state: &ExprParseState) -> Fast<Range<usize>> {
        if state.newlines_allowed() {
            self.ws()
        } else {
            self.sp()
        }
    }

    /// An expression not nested in another one (an attribute value).
    pub(super) fn root_expr(&mut self) -> Fast<Expression> {
        let mut state = ExprParseState::default();
        self.operator_scope(|c| c.expr_inner(&mut state))?;
        Ok(state.into_expr())
    }

    pub(super) fn expr(&mut self) -> Fast<Expression> {
        let mut state = ExprParseState::default();
        self.nested(|c| c.expr_inner(&mut state))?;
        Ok(state.into_expr())
    }

    pub(super) fn multiline_expr(&mut self) -> Fast<Expression> {
        let mut state = ExprParseState::default();
        state.allow_newlines();
        self.nested(|c| c.expr_inner(&mut state))?;
        Ok(state.into_expr())
    }

    fn expr_with_state(&mut self, state: &ExprParseState) -> Fast<Expression> {
        let mut state = state.clone();
        self.nested(|c| c.expr_inner(&mut state))?;
        Ok(state.into_expr())
    }

    fn expr_term_with_state(&mut self, state: &ExprParseState) -> Fast<Expression> {
        let mut state = state.clone();
        self.expr_term_inner(&mut state)?;
        Ok(state.into_expr())
    }

    /// winnow's `decorated(ws, parse, ws)` around an expression.
    pub(super) fn ws_decorated(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Fast<Expression>,
    ) -> Fast<Expression> {
        let prefix = self.ws()?;
        let start = self.pos;
        let mut expr = parse(self)?;
        expr.set_span(start..self.pos);
        let suffix = self.ws()?;
        let decor = expr.decor_mut();
        decor.set_prefix(RawString::from_span(prefix));
        decor.set_suffix(RawString::from_span(suffix));
        Ok(expr)
    }

    pub(super) fn ws_decorated_ident(&mut self) -> Fast<Decorated<Ident>> {
        let prefix = self.ws()?;
        let mut ident = self.ident()?;
        let suffix = self.ws()?;
        let decor = ident.decor_mut();
        decor.set_prefix(RawString::from_span(prefix));
        decor.set_suffix(RawString::from_span(suffix));
        Ok(ident)
    }

    fn expr_inner(&mut self, state: &mut ExprParseState) -> Fast<()> {
        let start = self.pos;
        self.expr_term_inner(state)?;
        loop {
            let checkpoint = self.pos;
            let suffix = self.ws_or_sp(state)?;
            // winnow peeks two characters; with fewer left nothing follows.
            let (Some(first), Some(second)) = (self.peek(), self.peek_at(1)) else {
                self.pos = checkpoint;
                return Ok(());
            };
            if first == b'?' {
                state.on_ws(suffix);
                self.conditional(state)?;
                state.on_span(start..self.pos);
                return Ok(());
            }
            let comment = first == b'/' && (second == b'/' || second == b'*');
            let operator = (first == b'=' && second == b'=')
                || matches!(
                    first,
                    b'!' | b'<' | b'>' | b'+' | b'-' | b'*' | b'/' | b'%' | b'&' | b'|'
                );
            self.pos = checkpoint;
            if comment || !operator {
                return Ok(());
            }
            self.binary_ops(state)?;
            state.on_span(start..self.pos);
        }
    }

    fn expr_term_inner(&mut self, state: &mut ExprParseState) -> Fast<()> {
        let start = self.pos;
        match self.peek() {
            Some(b'"') => self.stringlike(state)?,
            Some(b'[') => self.array(state)?,
            Some(b'{') => self.object(state)?,
            Some(b'0'..=b'9') => self.number(state)?,
            Some(b'-') => self.minus(state)?,
            Some(b'!') => self.unary_op(state)?,
            Some(b'(') => self.parenthesis(state)?,
            Some(b'<') => self.heredoc(state)?,
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => self.identlike(state)?,
            // Non-ASCII identifiers and errors.
            _ => return Err(Decline),
        }
        state.on_span(start..self.pos);

        let checkpoint = self.pos;
        let suffix = self.ws_or_sp(state)?;
        match (self.peek(), self.peek_at(1)) {
            (Some(first @ (b'.' | b'[')), Some(second)) if !(first == b'.' && second == b'.') => {
                state.on_ws(suffix);
                self.traversal(state)?;
                state.on_span(start..self.pos);
            }
            _ => self.pos = checkpoint,
        }
        Ok(())
    }

    fn stringlike(&mut self, state: &mut ExprParseState) -> Fast<()> {
        match self.quoted()? {
            super::string::Quoted::String(string) => {
                state.on_expr_term(Expression::String(Decorated::new(string)));
            }
            super::string::Quoted::Template(template) => {
                state.on_expr_term(Expression::StringTemplate(template));
            }
        }
        Ok(())
    }

    fn number(&mut self, state: &mut ExprParseState) -> Fast<()> {
        let start = self.pos;
        let number = self.number_value()?;
        let mut number = Formatted::new(number);
        number.set_repr(self.slice(start..self.pos)?);
        state.on_expr_term(Expression::Number(number));
        Ok(())
    }

    /// winnow's `alt((neg_number, unary_op))`: a `-` before a number (after
    /// inline space) is part of the number literal.
    fn minus(&mut self, state: &mut ExprParseState) -> Fast<()> {
        let start = self.pos;
        self.pos += 1;
        self.sp()?;
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos = start;
            return self.unary_op(state);
        }
        let number = self.number_value()?;
        let mut number = Formatted::new(-number);
        number.set_repr(self.slice(start..self.pos)?);
        state.on_expr_term(Expression::Number(number));
        Ok(())
    }

    /// winnow's `number`: a float (fraction and/or exponent), else an
    /// integer, else (beyond `u64`) an integer-valued float.
    fn number_value(&mut self) -> Fast<Number> {
        let start = self.pos;
        self.digits();
        let mut float = false;
        if self.peek() == Some(b'.') && matches!(self.peek_at(1), Some(b'0'..=b'9')) {
            self.pos += 1;
            self.digits();
            float = true;
            if matches!(self.peek(), Some(b'e' | b'E')) {
                self.exponent()?;
            }
        } else if matches!(self.peek(), Some(b'e' | b'E')) {
            self.exponent()?;
            float = true;
        }
        let text = self.slice(start..self.pos)?;
        if !float {
            if let Ok(integer) = u64::from_str(text) {
                return Ok(Number::from(integer));
            }
        }
        let float = f64::from_str(text).map_err(|_| Decline)?;
        // As `number.rs`'s `finite_number` (STRATA PATCH 1).
        Number::from_f64(if float.is_infinite() { f64::MAX } else { float }).ok_or(Decline)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn exponent(&mut self) -> Fast<()> {
        self.pos += 1;
        if matches!(self.peek(), Some(b'+' | b'-')) {
            self.pos += 1;
        }
        if self.digits() == 0 {
            return Err(Decline);
        }
        Ok(())
    }

    fn traversal(&mut self, state: &mut ExprParseState) -> Fast<()> {
        let mut operators = Vec::new();
        loop {
            let checkpoint = self.pos;
            let prefix = self.ws_or_sp(state)?;
            let start = self.pos;
            let operator = match self.peek() {
                Some(b'.') if !self.at(b"..") => {
                    self.pos += 1;
                    self.dot_operator()?
                }
                Some(b'[') => {
                    self.pos += 1;
                    self.bracket_operator()?
                }
                _ => {
                    self.pos = checkpoint;
                    break;
                }
            };
            let mut operator = Decorated::new(operator);
            operator.set_span(start..self.pos);
            operator.decor_mut().set_prefix(RawString::from_span(prefix));
            operators.push(operator);
        }
        if operators.is_empty() {
            return Err(Decline);
        }
        state.on_traversal(operators);
        Ok(())
    }

    /// After a `.`: `*`, a legacy index or an attribute name.
    fn dot_operator(&mut self) -> Fast<TraversalOperator> {
        let prefix = self.ws()?;
        let start = self.pos;
        let mut operator = match self.peek() {
            Some(b'*') => {
                self.pos += 1;
                TraversalOperator::AttrSplat(Decorated::new(Splat))
            }
            Some(b'0'..=b'9') => {
                // winnow's `dec_uint` takes a lone `0` before more digits.
                if self.peek() == Some(b'0') && matches!(self.peek_at(1), Some(b'0'..=b'9')) {
                    return Err(Decline);
                }
                self.digits();
                let index = u64::from_str(self.slice(start..self.pos)?).map_err(|_| Decline)?;
                TraversalOperator::LegacyIndex(index.into())
            }
            _ => TraversalOperator::GetAttr(self.ident()?),
        };
        operator.set_span(start..self.pos);
        operator.decor_mut().set_prefix(RawString::from_span(prefix));
        Ok(operator)
    }

    /// After a `[`: `*]` or an index expression and `]`.
    fn bracket_operator(&mut self) -> Fast<TraversalOperator> {
        let prefix = self.ws()?;
        let start = self.pos;
        let mut operator = if self.peek() == Some(b'*') {
            self.pos += 1;
            TraversalOperator::FullSplat(Decorated::new(Splat))
        } else {
            TraversalOperator::Index(self.multiline_expr()?)
        };
        operator.set_span(start..self.pos);
        let suffix = self.ws()?;
        let decor = operator.decor_mut();
        decor.set_prefix(RawString::from_span(prefix));
        decor.set_suffix(RawString::from_span(suffix));
        self.expect(b']')?;
        Ok(operator)
    }

    fn unary_op(&mut self, state: &mut ExprParseState) -> Fast<()> {
        let start = self.pos;
        let operator = match self.peek() {
            Some(b'-') => UnaryOperator::Neg,
            Some(b'!') => UnaryOperator::Not,
            _ => return Err(Decline),
        };
        self.pos += 1;
        let mut operator = Spanned::new(operator);
        operator.set_span(start..self.pos);
        let prefix = self.sp()?;
        let expr_start = self.pos;
        let mut expr = self.nested(|c| c.expr_term_with_state(state))?;
        expr.set_span(expr_start..self.pos);
        expr.decor_mut().set_prefix(RawString::from_span(prefix));
        state.on_expr_term(UnaryOp::new(operator, expr));
        Ok(())
    }

    fn binary_ops(&mut self, state: &mut ExprParseState) -> Fast<()> {
        let mut ops = Vec::new();
        loop {
            let checkpoint = self.pos;
            let prefix = self.ws_or_sp(state)?;
            let start = self.pos;
            let Some(operator) = self.binary_operator() else {
                if ops.is_empty() {
                    return Err(Decline);
                }
                self.pos = checkpoint;
                break;
            };
            let mut operator = Decorated::new(operator);
            operator.set_span(start..self.pos);
            let suffix = self.ws_or_sp(state)?;
            let decor = operator.decor_mut();
            decor.set_prefix(RawString::from_span(prefix));
            decor.set_suffix(RawString::from_span(suffix));
            let expr = self.expr_term_with_state(state)?;
            if self.operator_depth + ops.len() + 1 > MAX_OPERATOR_DEPTH {
                return Err(Decline);
            }
            ops.push((operator, expr));
        }
        self.operator_depth += ops.len();
        state.on_binary_ops(ops);
        Ok(())
    }

    fn binary_operator(&mut self) -> Option<BinaryOperator> {
        let second = self.peek_at(1);
        let (operator, len) = match self.peek()? {
            b'=' if second == Some(b'=') => (BinaryOperator::Eq, 2),
            b'!' if second == Some(b'=') => (BinaryOperator::NotEq, 2),
            b'<' if second == Some(b'=') => (BinaryOperator::LessEq, 2),
            b'<' => (BinaryOperator::Less, 1),
            b'>' if second == Some(b'=') => (BinaryOperator::GreaterEq, 2),
            b'>' => (BinaryOperator::Greater, 1),
            b'+' => (BinaryOperator::Plus, 1),
            b'-' => (BinaryOperator::Minus, 1),
            b'*' => (BinaryOperator::Mul, 1),
            b'/' if !matches!(second, Some(b'/' | b'*')) => (BinaryOperator::Div, 1),
            b'%' => (BinaryOperator::Mod, 1),
            b'&' if second == Some(b'&') => (BinaryOperator::And, 2),
            b'|' if second == Some(b'|') => (BinaryOperator::Or, 2),
            _ => return None,
        };
        self.pos += len;
        Some(operator)
    }

    fn conditional(&mut self, state: &mut ExprParseState) -> Fast<()> {
        self.expect(b'?')?;
        let prefix = self.ws_or_sp(state)?;
        let start = self.pos;
        let mut true_expr = self.expr_with_state(state)?;
        true_expr.set_span(start..self.pos);
        let suffix = self.ws_or_sp(state)?;
        let decor = true_expr.decor_mut();
        decor.set_prefix(RawString::from_span(prefix));
        decor.set_suffix(RawString::from_span(suffix));
        self.expect(b':')?;
        let prefix = self.ws_or_sp(state)?;
        let start = self.pos;
        let mut false_expr = self.expr_with_state(state)?;
        false_expr.set_span(start..self.pos);
        false_expr.decor_mut().set_prefix(RawString::from_span(prefix));
        state.on_conditional(true_expr, false_expr);
        Ok(())
    }

    fn identlike(&mut self, state: &mut ExprParseState) -> Fast<()> {
        let (name, span) = self.ident_str()?;
        let checkpoint = self.pos;
        let suffix = self.ws_or_sp(state)?;
        let expr = match (self.peek(), self.peek_at(1)) {
            // Namespaced functions are left to winnow.
            (Some(b':'), Some(b':')) => return Err(Decline),
            (Some(b'('), Some(_)) => {
                let mut ident = Decorated::new(Ident::new_unchecked(name));
                ident.decor_mut().set_suffix(RawString::from_span(suffix));
                ident.set_span(span);
                let args = self.func_args(state)?;
                Expression::FuncCall(Box::new(FuncCall::new(FuncName::from(ident), args)))
            }
            _ => {
                self.pos = checkpoint;
                match name {
                    "null" => Expression::null(),
                    "true" => Expression::from(true),
                    "false" => Expression::from(false),
                    var => Expression::from(Ident::new_unchecked(var)),
                }
            }
        };
        state.on_expr_term(expr);
        Ok(())
    }

    fn func_args(&mut self, state: &mut ExprParseState) -> Fast<FuncArgs> {
        state.allow_newlines();
        self.expect(b'(')?;
        let starts_arg = |b: Option<u8>| b.is_some_and(|b| !matches!(b, b',' | b'.' | b')'));
        let before = self.pos;
        self.ws()?;
        let args = if starts_arg(self.peek()) {
            self.pos = before;
            let mut args = vec![self.ws_decorated(|c| c.expr_with_state(state))?];
            loop {
                let separator = self.pos;
                if !self.eat(b',') {
                    break;
                }
                self.ws()?;
                let follows = starts_arg(self.peek());
                self.pos = separator + 1;
                if !follows {
                    self.pos = separator;
                    break;
                }
                args.push(self.ws_decorated(|c| c.expr_with_state(state))?);
            }
            let mut args = FuncArgs::from(args);
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    args.set_trailing_comma(true);
                }
                Some(b'.') => {
                    if !self.at(b"...") {
                        return Err(Decline);
                    }
                    self.pos += 3;
                    args.set_expand_final(true);
                }
                _ => {}
            }
            args
        } else {
            self.pos = before;
            FuncArgs::default()
        };
        let mut args = args;
        let trailing = self.ws()?;
        args.set_trailing(RawString::from_span(trailing));
        self.expect(b')')?;
        Ok(args)
    }

    /// Whether a `for` expression follows (winnow's `for_expr_or_items`).
    fn for_follows(&mut self) -> Fast<bool> {
        let checkpoint = self.pos;
        self.ws()?;
        let follows = self.at(b"for")
            && matches!(self.peek_at(3), Some(b' ' | b'\t' | b'#' | b'/' | b'\n'));
        self.pos = checkpoint;
        Ok(follows)
    }

    fn array(&mut self, state: &mut ExprParseState) -> Fast<()> {
        state.allow_newlines();
        self.expect(b'[')?;
        if self.for_follows()? {
            self.for_list_expr(state)?;
        } else {
            self.array_items(state)?;
        }
        self.expect(b']')
    }

    fn array_items(&mut self, state: &mut ExprParseState) -> Fast<()> {
        let mut values = Vec::new();
        let before = self.pos;
        self.ws()?;
        let empty = self.peek() == Some(b']');
        self.pos = before;
        if !empty {
            values.push(self.ws_decorated(|c| c.expr_with_state(state))?);
            loop {
                let separator = self.pos;
                if !self.eat(b',') {
                    break;
                }
                self.ws()?;
                let end = self.peek() == Some(b']');
                self.pos = separator + 1;
                if end {
                    self.pos = separator;
                    break;
                }
                values.push(self.ws_decorated(|c| c.expr_with_state(state))?);
            }
        }
        let comma = self.eat(b',');
        let trailing = self.ws()?;
        let mut array = Array::from(values);
        if comma {
            array.set_trailing_comma(true);
        }
        array.set_trailing(RawString::from_span(trailing));
        state.on_expr_term(Expression::Array(array));
        Ok(())
    }

    fn object(&mut self, state: &mut ExprParseState) -> Fast<()> {
        self.expect(b'{')?;
        if self.for_follows()? {
            self.for_object_expr(state)?;
        } else {
            self.object_items(state)?;
        }
        self.expect(b'}')
    }

    fn object_items(&mut self, state: &mut ExprParseState) -> Fast<()> {
        let mut items = Vec::new();
        let mut keys = UniqueKeys::default();
        loop {
            let trailing = self.ws()?;
            match self.peek() {
                None => return Err(Decline),
                Some(b'}') => {
                    let mut object = Object::from_unique_items(items);
                    object.set_trailing(RawString::from_span(trailing));
                    state.on_expr_term(Expression::Object(object));
                    return Ok(());
                }
                Some(_) => {}
            }

            let start = self.pos;
            let mut key = match self.expr()? {
                Expression::Variable(variable) => {
                    ObjectKey::Ident(Decorated::new(variable.into_value()))
                }
                expr => ObjectKey::Expression(expr),
            };
            key.set_span(start..self.pos);
            let key_suffix = self.sp()?;
            key.decor_mut().set_suffix(RawString::from_span(key_suffix));
            if !keys.insert(&key) {
                return Err(Decline);
            }

            let assignment = match self.peek() {
                Some(b'=') => ObjectValueAssignment::Equals,
                Some(b':') => ObjectValueAssignment::Colon,
                _ => return Err(Decline),
            };
            self.pos += 1;
            let prefix = self.sp()?;
            let start = self.pos;
            let mut expr = self.expr()?;
            expr.set_span(start..self.pos);
            let suffix = self.sp()?;
            let decor = expr.decor_mut();
            decor.set_prefix(RawString::from_span(prefix));
            decor.set_suffix(RawString::from_span(suffix));
            let mut value = ObjectValue::new(expr);
            value.set_assignment(assignment);
            key.decor_mut().set_prefix(RawString::from_span(trailing));

            let terminator = match self.peek() {
                Some(b'}') => {
                    value.set_terminator(ObjectValueTerminator::None);
                    items.push((key, value));
                    let object = Object::from_unique_items(items);
                    state.on_expr_term(Expression::Object(object));
                    return Ok(());
                }
                Some(b'\n') => {
                    self.pos += 1;
                    ObjectValueTerminator::Newline
                }
                Some(b',') => {
                    self.pos += 1;
                    ObjectValueTerminator::Comma
                }
                Some(b'#' | b'/') => {
                    let comment_start = self.pos;
                    if !self.opt_line_comment()? {
                        return Err(Decline);
                    }
                    let comment = comment_start..self.pos;
                    let decor = value.expr_mut().decor_mut();
                    // The trailing comment joins the value's suffix.
                    let suffix = match decor.suffix().and_then(RawString::span) {
                        Some(span) => span.start..comment.end,
                        None => comment,
                    };
                    decor.set_suffix(RawString::from_span(suffix));
                    self.expect(b'\n')?;
                    ObjectValueTerminator::Newline
                }
                _ => return Err(Decline),
            };
            value.set_terminator(terminator);
            items.push((key, value));
        }
    }

    fn for_intro(&mut self) -> Fast<ForIntro> {
        let prefix = self.ws()?;
        let start = self.pos;
        if !self.at(b"for") {
            return Err(Decline);
        }
        self.pos += 3;
        let first = self.ws_decorated_ident()?;
        let second = if self.eat(b',') {
            Some(self.ws_decorated_ident()?)
        } else {
            None
        };
        if !self.at(b"in") {
            return Err(Decline);
        }
        self.pos += 2;
        let collection = self.ws_decorated(Self::expr)?;
        self.expect(b':')?;
        let mut intro = match second {
            Some(second) => {
                let mut intro = ForIntro::new(second, collection);
                intro.key_var = Some(first);
                intro
            }
            None => ForIntro::new(first, collection),
        };
        intro.set_span(start..self.pos);
        intro.decor_mut().set_prefix(RawString::from_span(prefix));
        Ok(intro)
    }

    fn opt_for_cond(&mut self, state: &ExprParseState) -> Fast<Option<ForCond>> {
        let checkpoint = self.pos;
        let prefix = self.ws()?;
        if !self.at(b"if") {
            self.pos = checkpoint;
            return Ok(None);
        }
        let start = self.pos;
        self.pos += 2;
        let expr = self.ws_decorated(|c| c.expr_with_state(state))?;
        let mut cond = ForCond::new(expr);
        cond.set_span(start..self.pos);
        cond.decor_mut().set_prefix(RawString::from_span(prefix));
        Ok(Some(cond))
    }

    fn for_list_expr(&mut self, state: &mut ExprParseState) -> Fast<()> {
        let intro = self.for_intro()?;
        let value = self.ws_decorated(|c| c.expr_with_state(state))?;
        let cond = self.opt_for_cond(state)?;
        let mut expr = ForExpr::new(intro, value);
        expr.cond = cond;
        state.on_expr_term(Expression::ForExpr(Box::new(expr)));
        Ok(())
    }

    fn for_object_expr(&mut self, state: &mut ExprParseState) -> Fast<()> {
        state.allow_newlines();
        let intro = self.for_intro()?;
        let key = self.ws_decorated(Self::expr)?;
        if !self.at(b"=>") {
            return Err(Decline);
        }
        self.pos += 2;
        let value = self.ws_decorated(Self::expr)?;
        let grouping = if self.at(b"...") {
            self.pos += 3;
            Some(self.ws()?)
        } else {
            None
        };
        let cond = self.opt_for_cond(state)?;
        let mut expr = ForExpr::new(intro, value);
        expr.key_expr = Some(key);
        expr.cond = cond;
        if let Some(trailing) = grouping {
            expr.grouping = true;
            match expr.cond {
                Some(ref mut cond) => cond.decor_mut().set_prefix(RawString::from_span(trailing)),
                None => expr.decor_mut().set_suffix(RawString::from_span(trailing)),
            }
        }
        state.on_expr_term(Expression::ForExpr(Box::new(expr)));
        Ok(())
    }

    fn parenthesis(&mut self, state: &mut ExprParseState) -> Fast<()> {
        self.expect(b'(')?;
        let expr = self.ws_decorated(Self::multiline_expr)?;
        state.on_expr_term(Parenthesis::new(expr));
        self.expect(b')')
    }
}
