//! Errors as RFC 7807 `application/problem+json` documents, and the JSON
//! body extractor that turns every refused body into one that names the
//! field and the reason.
//!
//! Bodies are read by [`Body`], not by axum's `Json`, so that every
//! rejection is a problem document: a body over the size limit (413), bytes
//! that are not JSON, a value of the wrong type, an unknown field, a bad
//! port spec or prefix (400, `field` = the JSON path, `allow[2]`), a body
//! that is not a JSON object (an array, say: 400). A body is read as JSON
//! whatever its `Content-Type`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

use crate::control::ControlError;

/// An RFC 7807 problem: `type` is `about:blank` (the status says it all),
/// with the refused `field` and the `reason` as extension members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The status code's reason phrase.
    pub title: &'static str,
    pub status: u16,
    /// A sentence for a human: the field and the reason together.
    pub detail: String,
    /// The refused field as a path in the request (`allow[2]`,
    /// `acl.deny[0]`), or the path/header parameter's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Why the value was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            reason: None,
        }
    }

    /// 400 naming `field` and `reason`.
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Problem {
        let (field, reason) = (field.into(), reason.into());
        let detail = if field.is_empty() {
            reason.clone()
        } else {
            format!("{field}: {reason}")
        };
        Problem {
            field: Some(field),
            reason: Some(reason),
            ..Problem::new(StatusCode::BAD_REQUEST, detail)
        }
    }

    fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut r = (status, body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"moat\""),
            );
        }
        r
    }
}

impl From<ControlError> for Problem {
    fn from(e: ControlError) -> Problem {
        match e {
            ControlError::Invalid { field, reason } => Problem::field(field, reason),
            ControlError::NotFound { .. } => Problem::new(StatusCode::NOT_FOUND, e.to_string()),
            ControlError::Exists { .. } => Problem::new(StatusCode::CONFLICT, e.to_string()),
            ControlError::Stale { .. } => Problem::new(StatusCode::PRECONDITION_FAILED, e.to_string()),
            ControlError::Storage(_) => Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

/// A JSON path as a field name: `allow[2]`, `acl.deny[0]`; the root is "".
fn field_of(p: &serde_path_to_error::Path) -> String {
    let s = p.to_string();
    if s == "." {
        String::new()
    } else {
        s
    }
}

/// Reads `T` from `v`, naming the field of the first error.
pub fn from_value<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, Problem> {
    serde_path_to_error::deserialize(v).map_err(|e| Problem::field(field_of(e.path()), e.inner().to_string()))
}

/// A JSON request body of type `T` (see the module doc).
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(status, format!("request body over {} bytes", super::BODY_LIMIT))
            } else {
                Problem::new(StatusCode::BAD_REQUEST, e.body_text())
            }
        })?;
        // Every body is a JSON object: serde's derived structs would also
        // take an array of their fields in order (`["web", "203.0.113.10",
        // ...]`), which the schema does not allow and nobody means.
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') | None => {}
            Some(b'[') => return Err(Problem::field("", "expected a JSON object, not an array")),
            Some(_) => return Err(Problem::field("", "not JSON: expected a JSON object")),
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let v: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let inner = e.inner();
            if inner.is_syntax() || inner.is_eof() || inner.is_io() {
                Problem::field("", format!("not JSON: {inner}"))
            } else {
                Problem::field(field_of(e.path()), inner.to_string())
            }
        })?;
        de.end().map_err(|e| Problem::field("", format!("not JSON: {e}")))?;
        Ok(Body(v))
    }
}
