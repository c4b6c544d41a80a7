//! `-H/--header` request-header overrides, as `wasmtime serve` has them:
//! `name: value` or `@file` (one header per line, blank lines skipped).
//! Before the guest sees a request, every client value of an overridden
//! name is removed and the command line's values are appended in order.

use std::path::PathBuf;

use hyper::header::{HeaderMap, HeaderName, HeaderValue};

/// Why an `-H` argument was refused.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// No `:` separates name and value.
    #[error("header `{0}` is missing `:`")]
    MissingColon(String),
    /// The name is not a valid HTTP field name.
    #[error("header `{0}` has an invalid name")]
    InvalidName(String),
    /// The value is not a valid HTTP field value.
    #[error("header `{0}` has an invalid value")]
    InvalidValue(String),
    /// An `@file` could not be read.
    #[error("failed to read header file {path}: {source}")]
    File {
        /// The file named after `@`.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
}

/// Request headers set from the command line.
#[derive(Debug, Clone, Default)]
pub struct HeaderOverrides {
    entries: Vec<(HeaderName, HeaderValue)>,
}

impl HeaderOverrides {
    /// Parses every `-H` argument in order.
    pub fn parse(args: &[String]) -> Result<Self, HeaderError> {
        let mut entries = Vec::new();
        for arg in args {
            match arg.strip_prefix('@') {
                Some(path) => {
                    let text =
                        std::fs::read_to_string(path).map_err(|source| HeaderError::File {
                            path: path.into(),
                            source,
                        })?;
                    for line in text.lines().filter(|l| !l.trim().is_empty()) {
                        entries.push(parse_one(line)?);
                    }
                }
                None => entries.push(parse_one(arg)?),
            }
        }
        Ok(HeaderOverrides { entries })
    }

    /// Whether there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Replaces the overridden names in `headers`.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (name, _) in &self.entries {
            headers.remove(name);
        }
        for (name, value) in &self.entries {
            headers.append(name.clone(), value.clone());
        }
    }
}

fn parse_one(entry: &str) -> Result<(HeaderName, HeaderValue), HeaderError> {
    let (name, value) = entry
        .split_once(':')
        .ok_or_else(|| HeaderError::MissingColon(entry.into()))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| HeaderError::InvalidName(entry.into()))?;
    let value =
        HeaderValue::from_str(value.trim()).map_err(|_| HeaderError::InvalidValue(entry.into()))?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn replaces_every_client_value_then_appends_in_order() {
        let o =
            HeaderOverrides::parse(&args(&["X-Tenant: one", "x-tenant:two", "x-new: 3"])).unwrap();
        let mut h = HeaderMap::new();
        h.append("x-tenant", HeaderValue::from_static("client"));
        h.append("x-tenant", HeaderValue::from_static("client2"));
        h.append("x-other", HeaderValue::from_static("kept"));
        o.apply(&mut h);
        let tenant: Vec<_> = h.get_all("x-tenant").iter().collect();
        assert_eq!(tenant, ["one", "two"]);
        assert_eq!(h["x-new"], "3");
        assert_eq!(h["x-other"], "kept");
    }

    #[test]
    fn refuses_malformed_entries_by_name() {
        let e = HeaderOverrides::parse(&args(&["nocolon"])).unwrap_err();
        assert_eq!(e.to_string(), "header `nocolon` is missing `:`");
        let e = HeaderOverrides::parse(&args(&["bad name: 1"])).unwrap_err();
        assert!(matches!(e, HeaderError::InvalidName(_)), "{e}");
        let e = HeaderOverrides::parse(&args(&["@/nonexistent/headers"])).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/headers"), "{e}");
    }

    #[test]
    fn reads_files_skipping_blank_lines() {
        let dir = std::env::temp_dir().join(format!("hr-headers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("h.txt");
        std::fs::write(&file, "a: 1\n\n  \nb: 2\n").unwrap();
        let o = HeaderOverrides::parse(&args(&[&format!("@{}", file.display())])).unwrap();
        assert_eq!(o.entries.len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
