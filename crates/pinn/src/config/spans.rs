//! TOML errors named by the dotted path of the key they point at.

use std::path::Path;

use super::ConfigError;

/// A TOML error as a [`ConfigError`]: when the error points at a key or value of the file (a
/// wrong type, an unknown key or variant, a missing key) it becomes a [`ConfigError::Invalid`]
/// naming the key's dotted path, with line and column; a syntax error keeps the parser's
/// message.
pub(super) fn toml_error(text: &str, path: &Path, e: &toml::de::Error) -> ConfigError {
    let message = e.message();
    let field = e.span().and_then(|span| {
        // An empty span at the start is the whole document (a missing top-level key).
        let mut field = if span.is_empty() && span.start == 0 {
            String::new()
        } else {
            key_path_at(text, span.clone())?
        };
        // "missing field `x`" points at the table that lacks it: name the key itself.
        if let Some(missing) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(missing);
        }
        (!field.is_empty()).then_some((field, span.start))
    });
    match field {
        Some((field, at)) => {
            let line = text[..at].matches('\n').count() + 1;
            let column = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
            ConfigError::Invalid {
                path: path.to_path_buf(),
                field,
                message: format!("{message} (line {line}, column {column})"),
            }
        }
        None => ConfigError::Toml {
            path: path.to_path_buf(),
            message: e.to_string(),
        },
    }
}

/// The dotted path (`loss[1].weight`) of the innermost key whose key or value (for a table
/// given by a header, the header) covers `span` of a TOML document; `None` if the text does
/// not parse or no key covers it.
fn key_path_at(text: &str, span: std::ops::Range<usize>) -> Option<String> {
    use toml::de::{DeTable, DeValue};
    let covers = |outer: std::ops::Range<usize>| outer.start <= span.start && span.end <= outer.end;
    // Header tables' bodies lie outside their value spans: search every child, deepest first.
    fn find(
        value: &DeValue<'_>,
        covers: &dyn Fn(std::ops::Range<usize>) -> bool,
    ) -> Option<Vec<String>> {
        let found = |segment: String, child: &DeValue<'_>, own: bool| {
            find(child, covers)
                .map(|mut below| {
                    below.insert(0, segment.clone());
                    below
                })
                .or_else(|| own.then(|| vec![segment]))
        };
        match value {
            DeValue::Table(table) => table.iter().find_map(|(key, child)| {
                let own = covers(key.span()) || covers(child.span());
                found(key.get_ref().to_string(), child.get_ref(), own)
            }),
            DeValue::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, item)| found(format!("[{i}]"), item.get_ref(), covers(item.span()))),
            _ => None,
        }
    }
    let root = DeTable::parse(text).ok()?;
    let segments = find(&DeValue::Table(root.into_inner()), &covers)?;
    let mut path = String::new();
    for segment in segments {
        if !path.is_empty() && !segment.starts_with('[') {
            path.push('.');
        }
        path.push_str(&segment);
    }
    Some(path)
}
