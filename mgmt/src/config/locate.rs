//! Where in the file a config error is: between byte offsets, key paths as a
//! user reads them (`services[1].allow[2]`) and `line:column`.
//!
//! serde errors from `toml` carry a byte span but not a public key path, and
//! validation errors carry a key path but no span. Both are resolved against
//! a `toml_edit` document parsed with spans kept: [`path_at`] finds the
//! innermost key or value whose span holds an offset, [`span_of`] the span of
//! a key path. A file that does not parse at all has no document; for it
//! [`syntax_path`] guesses the key from the table headers and the `key =`
//! of the failing line.

use std::collections::HashMap;
use std::ops::Range;

use toml_edit::{ImDocument, Item, Table, Value};

use super::ConfigError;

/// 1-based line and column (in characters) of byte `offset` in `src`.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(src, offset.min(src.len()));
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The key path of the innermost key or value whose span holds `offset`,
/// `None` when the offset is in no key or value (a comment, a blank line).
///
/// serde errors about an array element carry the span of the whole array;
/// `element` (the string value the error quotes, if any) then picks the
/// element out, so that the path ends in `allow[2]` rather than `allow`.
pub fn path_at(doc: &ImDocument<&str>, offset: usize, element: Option<&str>) -> Option<String> {
    let mut path = String::new();
    let at = At { offset, element };
    in_table(doc.as_table(), at, &mut path).then_some(path)
}

/// What [`path_at`] looks for.
#[derive(Clone, Copy)]
struct At<'a> {
    offset: usize,
    element: Option<&'a str>,
}

fn holds(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.contains(&offset) || (s.is_empty() && s.start == offset))
}

fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

/// Appends to `path` and returns true when `offset` is inside `table`.
fn in_table(table: &Table, at: At<'_>, path: &mut String) -> bool {
    let offset = at.offset;
    for (name, item) in table.iter() {
        let len = path.len();
        push_key(path, name);
        let key_span = table.get_key_value(name).and_then(|(k, _)| k.span());
        if in_item(item, at, path) || holds(key_span, offset) {
            return true;
        }
        path.truncate(len);
    }
    false
}

fn in_item(item: &Item, at: At<'_>, path: &mut String) -> bool {
    let offset = at.offset;
    match item {
        Item::None => false,
        Item::Value(v) => in_value(v, at, path),
        // A table's span covers its header and its key/values; children
        // defined under their own headers lie outside it, so descend first.
        Item::Table(t) => in_table(t, at, path) || holds(t.span(), offset),
        Item::ArrayOfTables(a) => a.iter().enumerate().any(|(i, t)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = in_table(t, at, path) || holds(t.span(), offset);
            if !found {
                path.truncate(len);
            }
            found
        }),
    }
}

fn in_value(value: &Value, at: At<'_>, path: &mut String) -> bool {
    let offset = at.offset;
    if !holds(value.span(), offset) {
        return false;
    }
    match value {
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                if in_value(v, at, path) {
                    return true;
                }
                path.truncate(len);
            }
            let quoted = at.element.and_then(|e| a.iter().position(|v| v.as_str() == Some(e)));
            if let Some(i) = quoted {
                path.push_str(&format!("[{i}]"));
            }
        }
        Value::InlineTable(t) => {
            for (name, v) in t.iter() {
                let len = path.len();
                push_key(path, name);
                let key_span = t.get_key_value(name).and_then(|(k, _)| k.span());
                if in_value(v, at, path) || holds(key_span, offset) {
                    return true;
                }
                path.truncate(len);
            }
        }
        _ => {}
    }
    true
}

/// One step of a key path.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits `services[1].allow[2]` into its steps (config keys contain no
/// dots or brackets, so no quoting is needed).
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, mut rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        out.push(Step::Key(name));
        while let Some((idx, tail)) = rest.split_once(']') {
            if let Ok(i) = idx.parse() {
                out.push(Step::Index(i));
            }
            rest = tail.strip_prefix('[').unwrap_or(tail);
        }
    }
    out
}

