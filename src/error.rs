//! One error type for HTTP responses and socket acknowledgements alike.
//! Internal causes are logged, never shown: the client sees `internal`.
//! A store that cannot be reached is `unavailable` (retry), decided here for
//! every sqlx error, so no handler classifies database errors itself.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::cursor::InvalidCursor;
use crate::event::InvalidInput;

/// What `Retry-After` tells a client when the store is unavailable: about
/// how long the server takes to notice the database is back.
const RETRY_AFTER_SECS: &str = "2";

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    /// An event's `data` that does not conform to its type's schema.
    #[error("{}", .0.message)]
    Nonconforming(Box<Nonconforming>),
    #[error("invalid cursor")]
    InvalidCursor,
    #[error("authentication failed: {0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// A stale expected version (with the stream's current version), or an id
    /// already used for other content (without).
    #[error("{message}")]
    Conflict { message: String, current_version: Option<i64> },
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    RateLimited(String),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    HeadersTooLarge(String),
    /// The store cannot be reached right now; the cause is logged.
    #[error("the store is unavailable; retry")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Where an event's `data` breaks its type's schema (code `invalid`).
#[derive(Debug, Clone, PartialEq)]
pub struct Nonconforming {
    /// In a batch, the event's place in it, from 0.
    pub index: Option<usize>,
    pub message: String,
    /// A JSON pointer into the event's `data`: `/amount`, `/lines/0/sku`, or `""` for `data` itself.
    pub path: String,
    /// The schema keyword that failed: `minimum`, `required`, `type`, …
    pub rule: String,
}

/// The `error` object of every failure: `{ code, message, currentVersion? }`,
/// and for data that breaks its schema `path`, `rule` and in a batch `index`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// `invalid`, `invalid_cursor`, `unauthorized`, `forbidden`, `not_found`, `method_not_allowed`,
    /// `conflict`, `too_large`, `rate_limited`, `unavailable` or `internal`.
    pub code: String,
    pub message: String,
    /// With `conflict` for a stale `expectedVersion`: the stream's version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<i64>,
    /// With `invalid` for data that breaks its type's schema: a JSON pointer into `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// With `path`: the schema keyword that failed, e.g. `minimum`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// With `path`, in a batch: the failing event's index, from 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
}

/// The body of every HTTP error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

impl Error {
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid(_) | Error::Nonconforming(_) => "invalid",
            Error::InvalidCursor => "invalid_cursor",
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::Conflict { .. } => "conflict",
            Error::TooLarge(_) => "too_large",
            Error::RateLimited(_) => "rate_limited",
            Error::NotFound => "not_found",
            Error::MethodNotAllowed => "method_not_allowed",
            Error::HeadersTooLarge(_) => "too_large",
            Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::Invalid(_) | Error::Nonconforming(_) | Error::InvalidCursor => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::Conflict { .. } => StatusCode::CONFLICT,
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body shown to the client; logs the cause of an internal error.
    pub fn body(&self) -> ErrorBody {
        let message = match self {
            Error::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                "internal error".to_owned()
            }
            Error::Unavailable(cause) => {
                // Debug only: in an outage every request fails alike; the
                // tailer and the pools log the outage once, with its cause.
                tracing::debug!(cause = %cause, "store unavailable");
                self.to_string()
            }
            other => other.to_string(),
        };
        let current_version = match self {
            Error::Conflict { current_version, .. } => *current_version,
            _ => None,
        };
        let (path, rule, index) = match self {
            Error::Nonconforming(found) => (Some(found.path.clone()), Some(found.rule.clone()), found.index),
            _ => (None, None, None),
        };
        ErrorBody { code: self.code().to_owned(), message, current_version, path, rule, index }
    }

    /// The answer to an id already stored with other content, or with an
    /// audience that excludes the requester: it shows nothing of the stored event.
    pub fn id_used() -> Self {
        Error::Conflict { message: "id already used".into(), current_version: None }
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Error::Internal(cause.into())
    }
}

impl From<InvalidInput> for Error {
    fn from(e: InvalidInput) -> Self {
        Error::Invalid(e.0)
    }
}

impl From<InvalidCursor> for Error {
    fn from(_: InvalidCursor) -> Self {
        Error::InvalidCursor
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if is_connection_error(&e) { Error::Unavailable(describe(&e)) } else { Error::Internal(e.into()) }
    }
}

/// Whether the error says the database cannot be reached or is going away,
/// rather than that the statement is wrong: retrying later can succeed.
pub fn is_connection_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 57P01-03: admin or crash shutdown,
            // cannot connect now; 53300: too many connections.
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// One line naming what went wrong, saying PostgreSQL's text once (sqlx's
/// own `Display` of a database error repeats its source's).
pub fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!("{} (SQLSTATE {code})", db.message()),
            None => db.message().to_owned(),
        },
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::PoolTimedOut => "no connection to the database within the timeout".to_owned(),
        other => other.to_string(),
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let retry = matches!(self, Error::Unavailable(_)).then_some([(header::RETRY_AFTER, RETRY_AFTER_SECS)]);
        (self.status(), retry, Json(ErrorResponse { error: self.body() })).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_store_is_unavailable_with_retry_after_and_a_query_error_is_internal() {
        let refused = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let e = Error::from(refused);
        assert_eq!((e.code(), e.status()), ("unavailable", StatusCode::SERVICE_UNAVAILABLE));
        let response = e.into_response();
        assert_eq!(response.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap()), Some(RETRY_AFTER_SECS));

        for e in [sqlx::Error::PoolTimedOut, sqlx::Error::PoolClosed] {
            assert_eq!(Error::from(e).code(), "unavailable");
        }
        let wrong = Error::from(sqlx::Error::RowNotFound);
        assert_eq!(wrong.code(), "internal");
        assert!(wrong.into_response().headers().get(header::RETRY_AFTER).is_none());
    }
}
