//! The router (`route(method, path_with_query)`) and the header parsers
//! (`BodyFormat::from_content_type`, `wants_binary`).
//!
//! The input is UTF-8 lines: method, request target, `content-type`,
//! `accept`. For any of them:
//! - a known path (exactly `/health`, `/compute`, `/stats`, `/sort`) with its
//!   method routes or is 400 `bad_query`; with another method it is 405 with
//!   the right `Allow`; any other path is 404; nothing else comes out;
//! - a route renders back to a canonical target that routes to the same
//!   route, `/compute`'s `n` is at most the maximum, and an empty query pair
//!   (`&`) changes nothing;
//! - a content type is JSON, binary or 415, the same whatever its ASCII case
//!   and whatever parameters follow a `;`; `wants_binary` ignores case too;
//! - every error renders as `{"error":{"code","message"}}`.

use vecproc_core::api::{
    route, wants_binary, ApiError, BodyFormat, ErrorCode, Route, MAX_COMPUTE_N,
};
use vecproc_core::SortOrder;

/// Checks the properties above for one input; panics on a violation.
pub fn check_input(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let method = lines.next().unwrap_or("");
    let target = lines.next().unwrap_or("");
    let content_type = lines.next();
    let accept = lines.next();

    let routed = route(method, target);
    check_route(method, target, &routed);
    if target.contains('?') {
        assert_eq!(
            summary(&route(method, &format!("{target}&"))),
            summary(&routed)
        );
    }

    let format = BodyFormat::from_content_type(content_type);
    if let Err(e) = &format {
        assert_eq!((e.status(), e.code), (415, ErrorCode::UnsupportedMediaType));
        check_json(e);
    }
    if let Some(ct) = content_type {
        let same = |other: String| {
            let again = BodyFormat::from_content_type(Some(&other));
            assert_eq!(again.ok(), format.clone().ok(), "{ct:?} vs {other:?}");
        };
        same(ct.to_ascii_uppercase());
        same(ct.to_ascii_lowercase());
        same(format!("{ct}; charset=utf-8"));
    }
    if let Some(accept) = accept {
        assert_eq!(
            wants_binary(Some(accept)),
            wants_binary(Some(&accept.to_ascii_uppercase()))
        );
    }
}

fn check_route(method: &str, target: &str, routed: &Result<Route, ApiError>) {
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    let allowed = match path {
        "/health" | "/compute" => Some("GET"),
        "/stats" | "/sort" => Some("POST"),
        _ => None,
    };
    match routed {
        Ok(r) => {
            assert_eq!(Some(method), allowed);
            let (expected_path, canonical) = canonical(*r);
            assert_eq!(path, expected_path);
            assert_eq!(route(method, &canonical).as_ref(), Ok(r));
            if let Route::Compute { n } = r {
                assert!(*n <= MAX_COMPUTE_N);
            }
        }
        Err(e) => {
            check_json(e);
            match (allowed, e.code) {
                (None, ErrorCode::NotFound) => assert_eq!(e.status(), 404),
                (Some(allow), ErrorCode::MethodNotAllowed) => {
                    assert_ne!(method, allow);
                    assert_eq!((e.status(), e.allow), (405, Some(allow)));
                }
                (Some(allow), ErrorCode::BadQuery) => {
                    assert_eq!(method, allow);
                    assert_eq!(e.status(), 400);
                    assert!(
                        target.contains('?'),
                        "bad_query without a query: {target:?}"
                    );
                }
                _ => panic!("{method} {target:?} gave {e:?}"),
            }
        }
    }
}

/// The path of a route and a target that asks for exactly it.
fn canonical(r: Route) -> (&'static str, String) {
    match r {
        Route::Health => ("/health", "/health".into()),
        Route::Compute { n } => ("/compute", format!("/compute?n={n}")),
        Route::Stats => ("/stats", "/stats".into()),
        Route::Sort {
            order: SortOrder::Ascending,
        } => ("/sort", "/sort?order=asc".into()),
        Route::Sort {
            order: SortOrder::Descending,
        } => ("/sort", "/sort?order=desc".into()),
    }
}

/// What a client can observe: the route, or the status, code and `Allow`.
fn summary(r: &Result<Route, ApiError>) -> Result<Route, (u16, ErrorCode, Option<&'static str>)> {
    r.clone().map_err(|e| (e.status(), e.code, e.allow))
}

fn check_json(e: &ApiError) {
    let body: serde_json::Value = serde_json::from_slice(&e.to_json()).expect("error body is JSON");
    assert_eq!(body["error"]["code"], serde_json::to_value(e.code).unwrap());
    assert_eq!(body["error"]["message"].as_str(), Some(e.message.as_str()));
}