/// A position in the document while walking a key path.
#[derive(Clone, Copy)]
enum Node<'a> {
    Table(&'a Table),
    Item(&'a Item),
    Value(&'a Value),
}

impl<'a> Node<'a> {
    fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Table(t) => t.span(),
            Node::Item(i) => i.span(),
            Node::Value(v) => v.span(),
        }
    }

    fn step(self, step: &Step<'_>) -> Option<Node<'a>> {
        match (self, step) {
            (Node::Table(t) | Node::Item(Item::Table(t)), Step::Key(k)) => t.get(k).map(Node::Item),
            (Node::Item(Item::Value(Value::InlineTable(t))) | Node::Value(Value::InlineTable(t)), Step::Key(k)) => {
                t.get(k).map(Node::Value)
            }
            (Node::Item(Item::ArrayOfTables(a)), Step::Index(n)) => a.get(*n).map(Node::Table),
            (Node::Item(Item::Value(Value::Array(a))) | Node::Value(Value::Array(a)), Step::Index(n)) => {
                a.get(*n).map(Node::Value)
            }
            _ => None,
        }
    }
}

/// The span of the value (or, for a table, its header and keys) at `path`,
/// falling back to the nearest ancestor that has one (a key that is absent
/// from the file, such as a missing `[[ports]]` role, points at its parent).
pub fn span_of(doc: &ImDocument<&str>, path: &str) -> Option<Range<usize>> {
    let mut node = Node::Table(doc.as_table());
    let mut best = None;
    for step in steps(path) {
        let Some(next) = node.step(&step) else { break };
        best = next.span().or(best);
        node = next;
    }
    best
}

/// Best-effort key path for a syntax error at `offset`: the last table header
/// above it (with array-of-tables indices counted) and the key on its line.
pub fn syntax_path(src: &str, offset: usize) -> String {
    let offset = floor_char_boundary(src, offset.min(src.len()));
    let mut table = String::new();
    // Count of `[[name]]` headers seen per full header path, so that nested
    // arrays (`services.payload_rules`) are numbered within their parent.
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut line_start = 0;
    for line in src[..offset].split_inclusive('\n') {
        if line_start + line.len() > offset || !line.ends_with('\n') {
            break;
        }
        line_start += line.len();
        let t = line.trim();
        if let Some(name) = t
            .strip_prefix("[[")
            .and_then(|r| r.split_once("]]"))
            .map(|(n, _)| n.trim())
        {
            table = indexed(&mut counts, name, true);
        } else if let Some(name) = t
            .strip_prefix('[')
            .and_then(|r| r.split_once(']'))
            .map(|(n, _)| n.trim())
        {
            table = indexed(&mut counts, name, false);
        }
    }
    let line = src[line_start..].lines().next().unwrap_or("");
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim())
        .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)));
    match key {
        Some(k) if table.is_empty() => k.to_string(),
        Some(k) => format!("{table}.{k}"),
        None => table,
    }
}

/// The display path of header `name` (`services.payload_rules`), numbering
/// every array-of-tables component by the headers seen so far.
fn indexed(counts: &mut HashMap<String, usize>, name: &str, is_array: bool) -> String {
    let mut path = String::new();
    let parts: Vec<&str> = name.split('.').map(str::trim).collect();
    for (i, part) in parts.iter().enumerate() {
        push_key(&mut path, part);
        let last = i + 1 == parts.len();
        if last && is_array {
            let n = counts.entry(path.clone()).or_insert(0);
            *n += 1;
            // Counts are keyed by the indexed parent path
            // (`services[1].payload_rules`), so each parent element numbers
            // its own children from 0.
            path.push_str(&format!("[{}]", *n - 1));
        } else if let Some(n) = counts.get(&path) {
            path.push_str(&format!("[{}]", n.saturating_sub(1)));
        }
    }
    path
}

// ---- from errors to located errors ----

