//! Residual and derived-output expressions: parsed once from strings such as
//! `"u_t + u*u_x - (0.01/pi)*u_xx"`, resolved against a problem's symbols, and evaluated on
//! jets with Burn tensor operations.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use thiserror::Error;

use crate::jet::Jet;
use crate::partial::{DerivativeSet, MAX_ORDER, Partial};

/// A parse or resolution error in an expression, with the byte offset it refers to.
#[derive(Debug, Clone, Error, PartialEq)]
#[error("{message} (at column {column} of `{source_text}`)")]
pub struct ExprError {
    /// What went wrong.
    pub message: String,
    /// 1-based column in the expression text.
    pub column: usize,
    /// The expression text.
    pub source_text: String,
}

/// Elementary functions an expression may call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// Sine.
    Sin,
    /// Cosine.
    Cos,
    /// Exponential.
    Exp,
    /// Natural logarithm.
    Ln,
    /// Square root.
    Sqrt,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
}

impl Func {
    const ALL: [(&'static str, Func); 8] = [
        ("sin", Func::Sin),
        ("cos", Func::Cos),
        ("exp", Func::Exp),
        ("log", Func::Ln),
        ("ln", Func::Ln),
        ("sqrt", Func::Sqrt),
        ("tanh", Func::Tanh),
        ("sigmoid", Func::Sigmoid),
    ];

    fn by_name(name: &str) -> Option<Func> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    fn apply_f64(self, x: f64) -> f64 {
        match self {
            Func::Sin => x.sin(),
            Func::Cos => x.cos(),
            Func::Exp => x.exp(),
            Func::Ln => x.ln(),
            Func::Sqrt => x.sqrt(),
            Func::Tanh => x.tanh(),
            Func::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        }
    }

    fn apply_jet(self, j: &Jet) -> Jet {
        match self {
            Func::Sin => j.sin(),
            Func::Cos => j.cos(),
            Func::Exp => j.exp(),
            Func::Ln => j.ln(),
            Func::Sqrt => j.sqrt(),
            Func::Tanh => j.tanh(),
            Func::Sigmoid => j.sigmoid(),
        }
    }
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `^` (also `**`)
    Pow,
}

/// Parsed, unresolved syntax tree.
#[derive(Clone, Debug, PartialEq)]
pub enum Ast {
    /// A number literal.
    Num(f64),
    /// An identifier with its byte offset.
    Ident(String, usize),
    /// Unary minus.
    Neg(Box<Ast>),
    /// A binary operation.
    Bin(BinOp, Box<Ast>, Box<Ast>),
    /// A function call.
    Call(Func, Box<Ast>),
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64),
    Ident(String),
    Op(char),
    Pow,
    LParen,
    RParen,
}

struct Parser<'a> {
    text: &'a str,
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

fn err(text: &str, offset: usize, message: impl Into<String>) -> ExprError {
    ExprError {
        message: message.into(),
        column: offset + 1,
        source_text: text.to_string(),
    }
}

