//! Diagnostics: what is wrong with an input file, where, and what would be right.
//!
//! Every problem poolpatch finds in an inventory or a change file becomes one [`Diagnostic`]
//! naming the file, the line and column, the field (as a path such as
//! `pools[2].back_ends[0].sql_server`), what is wrong and, when we know it, what would be
//! right. Validation collects all of them in one pass into [`Diagnostics`].

use std::fmt;

use serde::Serialize;

/// A 1-based line and column in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl Pos {
    /// The start of a file, for problems of the file as a whole.
    pub const START: Pos = Pos { line: 1, column: 1 };
}

/// One problem in an input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The file as the operator named it.
    pub file: String,
    /// Where the problem is.
    pub pos: Pos,
    /// The field, as a path from the document root (`pools[0].fqdn`); empty for the file.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// What would be right, when known.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic without help text.
    pub fn new(
        file: impl Into<String>,
        pos: Pos,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            file: file.into(),
            pos,
            field: field.into(),
            message: message.into(),
            help: None,
        }
    }

    /// Adds what would be right.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Renders the diagnostic with the offending line of `source` underneath, like a
    /// compiler: `file:line:col: field: message`, the line, a caret, then `help:`.
    pub fn render(&self, source: Option<&str>) -> String {
        let mut out = self.to_string();
        if let Some(line) = source.and_then(|s| s.lines().nth(self.pos.line.saturating_sub(1))) {
            let line: String = line.chars().take(160).collect();
            let gutter = self.pos.line.to_string();
            let pad = " ".repeat(gutter.len());
            let caret_at = self.pos.column.saturating_sub(1).min(line.chars().count());
            let lead: String = line
                .chars()
                .take(caret_at)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!("\n{pad} |\n{gutter} | {line}\n{pad} | {lead}^"));
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("\n  help: {help}"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.pos.line, self.pos.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// All problems found in one or more files, in file and position order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diagnostics {
    /// The problems, sorted by [`Diagnostics::sorted`] before they are shown.
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// No problems yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem.
    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    /// Adds all problems of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    /// Whether nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// How many problems.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Sorted by file, position, field and message, without exact repeats: output is
    /// stable whatever order the checks ran in.
    #[must_use]
    pub fn sorted(mut self) -> Self {
        self.items.sort_by(|a, b| {
            (&a.file, a.pos, &a.field, &a.message).cmp(&(&b.file, b.pos, &b.field, &b.message))
        });
        self.items.dedup();
        self
    }

    /// Renders every problem with snippets from `source` (the text of the file(s) by name),
    /// followed by a count line.
    pub fn render(&self, source: &dyn Fn(&str) -> Option<String>) -> String {
        let mut out = String::new();
        for d in &self.items {
            let text = source(&d.file);
            out.push_str("error: ");
            out.push_str(&d.render(text.as_deref()));
            out.push_str("\n\n");
        }
        let n = self.items.len();
        out.push_str(&format!(
            "{n} problem{} found",
            if n == 1 { "" } else { "s" }
        ));
        out
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.items {
            writeln!(f, "{d}")?;
            if let Some(h) = &d.help {
                writeln!(f, "  help: {h}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo
/// (for "did you mean").
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_l = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word_l, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over chars, O(n·m) time and O(m) memory.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let fields = ["fqdn", "site", "edition", "product", "back_ends"];
        assert_eq!(did_you_mean("backends", fields), Some("back_ends"));
        assert_eq!(did_you_mean("edtion", fields), Some("edition"));
        assert_eq!(did_you_mean("colour", fields), None);
    }

    #[test]
    fn renders_position_field_snippet_and_help() {
        let d = Diagnostic::new(
            "inv.yaml",
            Pos { line: 2, column: 9 },
            "pools[0].site",
            "no site named `ams`",
        )
        .help("one of: amsterdam");
        let text = d.render(Some("pools:\n  site:  ams\n"));
        assert!(text.starts_with("inv.yaml:2:9: pools[0].site: no site named `ams`"));
        assert!(text.contains("2 |   site:  ams"));
        assert!(text.contains("  |         ^"));
        assert!(text.ends_with("help: one of: amsterdam"));
    }
}