/// A TOML syntax or serde type error: key path from the span, the toml
/// message as the reason.
pub(super) fn serde_error(src: &str, label: &str, e: &toml::de::Error) -> ConfigError {
    // toml's messages may span lines ("invalid table header\nexpected ...").
    let reason = e.message().trim_end().replace('\n', "; ");
    let Some(span) = e.span() else {
        return ConfigError {
            file: label.to_string(),
            key: String::new(),
            reason,
        };
    };
    let (key, at) = match ImDocument::parse(src) {
        Ok(doc) => {
            let key = path_at(&doc, span.start, quoted_value(&reason)).unwrap_or_default();
            // The path may be more precise than the span (an array element).
            let at = span_of(&doc, &key).map_or(span.start, |s| s.start);
            (key, at)
        }
        Err(_) => (syntax_path(src, span.start), span.start),
    };
    let (line, col) = line_col(src, at);
    ConfigError {
        file: format!("{label}:{line}:{col}"),
        key,
        reason,
    }
}

/// The value an error message of [`super::values`] quotes first (`"tcp/70000": ...`).
fn quoted_value(message: &str) -> Option<&str> {
    message.strip_prefix('"')?.split_once("\": ").map(|(v, _)| v)
}

/// Adds the label and, when the key is in the file, its line to a
/// validation error.
pub(super) fn locate_error(src: &str, label: &str, mut e: ConfigError) -> ConfigError {
    let span = ImDocument::parse(src).ok().and_then(|doc| span_of(&doc, &e.key));
    e.file = match span {
        Some(s) => {
            let (line, col) = line_col(src, s.start);
            format!("{label}:{line}:{col}")
        }
        None => label.to_string(),
    };
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "[node]\nname = \"n\"\n\n[[services]]\nname = \"a\"\nallow = [\"tcp/1\", \"udp/2\"]\n\
                       [[services.rules]]\nport = 1\n[[services]]\nname = \"b\"\n[[services.rules]]\nport = 2\n";

    #[test]
    fn line_and_column_count_characters() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é\nx", 3), (2, 1));
        // Inside a multi-byte character and past the end: clamped.
        assert_eq!(line_col("éé", 3), (1, 2));
        assert_eq!(line_col("ab", 99), (1, 3));
    }

    #[test]
    fn offsets_map_to_paths_and_back() {
        let doc = ImDocument::parse(DOC).unwrap();
        let at = |needle: &str| path_at(&doc, DOC.find(needle).unwrap(), None);
        assert_eq!(at("\"n\"").as_deref(), Some("node.name"));
        assert_eq!(at("\"udp/2\"").as_deref(), Some("services[0].allow[1]"));
        assert_eq!(at("port = 2").as_deref(), Some("services[1].rules[0].port"));
        let whole = DOC.find("[\"tcp/1\"").unwrap();
        assert_eq!(
            path_at(&doc, whole, Some("udp/2")).as_deref(),
            Some("services[0].allow[1]")
        );
        let span = span_of(&doc, "services[0].allow[1]").unwrap();
        assert_eq!(&DOC[span], "\"udp/2\"");
        let span = span_of(&doc, "services[1].rules[0].port").unwrap();
        assert_eq!(&DOC[span], "2");
        // An absent key points at its nearest present ancestor.
        let span = span_of(&doc, "services[1].missing").unwrap();
        assert!(DOC[span].starts_with("[[services]]\nname = \"b\""));
        assert_eq!(span_of(&doc, "nothing.here"), None);
    }

    #[test]
    fn syntax_errors_are_placed_under_their_header() {
        let src = "[[services]]\nname = \"a\"\n[[services]]\n[[services.rules]]\n[[services.rules]]\nport = = 1\n";
        assert_eq!(
            syntax_path(src, src.find("= = 1").unwrap()),
            "services[1].rules[1].port"
        );
        let src = "[dataplane]\nworkers = 1 1\n";
        assert_eq!(syntax_path(src, src.len() - 2), "dataplane.workers");
        assert_eq!(syntax_path("x = ", 4), "x");
        assert_eq!(syntax_path("[a]\n???", 5), "a");
    }
}