fn lex(text: &str) -> Result<Vec<(Tok, usize)>, ExprError> {
    let bytes = text.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && i + 1 < bytes.len() && bytes[i + 1].is_ascii_digit())
        {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
                let mut j = i + 1;
                if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
                    j += 1;
                }
                if j < bytes.len() && bytes[j].is_ascii_digit() {
                    i = j;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let s = &text[start..i];
            let v: f64 = s
                .parse()
                .map_err(|_| err(text, start, format!("invalid number `{s}`")))?;
            toks.push((Tok::Num(v), start));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            toks.push((Tok::Ident(text[start..i].to_string()), start));
        } else if c == '*' && i + 1 < bytes.len() && bytes[i + 1] == b'*' {
            toks.push((Tok::Pow, i));
            i += 2;
        } else {
            let t = match c {
                '+' | '-' | '*' | '/' => Tok::Op(c),
                '^' => Tok::Pow,
                '(' => Tok::LParen,
                ')' => Tok::RParen,
                _ => return Err(err(text, i, format!("unexpected character `{c}`"))),
            };
            toks.push((t, i));
            i += 1;
        }
    }
    Ok(toks)
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(self.text.len(), |(_, o)| *o)
    }

    fn expr(&mut self) -> Result<Ast, ExprError> {
        let mut lhs = self.term()?;
        while let Some(Tok::Op(c @ ('+' | '-'))) = self.peek().cloned() {
            self.pos += 1;
            let rhs = self.term()?;
            let op = if c == '+' { BinOp::Add } else { BinOp::Sub };
            lhs = Ast::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn term(&mut self) -> Result<Ast, ExprError> {
        let mut lhs = self.unary()?;
        while let Some(Tok::Op(c @ ('*' | '/'))) = self.peek().cloned() {
            self.pos += 1;
            let rhs = self.unary()?;
            let op = if c == '*' { BinOp::Mul } else { BinOp::Div };
            lhs = Ast::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Ast, ExprError> {
        match self.peek() {
            Some(Tok::Op('-')) => {
                self.pos += 1;
                Ok(Ast::Neg(Box::new(self.unary()?)))
            }
            Some(Tok::Op('+')) => {
                self.pos += 1;
                self.unary()
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<Ast, ExprError> {
        let base = self.atom()?;
        if let Some(Tok::Pow) = self.peek() {
            self.pos += 1;
            // Right-associative, binds tighter than unary minus on its left.
            let exp = self.unary()?;
            return Ok(Ast::Bin(BinOp::Pow, Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Ast, ExprError> {
        let offset = self.offset();
        let Some((tok, _)) = self.toks.get(self.pos).cloned() else {
            return Err(err(self.text, offset, "unexpected end of expression"));
        };
        self.pos += 1;
        match tok {
            Tok::Num(v) => Ok(Ast::Num(v)),
            Tok::Ident(name) => {
                if let Some(Tok::LParen) = self.peek() {
                    let func = Func::by_name(&name).ok_or_else(|| {
                        let known: Vec<_> = Func::ALL.iter().map(|(n, _)| *n).collect();
                        err(
                            self.text,
                            offset,
                            format!("unknown function `{name}`; known: {}", known.join(", ")),
                        )
                    })?;
                    self.pos += 1;
                    let arg = self.expr()?;
                    self.expect_rparen()?;
                    Ok(Ast::Call(func, Box::new(arg)))
                } else {
                    Ok(Ast::Ident(name, offset))
                }
            }
            Tok::LParen => {
                let inner = self.expr()?;
                self.expect_rparen()?;
                Ok(inner)
            }
            _ => Err(err(self.text, offset, "expected a number, a symbol or `(`")),
        }
    }

    fn expect_rparen(&mut self) -> Result<(), ExprError> {
        if let Some(Tok::RParen) = self.peek() {
            self.pos += 1;
            Ok(())
        } else {
            Err(err(self.text, self.offset(), "expected `)`"))
        }
    }
}

/// Parses an expression into a syntax tree.
pub fn parse(text: &str) -> Result<Ast, ExprError> {
    let toks = lex(text)?;
    let mut p = Parser { text, toks, pos: 0 };
    let ast = p.expr()?;
    if p.pos != p.toks.len() {
        return Err(err(text, p.offset(), "unexpected trailing input"));
    }
    Ok(ast)
}

/// A field that expressions can differentiate: a network output or a derived output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FieldId {
    /// Network output (its index among the named outputs).
    Output(usize),
    /// Derived output (its index among the derived outputs).
    Derived(usize),
}

/// Names an expression may refer to.
#[derive(Clone, Debug, Default)]
pub struct Symbols {
    /// Input coordinates (e.g. `x`, `t`); derivative suffixes are spelled with these.
    pub inputs: Vec<String>,
    /// Network outputs.
    pub outputs: Vec<String>,
    /// Derived outputs (defined by their own expressions).
    pub derived: Vec<String>,
    /// Named constants and their values.
    pub constants: BTreeMap<String, f64>,
    /// Unknown (trainable) scalar parameters.
    pub unknowns: Vec<String>,
    /// The spatial inputs of a region's geometry, in its coordinate order: each point on a
    /// region's boundary has an outward unit normal, read as `n_<input>`, and `<field>_n` is
    /// the normal derivative `Σ n_<input> <field>_<input>`. Empty without a geometry.
    pub normals: Vec<String>,
}

impl Symbols {
    fn field(&self, name: &str) -> Option<FieldId> {
        if let Some(i) = self.outputs.iter().position(|n| n == name) {
            return Some(FieldId::Output(i));
        }
        self.derived
            .iter()
            .position(|n| n == name)
            .map(FieldId::Derived)
    }

    /// Name of a field.
    pub fn field_name(&self, f: FieldId) -> &str {
        match f {
            FieldId::Output(i) => &self.outputs[i],
            FieldId::Derived(i) => &self.derived[i],
        }
    }

    /// Splits a derivative suffix such as `xxt` into input coordinates (longest names first).
    fn parse_suffix(&self, suffix: &str) -> Option<Vec<usize>> {
        let mut coords = Vec::new();
        let mut rest = suffix;
        while !rest.is_empty() {
            let (idx, len) = self
                .inputs
                .iter()
                .enumerate()
                .filter(|(_, n)| !n.is_empty() && rest.starts_with(n.as_str()))
                .map(|(i, n)| (i, n.len()))
                .max_by_key(|(_, l)| *l)?;
            coords.push(idx);
            rest = &rest[len..];
        }
        Some(coords)
    }

    /// Every name a user may write, for error messages.
    pub fn listing(&self) -> String {
        let mut parts = Vec::new();
        let join = |v: &[String]| v.join(", ");
        if !self.inputs.is_empty() {
            parts.push(format!("inputs: {}", join(&self.inputs)));
        }
        let fields: Vec<String> = self.outputs.iter().chain(&self.derived).cloned().collect();
        if !fields.is_empty() {
            parts.push(format!(
                "fields: {} (derivatives as <field>_<inputs>, e.g. {}_{}{})",
                join(&fields),
                fields[0],
                self.inputs.first().map_or("x", |s| s.as_str()),
                self.inputs.first().map_or("x", |s| s.as_str()),
            ));
        }
        if !self.unknowns.is_empty() {
            parts.push(format!("unknowns: {}", join(&self.unknowns)));
        }
        if !self.normals.is_empty() {
            let names: Vec<String> = self.normals.iter().map(|n| format!("n_{n}")).collect();
            parts.push(format!(
                "on boundary points: {} and normal derivatives <field>_n",
                names.join(", ")
            ));
        }
        let mut consts: Vec<String> = self.constants.keys().cloned().collect();
        consts.extend(["pi".to_string(), "e".to_string()]);
        parts.push(format!("constants: {}", consts.join(", ")));
        parts.join("; ")
    }

    /// `n_<input>` (a normal's component) and `<field>_n` (a normal derivative), when the
    /// symbols have normals and no field or input claims the name.
    fn resolve_normal(&self, name: &str) -> Result<Option<Node>, String> {
        if self.normals.is_empty() {
            return Ok(None);
        }
        if let Some(input) = name.strip_prefix("n_")
            && self.field("n").is_none()
            && let Some(k) = self.normals.iter().position(|n| n == input)
        {
            return Ok(Some(Node::Normal(k)));
        }
        let Some(field) = name.strip_suffix("_n") else {
            return Ok(None);
        };
        let Some(f) = self.field(field) else {
            return Ok(None);
        };
        if self.inputs.iter().any(|i| i == "n") {
            return Ok(None);
        }
        let mut sum: Option<Node> = None;
        for (k, input) in self.normals.iter().enumerate() {
            let i = self
                .inputs
                .iter()
                .position(|n| n == input)
                .ok_or_else(|| format!("the geometry's input `{input}` is not an input"))?;
            let term = Node::Bin(
                BinOp::Mul,
                Box::new(Node::Normal(k)),
                Box::new(Node::Field(f, Partial::first(i))),
            );
            sum = Some(match sum {
                None => term,
                Some(acc) => Node::Bin(BinOp::Add, Box::new(acc), Box::new(term)),
            });
        }
        Ok(sum)
    }

    fn resolve(&self, name: &str) -> Result<Node, String> {
        if let Some(&v) = self.constants.get(name) {
            return Ok(Node::Const(v));
        }
        if let Some(i) = self.unknowns.iter().position(|n| n == name) {
            return Ok(Node::Unknown(i));
        }
        if let Some(f) = self.field(name) {
            return Ok(Node::Field(f, Partial::VALUE));
        }
        if let Some(i) = self.inputs.iter().position(|n| n == name) {
            return Ok(Node::Input(i));
        }
        match name {
            "pi" => return Ok(Node::Const(std::f64::consts::PI)),
            "e" => return Ok(Node::Const(std::f64::consts::E)),
            _ => {}
        }
        if let Some(node) = self.resolve_normal(name)? {
            return Ok(node);
        }
        // <field>_<suffix>, trying every underscore so that field names may contain one.
        for (pos, _) in name
            .match_indices('_')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            let (field, suffix) = (&name[..pos], &name[pos + 1..]);
            let Some(f) = self.field(field) else { continue };
            let Some(coords) = self.parse_suffix(suffix) else {
                return Err(format!(
                    "`{suffix}` in `{name}` is not a sequence of input names ({})",
                    self.inputs.join(", ")
                ));
            };
            return Partial::from_coords(&coords)
                .map(|p| Node::Field(f, p))
                .ok_or_else(|| {
                    format!(
                        "`{name}` is a derivative of order {} (at most {MAX_ORDER} supported)",
                        coords.len()
                    )
                });
        }
        Err(format!(
            "unknown symbol `{name}`; known symbols are {}",
            self.listing()
        ))
    }
}

/// A resolved expression, ready to evaluate.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// A constant (literals and named constants are folded).
    Const(f64),
    /// A derivative (or the value) of a field.
    Field(FieldId, Partial),
    /// An input coordinate.
    Input(usize),
    /// An unknown scalar parameter (in its physical form, after any transform).
    Unknown(usize),
    /// Component `k` of the outward unit normal of a point on a region's boundary (see
    /// [`Symbols::normals`]); constant with respect to the inputs.
    Normal(usize),
    /// Negation.
    Neg(Box<Node>),
    /// Binary operation.
    Bin(BinOp, Box<Node>, Box<Node>),
    /// Function call.
    Call(Func, Box<Node>),
}

/// A compiled expression with its source text.
#[derive(Clone, Debug)]
pub struct Expression {
    text: String,
    root: Node,
}

fn fold(op: BinOp, a: f64, b: f64) -> f64 {
    match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        BinOp::Pow => a.powf(b),
    }
}

impl Expression {
    /// Parses and resolves `text` against `symbols`, folding constant sub-expressions.
    pub fn compile(text: &str, symbols: &Symbols) -> Result<Self, ExprError> {
        let ast = parse(text)?;
        let root = Self::lower(&ast, symbols, text)?;
        Ok(Self {
            text: text.to_string(),
            root,
        })
    }

    fn lower(ast: &Ast, symbols: &Symbols, text: &str) -> Result<Node, ExprError> {
        Ok(match ast {
            Ast::Num(v) => Node::Const(*v),
            Ast::Ident(name, offset) => symbols.resolve(name).map_err(|m| err(text, *offset, m))?,
            Ast::Neg(a) => match Self::lower(a, symbols, text)? {
                Node::Const(v) => Node::Const(-v),
                n => Node::Neg(Box::new(n)),
            },
            Ast::Bin(op, a, b) => {
                let (a, b) = (
                    Self::lower(a, symbols, text)?,
                    Self::lower(b, symbols, text)?,
                );
                match (&a, &b) {
                    (Node::Const(x), Node::Const(y)) => Node::Const(fold(*op, *x, *y)),
                    _ => Node::Bin(*op, Box::new(a), Box::new(b)),
                }
            }
            Ast::Call(f, a) => match Self::lower(a, symbols, text)? {
                Node::Const(v) => Node::Const(f.apply_f64(v)),
                n => Node::Call(*f, Box::new(n)),
            },
        })
    }

    /// Compiles an expression of the inputs and constants alone (a fit target, an exact
    /// solution): fields and unknowns are unknown symbols there.
    pub fn compile_pointwise(
        text: &str,
        inputs: &[String],
        constants: &BTreeMap<String, f64>,
    ) -> Result<Self, ExprError> {
        let symbols = Symbols {
            inputs: inputs.to_vec(),
            constants: constants.clone(),
            ..Default::default()
        };
        Self::compile(text, &symbols)
    }

    /// The value at one point (its inputs in order); `None` if the expression reads a field or
    /// an unknown.
    pub fn value_at(&self, point: &[f64]) -> Option<f64> {
        fn value(node: &Node, point: &[f64]) -> Option<f64> {
            Some(match node {
                Node::Const(v) => *v,
                Node::Input(i) => *point.get(*i)?,
                Node::Neg(a) => -value(a, point)?,
                Node::Call(f, a) => f.apply_f64(value(a, point)?),
                Node::Bin(op, a, b) => fold(*op, value(a, point)?, value(b, point)?),
                Node::Field(..) | Node::Unknown(_) | Node::Normal(_) => return None,
            })
        }
        value(&self.root, point)
    }

    /// The resolved tree.
    pub fn root(&self) -> &Node {
        &self.root
    }

    /// Every (field, partial) the expression reads.
    pub fn field_symbols(&self) -> Vec<(FieldId, Partial)> {
        fn walk(n: &Node, out: &mut Vec<(FieldId, Partial)>) {
            match n {
                Node::Field(f, p) => out.push((*f, *p)),
                Node::Neg(a) | Node::Call(_, a) => walk(a, out),
                Node::Bin(_, a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Node::Const(_) | Node::Input(_) | Node::Unknown(_) | Node::Normal(_) => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out.sort();
        out.dedup();
        out
    }

    /// Whether the expression reads a normal (`n_x`, or a normal derivative such as `u_n`).
    pub fn uses_normals(&self) -> bool {
        fn walk(n: &Node) -> bool {
            match n {
                Node::Normal(_) => true,
                Node::Neg(a) | Node::Call(_, a) => walk(a),
                Node::Bin(_, a, b) => walk(a) || walk(b),
                _ => false,
            }
        }
        walk(&self.root)
    }

    /// Whether the expression reads unknown `index`.
    pub fn uses_unknown(&self, index: usize) -> bool {
        fn walk(n: &Node, i: usize) -> bool {
            match n {
                Node::Unknown(j) => *j == i,
                Node::Neg(a) | Node::Call(_, a) => walk(a, i),
                Node::Bin(_, a, b) => walk(a, i) || walk(b, i),
                _ => false,
            }
        }
        walk(&self.root, index)
    }

    /// The field derivatives needed to evaluate this expression's jet over `target`:
    /// every symbol's partial joined with every partial of `target` (and the value).
    pub fn requirements(
        &self,
        target: &DerivativeSet,
    ) -> Result<Vec<(FieldId, Partial)>, ExprError> {
        let mut out = Vec::new();
        let targets: Vec<Partial> = std::iter::once(Partial::VALUE)
            .chain(target.iter().copied())
            .collect();
        for (f, p) in self.field_symbols() {
            for t in &targets {
                let joined = p.join(t).ok_or_else(|| ExprError {
                    message: format!(
                        "needs a derivative of order {} (at most {MAX_ORDER} supported)",
                        p.order() + t.order()
                    ),
                    column: 1,
                    source_text: self.text.clone(),
                })?;
                out.push((f, joined));
            }
        }
        Ok(out)
    }

    /// Evaluates the expression to a jet carrying `target`'s derivatives.
    pub fn eval(&self, env: &dyn Environment, target: &Arc<DerivativeSet>) -> Value {
        eval_node(&self.root, env, target)
    }
}

impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Where an evaluation reads fields, inputs and unknowns from.
pub trait Environment {
    /// The jet of `field`'s derivative `partial`, carrying the derivatives in `target`.
    fn field(&self, field: FieldId, partial: Partial, target: &Arc<DerivativeSet>) -> Jet;
    /// The jet of input coordinate `index`, carrying the derivatives in `target`.
    fn input(&self, index: usize, target: &Arc<DerivativeSet>) -> Jet;
    /// Unknown parameter `index` as a `[1, 1]` tensor jet (physical value).
    fn unknown(&self, index: usize) -> Jet;
    /// Component `index` of the points' outward unit normals, a jet without derivatives
    /// carrying `target` (only asked of expressions that read normals, at points that have
    /// them: [`Expression::uses_normals`]).
    fn normal(&self, index: usize, target: &Arc<DerivativeSet>) -> Jet;
}

/// Result of an evaluation: a plain number (constant expression) or a jet.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // short-lived; boxing would cost an allocation per node
pub enum Value {
    /// Constant.
    Scalar(f64),
    /// Point-dependent value.
    Jet(Jet),
}

fn eval_node(node: &Node, env: &dyn Environment, target: &Arc<DerivativeSet>) -> Value {
    use Value::{Jet as J, Scalar as S};
    match node {
        Node::Const(v) => S(*v),
        Node::Field(f, p) => J(env.field(*f, *p, target)),
        Node::Input(i) => J(env.input(*i, target)),
        Node::Normal(k) => J(env.normal(*k, target)),
        Node::Unknown(i) => J(env.unknown(*i)),
        Node::Neg(a) => match eval_node(a, env, target) {
            S(v) => S(-v),
            J(j) => J(j.neg()),
        },
        Node::Call(f, a) => match eval_node(a, env, target) {
            S(v) => S(f.apply_f64(v)),
            J(j) => J(f.apply_jet(&j)),
        },
        Node::Bin(op, a, b) => {
            let (a, b) = (eval_node(a, env, target), eval_node(b, env, target));
            match (op, a, b) {
                (op, S(x), S(y)) => S(fold(*op, x, y)),
                (BinOp::Add, J(j), S(c)) | (BinOp::Add, S(c), J(j)) => J(j.add_scalar(c)),
                (BinOp::Sub, J(j), S(c)) => J(j.add_scalar(-c)),
                (BinOp::Sub, S(c), J(j)) => J(j.neg().add_scalar(c)),
                (BinOp::Mul, J(j), S(c)) | (BinOp::Mul, S(c), J(j)) => J(j.mul_scalar(c)),
                (BinOp::Div, J(j), S(c)) => J(j.mul_scalar(1.0 / c)),
                (BinOp::Div, S(c), J(j)) => J(j.recip().mul_scalar(c)),
                (BinOp::Pow, J(j), S(c)) => J(j.powf(c)),
                (BinOp::Pow, S(c), J(j)) => J(j.mul_scalar(c.ln()).exp()),
                (BinOp::Add, J(x), J(y)) => J(x.add(&y)),
                (BinOp::Sub, J(x), J(y)) => J(x.sub(&y)),
                (BinOp::Mul, J(x), J(y)) => J(x.mul(&y)),
                (BinOp::Div, J(x), J(y)) => J(x.div(&y)),
                (BinOp::Pow, J(x), J(y)) => J(x.pow(&y)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbols() -> Symbols {
        Symbols {
            inputs: vec!["x".into(), "t".into()],
            outputs: vec!["u".into(), "psi".into()],
            derived: vec!["v_x0".into()],
            constants: BTreeMap::from([("nu".to_string(), 0.5)]),
            unknowns: vec!["lambda1".into()],
            normals: Vec::new(),
        }
    }

    #[test]
    fn normals_and_normal_derivatives_resolve_only_with_a_geometry() {
        let with = Symbols {
            normals: vec!["x".into()],
            ..symbols()
        };
        let u_x = Node::Field(FieldId::Output(0), Partial::first(0));
        assert_eq!(
            *Expression::compile("u_n", &with).expect("u_n").root(),
            Node::Bin(BinOp::Mul, Box::new(Node::Normal(0)), Box::new(u_x))
        );
        assert_eq!(
            *Expression::compile("n_x", &with).expect("n_x").root(),
            Node::Normal(0)
        );
        assert!(
            Expression::compile("psi_n + n_x", &with)
                .expect("valid")
                .uses_normals()
        );
        assert!(
            !Expression::compile("u_x", &with)
                .expect("valid")
                .uses_normals()
        );
        // Without a geometry they are not symbols; `n_t` names no spatial input.
        for (text, symbols) in [("u_n", symbols()), ("n_x", symbols()), ("n_t", with)] {
            assert!(Expression::compile(text, &symbols).is_err(), "{text}");
        }
    }

    #[test]
    fn parses_precedence_and_folds_constants() {
        let e = Expression::compile("-2^2 + 3*4/2 - (0.01/pi)*nu", &symbols()).expect("valid");
        let expected = -4.0 + 6.0 - 0.01 / std::f64::consts::PI * 0.5;
        assert_eq!(e.root(), &Node::Const(expected));
        let e = Expression::compile("2**3**2", &symbols()).expect("valid");
        assert_eq!(e.root(), &Node::Const(512.0));
        let e = Expression::compile("1.5e-3 + exp(0)", &symbols()).expect("valid");
        assert_eq!(e.root(), &Node::Const(1.0015));
    }

    #[test]
    fn resolves_derivative_symbols() {
        let e = Expression::compile(
            "u_t + lambda1*u*u_x - u_xxt + psi_tx + v_x0_x + x",
            &symbols(),
        )
        .expect("valid");
        let f = e.field_symbols();
        let p = |c: &[usize]| Partial::from_coords(c).expect("small");
        assert!(f.contains(&(FieldId::Output(0), p(&[1]))));
        assert!(f.contains(&(FieldId::Output(0), p(&[0]))));
        assert!(f.contains(&(FieldId::Output(0), p(&[0, 0, 1]))));
        assert!(f.contains(&(FieldId::Output(1), p(&[0, 1]))));
        assert!(f.contains(&(FieldId::Derived(0), p(&[0]))));
        assert!(e.uses_unknown(0));
    }

    #[test]
    fn reports_unknown_symbols_with_the_list() {
        let e = Expression::compile("u_t + w*u_x", &symbols()).expect_err("w is unknown");
        assert_eq!(e.column, 7);
        assert!(e.message.contains("unknown symbol `w`"), "{}", e.message);
        assert!(e.message.contains("fields: u, psi, v_x0"), "{}", e.message);
        let e = Expression::compile("u_q", &symbols()).expect_err("q is no input");
        assert!(
            e.message.contains("not a sequence of input names"),
            "{}",
            e.message
        );
        let e = Expression::compile("u_t + ", &symbols()).expect_err("incomplete");
        assert!(e.message.contains("unexpected end"), "{}", e.message);
        let e = Expression::compile("foo(u)", &symbols()).expect_err("no such function");
        assert!(
            e.message.contains("unknown function `foo`"),
            "{}",
            e.message
        );
        let e = Expression::compile("u_xxxxx", &symbols()).expect_err("order 5");
        assert!(e.message.contains("order 5"), "{}", e.message);
        let e = Expression::compile("(u", &symbols()).expect_err("unbalanced");
        assert!(e.message.contains("expected `)`"), "{}", e.message);
    }
}
