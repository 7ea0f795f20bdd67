//! Regions built from named primitives by union (`+` or `|`), difference (`-`) and
//! intersection (`&`), nested with parentheses: `plate - hole1 - hole2`, `(a | b) & c`.
//! `&` binds tighter than `+`, `|` and `-`, which group from the left.

use super::{GeometryError, Shape};

/// A parsed region expression over shape names.
#[derive(Clone, Debug, PartialEq)]
pub enum RegionExpr {
    /// A primitive, by name.
    Shape(String),
    /// Points in either.
    Union(Box<RegionExpr>, Box<RegionExpr>),
    /// Points in the first and not in the second.
    Difference(Box<RegionExpr>, Box<RegionExpr>),
    /// Points in both.
    Intersection(Box<RegionExpr>, Box<RegionExpr>),
}

impl RegionExpr {
    /// Parses `text`; an error says where it stops making sense.
    pub fn parse(text: &str) -> Result<Self, GeometryError> {
        let mut parser = Parser {
            text,
            chars: text.char_indices().collect(),
            at: 0,
        };
        let expr = parser.union()?;
        parser.skip_space();
        match parser.chars.get(parser.at) {
            None => Ok(expr),
            Some(&(i, c)) => Err(parser.error(format!("unexpected `{c}` at column {}", i + 1))),
        }
    }

    fn names<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            RegionExpr::Shape(n) => out.push(n),
            RegionExpr::Union(a, b)
            | RegionExpr::Difference(a, b)
            | RegionExpr::Intersection(a, b) => {
                a.names(out);
                b.names(out);
            }
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    chars: Vec<(usize, char)>,
    at: usize,
}

impl Parser<'_> {
    fn error(&self, message: String) -> GeometryError {
        GeometryError::Expression {
            text: self.text.to_string(),
            message,
        }
    }

    fn skip_space(&mut self) {
        while self
            .chars
            .get(self.at)
            .is_some_and(|(_, c)| c.is_whitespace())
        {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_space();
        self.chars.get(self.at).map(|&(_, c)| c)
    }

    fn union(&mut self) -> Result<RegionExpr, GeometryError> {
        let mut left = self.intersection()?;
        while let Some(op @ ('+' | '|' | '-')) = self.peek() {
            self.at += 1;
            let right = Box::new(self.intersection()?);
            left = if op == '-' {
                RegionExpr::Difference(Box::new(left), right)
            } else {
                RegionExpr::Union(Box::new(left), right)
            };
        }
        Ok(left)
    }

    fn intersection(&mut self) -> Result<RegionExpr, GeometryError> {
        let mut left = self.atom()?;
        while self.peek() == Some('&') {
            self.at += 1;
            left = RegionExpr::Intersection(Box::new(left), Box::new(self.atom()?));
        }
        Ok(left)
    }

    fn atom(&mut self) -> Result<RegionExpr, GeometryError> {
        match self.peek() {
            Some('(') => {
                self.at += 1;
                let inner = self.union()?;
                if self.peek() != Some(')') {
                    return Err(self.error("a `(` is not closed".into()));
                }
                self.at += 1;
                Ok(inner)
            }
            Some(c) if c.is_alphabetic() || c == '_' => {
                let start = self.at;
                while self
                    .chars
                    .get(self.at)
                    .is_some_and(|&(_, c)| c.is_alphanumeric() || c == '_')
                {
                    self.at += 1;
                }
                Ok(RegionExpr::Shape(
                    self.chars[start..self.at].iter().map(|&(_, c)| c).collect(),
                ))
            }
            Some(c) => Err(self.error(format!(
                "expected a shape name or `(` at column {}, found `{c}`",
                self.chars[self.at].0 + 1
            ))),
            None => Err(self.error("ends where a shape name or `(` should follow".into())),
        }
    }
}

/// The tree of a region, shapes by index.
#[derive(Clone, Debug, PartialEq)]
enum Node {
    Leaf(usize),
    Union(Box<Node>, Box<Node>),
    Difference(Box<Node>, Box<Node>),
    Intersection(Box<Node>, Box<Node>),
}

/// Where a point lies with respect to a (sub)region.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Class {
    In,
    Out,
    /// Within the tolerance of the boundary of a shape other than the point's own.
    Near,
    /// On the region's boundary, on the shape the point was drawn on; the sign turns that
    /// shape's outward normal into the region's (−1 for a shape subtracted).
    On(f64),
}

/// A region: named primitives of one dimension and the expression that combines them.
#[derive(Clone, Debug, PartialEq)]
pub struct Region {
    text: String,
    names: Vec<String>,
    pub(super) shapes: Vec<Shape>,
    tree: Node,
    lower: Vec<f64>,
    upper: Vec<f64>,
    tolerance: f64,
}

