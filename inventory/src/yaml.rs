//! A YAML document as a tree of nodes that each know where they stand in the file.
//!
//! serde-saphyr parses (with budgets against alias bombs, deep nesting and huge inputs); we
//! deserialize into this generic [`Node`] tree instead of the final types so that decoding can
//! go on after the first problem and report *every* problem of a file in one pass, each with
//! its line and column. [`crate::decode`] walks the tree.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Budget, Location, Options, Spanned};

use crate::diag::{Diagnostic, Pos};

/// Files larger than this are refused before parsing: no real inventory or change file is
/// anywhere near it, and refusing early keeps a hostile file from costing memory.
pub const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;

/// Nesting deeper than this is refused (our formats nest at most six levels).
const MAX_DEPTH: usize = 64;

/// A node of the document with the position it was written at.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts (1-based line and column).
    pub pos: Pos,
    /// What the node holds.
    pub value: Value,
}

/// The content of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or an empty value (`key:`).
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits in i64 (or u64 for large positives).
    Int(i128),
    /// A floating-point number.
    Float(f64),
    /// Any other scalar.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order; keys are scalars rendered as text.
    Map(Vec<(Key, Node)>),
}

/// A mapping key with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// Where the key is written.
    pub pos: Pos,
    /// The key as text.
    pub name: String,
}

impl Value {
    /// A short noun for messages: "a mapping", "a list", "text", ...
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing (null)",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "a number",
            Value::Float(_) => "a number",
            Value::Str(_) => "text",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// Parses `text` (the contents of `file`) into a tree.
///
/// Errors are returned as a single diagnostic with the parser's position; YAML syntax errors
/// stop parsing, everything after them is reported by the decoder.
pub fn parse(file: &str, text: &str) -> Result<Node, Diagnostic> {
    if text.len() > MAX_FILE_BYTES {
        return Err(Diagnostic::new(
            file,
            Pos::START,
            "",
            format!(
                "the file is {} bytes, more than the {} bytes poolpatch reads",
                text.len(),
                MAX_FILE_BYTES
            ),
        )
        .help("split the estate into several inventories, or check that this is the right file"));
    }
    if text.trim().is_empty() {
        return Err(Diagnostic::new(file, Pos::START, "", "the file is empty")
            .help("see docs/usage/ for the format and an example to start from"));
    }
    let mut budget = Budget::default();
    budget.max_events = 5_000_000;
    budget.max_nodes = 2_000_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_depth = MAX_DEPTH;
    let mut options = Options::default();
    options.budget = Some(budget);
    let spanned: Spanned<Node> =
        serde_saphyr::from_str_with_options(text, options).map_err(|e| parse_error(file, &e))?;
    Ok(spanned.placed())
}

fn parse_error(file: &str, e: &serde_saphyr::Error) -> Diagnostic {
    let pos = e.location().map(pos_of).unwrap_or(Pos::START);
    // The crate's Display includes a snippet; our renderer draws its own, so keep the
    // message proper (first line) only.
    let full = e.to_string();
    let first = full.lines().next().unwrap_or("invalid YAML").trim();
    // The position is ours to show: drop the crate's "error: line L column C: " lead.
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let message = match first.split_once(": ") {
        Some((lead, rest)) if lead.starts_with("line ") && lead.contains(" column ") => rest,
        _ => first,
    }
    .to_string();
    Diagnostic::new(file, pos, "", format!("not valid YAML: {message}"))
        .help("fix the YAML syntax at this position (indentation, a missing ':' or quote)")
}

fn pos_of(loc: Location) -> Pos {
    if loc == Location::UNKNOWN {
        return Pos::START;
    }
    Pos {
        line: usize::try_from(loc.line()).unwrap_or(usize::MAX),
        column: usize::try_from(loc.column()).unwrap_or(usize::MAX),
    }
}

/// Deserializes one node: the position comes from the enclosing `Spanned`.
struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(i128::try_from(v)
            .map(Value::Int)
            .unwrap_or_else(|_| Value::Str(v.to_string())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item.placed());
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Node>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            let key = key.placed();
            let name = match key.value {
                Value::Str(s) => s,
                Value::Int(i) => i.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Float(f) => f.to_string(),
                Value::Null => "~".to_string(),
                Value::Seq(_) | Value::Map(_) => {
                    return Err(de::Error::custom(
                        "a mapping key must be a plain value, not a list or mapping",
                    ));
                }
            };
            entries.push((Key { pos: key.pos, name }, value.placed()));
        }
        Ok(Value::Map(entries))
    }
}

/// A node is deserialized inside `Spanned<Node>`; this impl is used only for the inner value
/// and leaves the position to be filled in by [`Spanned`]'s wrapper below.
impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Node {
            pos: Pos::START,
            value: d.deserialize_any(ValueVisitor)?,
        })
    }
}

/// Fills in positions: serde-saphyr gives the location on the `Spanned` wrapper, and we
/// move it into the node so that the tree carries it.
trait Place {
    fn placed(self) -> Node;
}

impl Place for Spanned<Node> {
    fn placed(self) -> Node {
        let mut n = self.value;
        n.pos = pos_of(self.referenced);
        n
    }
}
