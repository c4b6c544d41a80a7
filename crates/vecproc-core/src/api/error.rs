//! The API's error model: a status, a stable machine-readable code and a
//! human message, rendered as `{"error":{"code":"...","message":"..."}}`.

use serde::Serialize;

/// Stable error codes; clients match on these, not on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the body is not valid JSON or not of an accepted shape.
    BadJson,
    /// 400: a JSON element is not a number.
    NotANumber,
    /// 400: a value is NaN, an infinity, or out of the f64 range.
    NonFinite,
    /// 400: a binary body's length is not a multiple of 8.
    BadBinaryLength,
    /// 400: a query parameter is missing its value, unknown, or out of range.
    BadQuery,
    /// 404: no such path, or (stateful API) no vector with this id: never
    /// created, deleted, or expired.
    NotFound,
    /// 405: the path exists but not with this method.
    MethodNotAllowed,
    /// 413: the body is larger than the limit.
    PayloadTooLarge,
    /// 415: the content type is not JSON or octet-stream.
    UnsupportedMediaType,
    /// 409 (stateful API): the vector kept changing while the request
    /// retried; nothing was changed.
    Conflict,
    /// 412 (stateful API): `If-Match` names another version, or
    /// `If-None-Match: *` met an existing vector, or a page's vector changed.
    PreconditionFailed,
    /// 413 (stateful API): the vector would hold more values than allowed.
    VectorTooLarge,
    /// 503 (stateful API): the key-value store is unreachable or failed;
    /// retry after `Retry-After` seconds.
    StoreUnavailable,
    /// 500: the server failed; not the client's fault.
    Internal,
}

impl ErrorCode {
    /// The HTTP status that goes with this code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::BadJson
            | ErrorCode::NotANumber
            | ErrorCode::NonFinite
            | ErrorCode::BadBinaryLength
            | ErrorCode::BadQuery => 400,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::Conflict => 409,
            ErrorCode::PreconditionFailed => 412,
            ErrorCode::VectorTooLarge => 413,
            ErrorCode::StoreUnavailable => 503,
            ErrorCode::Internal => 500,
        }
    }
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    /// What went wrong, for machines.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
    /// For 405: the value of the `Allow` header.
    pub allow: Option<&'static str>,
    /// For 503: the value of `Retry-After`, in seconds.
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            allow: None,
            retry_after: None,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Inner<'a> {
            code: ErrorCode,
            message: &'a str,
        }
        #[derive(Serialize)]
        struct Outer<'a> {
            error: Inner<'a>,
        }
        serde_json::to_vec(&Outer {
            error: Inner {
                code: self.code,
                message: &self.message,
            },
        })
        .expect("serialising strings cannot fail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_documented_shape() {
        let e = ApiError::new(ErrorCode::BadQuery, "n \"x\" is not a number");
        assert_eq!(e.status(), 400);
        let v: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"code": "bad_query", "message": "n \"x\" is not a number"}})
        );
    }
}
