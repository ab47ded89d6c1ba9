//! Reading typed values out of a [`Node`] tree while collecting every problem.
//!
//! A decoder never stops at the first problem: a field that is wrong is reported and read as
//! absent, and decoding goes on, so that the operator sees all problems of a file at once.
//! Shared by the inventory and the change file.

use crate::diag::{Diagnostic, Diagnostics, Pos, did_you_mean};
use crate::model::Fqdn;
use crate::yaml::{Key, Node, Value};

/// A value together with where it was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct At<T> {
    /// The value.
    pub value: T,
    /// Its position in the file.
    pub pos: Pos,
    /// Its field path (`pools[0].fqdn`).
    pub field: String,
}

/// Decoding state for one file: its name and the problems found so far.
#[derive(Debug)]
pub struct Ctx {
    /// The file as the operator named it.
    pub file: String,
    /// Problems found so far.
    pub diags: Diagnostics,
}

impl Ctx {
    /// A decoder for `file`.
    pub fn new(file: impl Into<String>) -> Self {
        Ctx {
            file: file.into(),
            diags: Diagnostics::new(),
        }
    }

    /// Records a problem at `pos` in `field`.
    pub fn error(&mut self, pos: Pos, field: &str, message: impl Into<String>) {
        self.diags
            .push(Diagnostic::new(&self.file, pos, field, message));
    }

    /// Records a problem with what would be right.
    pub fn error_help(
        &mut self,
        pos: Pos,
        field: &str,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.diags
            .push(Diagnostic::new(&self.file, pos, field, message).help(help));
    }

    /// Opens `node` as a mapping whose fields are read with [`Fields`].
    pub fn fields<'n>(&mut self, node: &'n Node, path: &str) -> Option<Fields<'n>> {
        match &node.value {
            Value::Map(entries) => Some(Fields {
                path: path.to_string(),
                pos: node.pos,
                entries,
                used: vec![false; entries.len()],
                known: Vec::new(),
            }),
            other => {
                self.error(
                    node.pos,
                    path,
                    format!(
                        "expected a mapping (`key: value` lines), found {}",
                        other.kind()
                    ),
                );
                None
            }
        }
    }

    /// Reads `node` as a list; a single null is an empty list.
    pub fn list<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            Value::Null => Some(&[]),
            other => {
                self.error_help(
                    node.pos,
                    path,
                    format!("expected a list, found {}", other.kind()),
                    "write each item on its own line starting with `- `, or use `[a, b]`",
                );
                None
            }
        }
    }

    /// Reads `node` as text.
    pub fn text(&mut self, node: &Node, path: &str) -> Option<At<String>> {
        match &node.value {
            Value::Str(s) => Some(At {
                value: s.clone(),
                pos: node.pos,
                field: path.to_string(),
            }),
            other => {
                self.error_help(
                    node.pos,
                    path,
                    format!("expected text, found {}", other.kind()),
                    "put the value in quotes if it is meant as text",
                );
                None
            }
        }
    }

    /// Reads `node` as a boolean (`true` / `false`).
    pub fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.value {
            Value::Bool(b) => Some(*b),
            other => {
                self.error(
                    node.pos,
                    path,
                    format!("expected true or false, found {}", other.kind()),
                );
                None
            }
        }
    }

    /// Reads `node` as an integer in `min..=max`.
    pub fn integer(&mut self, node: &Node, path: &str, min: i128, max: i128) -> Option<i128> {
        match &node.value {
            Value::Int(i) if (min..=max).contains(i) => Some(*i),
            Value::Int(i) => {
                self.error(
                    node.pos,
                    path,
                    format!("{i} is out of range: expected a whole number from {min} to {max}"),
                );
                None
            }
            other => {
                self.error(
                    node.pos,
                    path,
                    format!(
                        "expected a whole number from {min} to {max}, found {}",
                        other.kind()
                    ),
                );
                None
            }
        }
    }

    /// Reads `node` as one of `choices` (exact, case-sensitive, as documented).
    pub fn choice(&mut self, node: &Node, path: &str, choices: &[&str]) -> Option<At<String>> {
        let t = self.text(node, path)?;
        if choices.contains(&t.value.as_str()) {
            return Some(t);
        }
        let mut help = format!("one of: {}", choices.join(", "));
        if let Some(s) = did_you_mean(&t.value, choices.iter().copied()) {
            help = format!("did you mean `{s}`? ({help})");
        }
        self.error_help(
            t.pos,
            path,
            format!("`{}` is not a valid value", t.value),
            help,
        );
        None
    }

    /// Reads `node` as text and checks it with `check`, which returns the cleaned value or
    /// what is wrong; `help` says what would be right.
    pub fn checked(
        &mut self,
        node: &Node,
        path: &str,
        check: fn(&str) -> Result<String, String>,
        help: &str,
    ) -> Option<At<String>> {
        let t = self.text(node, path)?;
        match check(&t.value) {
            Ok(value) => Some(At { value, ..t }),
            Err(why) => {
                self.error_help(t.pos, path, why, help);
                None
            }
        }
    }

    /// Reads `node` as an FQDN ([`Fqdn::parse`]); `what` names the thing for the help text
    /// ("the pool", "the Back End server").
    pub fn fqdn(&mut self, node: &Node, path: &str, what: &str) -> Option<At<Fqdn>> {
        let t = self.text(node, path)?;
        match Fqdn::parse(&t.value) {
            Ok(value) => Some(At {
                value,
                pos: t.pos,
                field: t.field,
            }),
            Err(why) => {
                self.error_help(
                    t.pos,
                    path,
                    format!("`{}` is not a valid FQDN: {why}", t.value),
                    format!(
                        "write the fully qualified DNS name of {what}, e.g. `be01.ams.contoso.com`"
                    ),
                );
                None
            }
        }
    }

    /// Ends decoding; `Ok` only if nothing was wrong.
    pub fn finish(self) -> Result<(), Diagnostics> {
        if self.diags.is_empty() {
            Ok(())
        } else {
            Err(self.diags.sorted())
        }
    }
}

