//! Routing: method and path-with-query to a [`Route`], or the 400/404/405
//! that the request deserves.

use super::error::{ApiError, ErrorCode};
use crate::SortOrder;

/// Largest `n` that `/compute` accepts.
pub const MAX_COMPUTE_N: u32 = 100_000_000;
/// `n` when `/compute` is given none.
const DEFAULT_COMPUTE_N: u32 = 1_000_000;

/// What a well-formed request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /health`.
    Health,
    /// `GET /compute?n=N`.
    Compute {
        /// Number of terms.
        n: u32,
    },
    /// `POST /stats`.
    Stats,
    /// `POST /sort?order=asc|desc`.
    Sort {
        /// Requested order.
        order: SortOrder,
    },
}

impl Route {
    /// Whether the route reads a request body.
    pub fn takes_body(self) -> bool {
        matches!(self, Route::Stats | Route::Sort { .. })
    }
}

/// Picks the route for `method` (upper-case, as on the wire) and
/// `path_with_query` (as sent, e.g. `/compute?n=10`).
pub fn route(method: &str, path_with_query: &str) -> Result<Route, ApiError> {
    let (path, query) = match path_with_query.split_once('?') {
        Some((path, query)) => (path, query),
        None => (path_with_query, ""),
    };
    let (allowed, allow) = match path {
        "/health" | "/compute" => ("GET", "GET"),
        "/stats" | "/sort" => ("POST", "POST"),
        _ => {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!(
                    "no route for {path}; try GET /health, GET /compute, POST /stats or POST /sort"
                ),
            ))
        }
    };
    if method != allowed {
        return Err(ApiError {
            allow: Some(allow),
            ..ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("{path} accepts {allow}, not {method}"),
            )
        });
    }
    let params = parse_query(query)?;
    match path {
        "/health" => {
            only(&params, &[])?;
            Ok(Route::Health)
        }
        "/compute" => {
            only(&params, &["n"])?;
            let n = match last(&params, "n") {
                None => DEFAULT_COMPUTE_N,
                Some(raw) => parse_n(raw)?,
            };
            Ok(Route::Compute { n })
        }
        "/stats" => {
            only(&params, &[])?;
            Ok(Route::Stats)
        }
        _ => {
            only(&params, &["order"])?;
            let order = match last(&params, "order") {
                None | Some("asc") => SortOrder::Ascending,
                Some("desc") => SortOrder::Descending,
                Some(other) => {
                    return Err(ApiError::new(
                        ErrorCode::BadQuery,
                        format!("order must be \"asc\" or \"desc\", not {other:?}"),
                    ))
                }
            };
            Ok(Route::Sort { order })
        }
    }
}

fn parse_n(raw: &str) -> Result<u32, ApiError> {
    let bad = |why: &str| ApiError::new(ErrorCode::BadQuery, format!("n={raw:?} {why}"));
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("is not a non-negative integer"));
    }
    match raw.parse::<u64>() {
        Ok(n) if n <= u64::from(MAX_COMPUTE_N) => Ok(n as u32),
        _ => Err(bad("is above the limit of 100000000")),
    }
}

/// `key=value` pairs of a query string, in order. Values are taken as sent
/// (the API's values need no percent-decoding).
fn parse_query(query: &str) -> Result<Vec<(&str, &str)>, ApiError> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => Ok((k, v)),
            None => Err(ApiError::new(
                ErrorCode::BadQuery,
                format!("query parameter {pair:?} has no value"),
            )),
        })
        .collect()
}

fn only(params: &[(&str, &str)], known: &[&str]) -> Result<(), ApiError> {
    match params.iter().find(|(k, _)| !known.contains(k)) {
        None => Ok(()),
        Some((k, _)) if known.is_empty() => Err(ApiError::new(
            ErrorCode::BadQuery,
            format!("unknown query parameter {k:?}; this route takes none"),
        )),
        Some((k, _)) => Err(ApiError::new(
            ErrorCode::BadQuery,
            format!(
                "unknown query parameter {k:?}; this route takes {}",
                known.join(", ")
            ),
        )),
    }
}

fn last<'a>(params: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(method: &str, path: &str) -> ErrorCode {
        route(method, path).unwrap_err().code
    }

    #[test]
    fn routes() {
        assert_eq!(route("GET", "/health"), Ok(Route::Health));
        assert_eq!(
            route("GET", "/compute"),
            Ok(Route::Compute { n: 1_000_000 })
        );
        assert_eq!(route("GET", "/compute?n=0"), Ok(Route::Compute { n: 0 }));
        assert_eq!(
            route("GET", "/compute?n=100000000"),
            Ok(Route::Compute { n: 100_000_000 })
        );
        assert_eq!(route("POST", "/stats"), Ok(Route::Stats));
        assert_eq!(
            route("POST", "/sort"),
            Ok(Route::Sort {
                order: SortOrder::Ascending
            })
        );
        assert_eq!(
            route("POST", "/sort?order=desc"),
            Ok(Route::Sort {
                order: SortOrder::Descending
            })
        );
        assert_eq!(
            route("POST", "/sort?order=asc"),
            Ok(Route::Sort {
                order: SortOrder::Ascending
            })
        );
    }

    #[test]
    fn bad_queries() {
        for q in [
            "n=",
            "n=-1",
            "n=1.5",
            "n=abc",
            "n=100000001",
            "n=99999999999999999999",
            "n",
            "x=1",
        ] {
            assert_eq!(
                code("GET", &format!("/compute?{q}")),
                ErrorCode::BadQuery,
                "{q}"
            );
        }
        assert_eq!(code("POST", "/sort?order=up"), ErrorCode::BadQuery);
        assert_eq!(code("GET", "/health?verbose=1"), ErrorCode::BadQuery);
    }

    #[test]
    fn unknown_paths_and_methods() {
        assert_eq!(code("GET", "/"), ErrorCode::NotFound);
        assert_eq!(code("GET", "/health/"), ErrorCode::NotFound);
        assert_eq!(code("GET", "/nope?x=1"), ErrorCode::NotFound);
        let e = route("GET", "/stats").unwrap_err();
        assert_eq!((e.status(), e.allow), (405, Some("POST")));
        let e = route("DELETE", "/health").unwrap_err();
        assert_eq!((e.status(), e.allow), (405, Some("GET")));
    }
}