impl Region {
    /// The region `text` (an expression over the names of `shapes`). The shapes must share
    /// a dimension; the expression must name only shapes given (not all need be used).
    pub fn new(text: &str, shapes: Vec<(String, Shape)>) -> Result<Self, GeometryError> {
        let expr = RegionExpr::parse(text)?;
        let (names, shapes): (Vec<String>, Vec<Shape>) = shapes.into_iter().unzip();
        let mut used = Vec::new();
        expr.names(&mut used);
        if let Some(unknown) = used.iter().find(|n| !names.iter().any(|m| m == *n)) {
            return Err(GeometryError::Expression {
                text: text.into(),
                message: format!(
                    "no shape is named `{unknown}` (shapes: {})",
                    names.join(", ")
                ),
            });
        }
        let index = |n: &str| names.iter().position(|m| m == n).unwrap_or_default();
        let dim = shapes[index(used[0])].dim();
        if let Some(other) = used.iter().find(|n| shapes[index(n)].dim() != dim) {
            return Err(GeometryError::Expression {
                text: text.into(),
                message: format!(
                    "`{}` is {dim}-D but `{other}` is {}-D",
                    used[0],
                    shapes[index(other)].dim()
                ),
            });
        }
        fn build(e: &RegionExpr, index: &dyn Fn(&str) -> usize) -> Node {
            let pair = |a: &RegionExpr, b: &RegionExpr| {
                (Box::new(build(a, index)), Box::new(build(b, index)))
            };
            match e {
                RegionExpr::Shape(n) => Node::Leaf(index(n)),
                RegionExpr::Union(a, b) => {
                    let (a, b) = pair(a, b);
                    Node::Union(a, b)
                }
                RegionExpr::Difference(a, b) => {
                    let (a, b) = pair(a, b);
                    Node::Difference(a, b)
                }
                RegionExpr::Intersection(a, b) => {
                    let (a, b) = pair(a, b);
                    Node::Intersection(a, b)
                }
            }
        }
        let tree = build(&expr, &index);
        let (lower, upper) = bounds(&tree, &shapes);
        let diagonal = lower
            .iter()
            .zip(&upper)
            .map(|(l, u)| (u - l).powi(2))
            .sum::<f64>()
            .sqrt();
        Ok(Self {
            text: text.into(),
            names,
            shapes,
            tree,
            lower,
            upper,
            tolerance: 1e-9 * diagonal.max(f64::MIN_POSITIVE),
        })
    }

    /// The region's expression, as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Dimension of its space.
    pub fn dim(&self) -> usize {
        self.lower.len()
    }

    /// A box that holds the region `(lower, upper)`.
    pub fn bounds(&self) -> (&[f64], &[f64]) {
        (&self.lower, &self.upper)
    }

    /// The shapes' names, in the order given (a boundary point's part indexes them).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The shape called `name`.
    pub fn shape(&self, name: &str) -> Option<&Shape> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.shapes[i])
    }

    /// The shapes the expression uses, by index (each once).
    pub fn used(&self) -> Vec<usize> {
        fn walk(n: &Node, out: &mut Vec<usize>) {
            match n {
                Node::Leaf(i) => {
                    if !out.contains(i) {
                        out.push(*i);
                    }
                }
                Node::Union(a, b) | Node::Difference(a, b) | Node::Intersection(a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.tree, &mut out);
        out
    }

    /// Whether `p` lies inside the region (not within the tolerance of its boundary).
    pub fn contains(&self, p: &[f64]) -> bool {
        self.classify(p, None) == Class::In
    }

    /// Where `p` lies; `source` is the shape it was drawn on the boundary of, if any.
    pub(crate) fn classify(&self, p: &[f64], source: Option<usize>) -> Class {
        self.class_of(&self.tree, p, source)
    }

    fn class_of(&self, node: &Node, p: &[f64], source: Option<usize>) -> Class {
        use Class::{In, Near, On, Out};
        match node {
            Node::Leaf(i) if Some(*i) == source => On(1.0),
            Node::Leaf(i) => {
                let d = self.shapes[*i].signed_distance(p);
                if d < -self.tolerance {
                    In
                } else if d > self.tolerance {
                    Out
                } else {
                    Near
                }
            }
            Node::Union(a, b) => match (self.class_of(a, p, source), self.class_of(b, p, source)) {
                (On(s), Out) | (Out, On(s)) => On(s),
                (On(_), _) | (_, On(_)) => In,
                (In, _) | (_, In) => In,
                (Out, Out) => Out,
                _ => Near,
            },
            Node::Difference(a, b) => {
                match (self.class_of(a, p, source), self.class_of(b, p, source)) {
                    (On(s), Out) => On(s),
                    (In, On(s)) => On(-s),
                    (On(_), _) | (_, On(_)) => Out,
                    (In, Out) => In,
                    (Out, _) | (_, In) => Out,
                    _ => Near,
                }
            }
            Node::Intersection(a, b) => {
                match (self.class_of(a, p, source), self.class_of(b, p, source)) {
                    (On(s), In) | (In, On(s)) => On(s),
                    (On(_), _) | (_, On(_)) => Out,
                    (In, In) => In,
                    (Out, _) | (_, Out) => Out,
                    _ => Near,
                }
            }
        }
    }
}

/// A box holding the points of `node`.
fn bounds(node: &Node, shapes: &[Shape]) -> (Vec<f64>, Vec<f64>) {
    match node {
        Node::Leaf(i) => shapes[*i].bounds(),
        Node::Difference(a, _) => bounds(a, shapes),
        Node::Union(a, b) | Node::Intersection(a, b) => {
            let ((la, ua), (lb, ub)) = (bounds(a, shapes), bounds(b, shapes));
            let union = matches!(node, Node::Union(..));
            let pick = |x: f64, y: f64, low: bool| {
                if low == union { x.min(y) } else { x.max(y) }
            };
            (
                la.iter()
                    .zip(&lb)
                    .map(|(x, y)| pick(*x, *y, true))
                    .collect(),
                ua.iter()
                    .zip(&ub)
                    .map(|(x, y)| pick(*x, *y, false))
                    .collect(),
            )
        }
    }
}