/// The fields of one mapping, read by name; unknown fields are reported by
/// [`Fields::finish`].
#[derive(Debug)]
pub struct Fields<'n> {
    path: String,
    pos: Pos,
    entries: &'n [(Key, Node)],
    used: Vec<bool>,
    known: Vec<&'static str>,
}

impl<'n> Fields<'n> {
    /// The path of field `name` in this mapping.
    pub fn path_of(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// The path of this mapping.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Where this mapping starts.
    pub fn pos(&self) -> Pos {
        self.pos
    }

    /// Where the key `name` is written, if it is.
    pub fn key_pos(&self, name: &str) -> Option<Pos> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(k, _)| k.pos)
    }

    /// Declares `name` as a field of this mapping without reading it (for "did you mean").
    pub fn allow(&mut self, name: &'static str) {
        if !self.known.contains(&name) {
            self.known.push(name);
        }
    }

    /// The value of `name`, if present (a null value counts as absent).
    pub fn optional(&mut self, name: &'static str) -> Option<&'n Node> {
        self.allow(name);
        let i = self.entries.iter().position(|(k, _)| k.name == name)?;
        self.used[i] = true;
        let node = &self.entries[i].1;
        (node.value != Value::Null).then_some(node)
    }

    /// The value of `name`; its absence is reported with `what` as the explanation of what
    /// the field should hold.
    pub fn required(&mut self, ctx: &mut Ctx, name: &'static str, what: &str) -> Option<&'n Node> {
        let present = self.entries.iter().any(|(k, _)| k.name == name);
        let node = self.optional(name);
        if node.is_none() {
            let msg = if present {
                format!("`{name}` is empty")
            } else {
                format!("missing field `{name}`")
            };
            ctx.error_help(
                self.pos,
                &self.path_of(name),
                msg,
                format!("add `{name}:` with {what}"),
            );
        }
        node
    }

    /// Reports every key that no read or [`Fields::allow`] asked for.
    pub fn finish(self, ctx: &mut Ctx) {
        for ((key, _), used) in self.entries.iter().zip(&self.used) {
            if *used || self.known.contains(&key.name.as_str()) {
                continue;
            }
            let mut known = self.known.clone();
            known.sort_unstable();
            let help = match did_you_mean(&key.name, known.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("known fields here: {}", known.join(", ")),
            };
            ctx.error_help(
                key.pos,
                &self.path_of(&key.name),
                format!("unknown field `{}`", key.name),
                help,
            );
        }
    }
}
