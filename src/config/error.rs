use std::{ops::Range, path::PathBuf};

/// A configuration error, located in its file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {key}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
}

/// An error found while reading the text, before the file name is known.
#[derive(Debug)]
pub(crate) struct Unlocated {
    pub span: Option<Range<usize>>,
    pub key: String,
    pub message: String,
}

impl Unlocated {
    pub fn new(span: Range<usize>, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            span: Some(span),
            key: key.into(),
            message: message.into(),
        }
    }

    pub fn locate(self, path: &std::path::Path, text: &str) -> ConfigError {
        let offset = self.span.map_or(0, |s| s.start.min(text.len()));
        let line = text[..offset].matches('\n').count() + 1;
        let key = if self.key.is_empty() {
            key_on_line(text, line).unwrap_or_else(|| "(file)".to_string())
        } else {
            self.key
        };
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            key,
            message: self.message,
        }
    }
}

/// The dotted key a TOML line assigns (`table.key = …`) or the table it opens (`[table]`).
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let mut table = String::new();
    for content in text.lines().take(line - 1) {
        if let Some(header) = header(content) {
            table = header;
        }
    }
    let content = text.lines().nth(line - 1)?;
    if let Some(header) = header(content) {
        return Some(header);
    }
    let key = content
        .split_once('=')
        .map_or(content, |(key, _)| key)
        .trim();
    match (table.is_empty(), key.is_empty()) {
        (_, true) => None,
        (true, false) => Some(key.to_string()),
        (false, false) => Some(format!("{table}.{key}")),
    }
}

/// The table a `[table]` or `[[table]]` line opens.
fn header(line: &str) -> Option<String> {
    let line = line.trim();
    let inner = line.strip_prefix('[')?.strip_suffix(']')?;
    Some(inner.trim_matches(['[', ']']).trim().to_string())
}
