//! API errors as RFC 9457 problem documents. Internal causes are logged, never shown.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use delego_core::definition::FieldError;
use delego_core::engine::Rejection;
use delego_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem, e.g. `urn:delego:problem:validation`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For validation problems: every field that is wrong, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("sign in first")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    /// Unknown, or outside the caller's scope: the two must look the same.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    PreconditionRequired(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{detail}")]
    Validation {
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("too many requests; retry after {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn field(field: &str, code: &str, message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError::Validation {
            detail: format!("`{field}`: {message}"),
            errors: vec![FieldError {
                field: field.into(),
                code: code.into(),
                message,
            }],
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            ApiError::Unauthenticated => {
                (StatusCode::UNAUTHORIZED, "unauthenticated", "Not signed in")
            }
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::PreconditionFailed(_) => (
                StatusCode::PRECONDITION_FAILED,
                "stale-version",
                "The item changed since you read it",
            ),
            ApiError::PreconditionRequired(_) => (
                StatusCode::PRECONDITION_REQUIRED,
                "if-match-required",
                "If-Match required",
            ),
            ApiError::PayloadTooLarge(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "too-large", "Too large")
            }
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            ApiError::Validation { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "The request has invalid values",
            ),
            ApiError::TooManyRequests { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.parts();
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after } => Some(*retry_after),
            _ => None,
        };
        let detail = self.to_string();
        let errors = match self {
            ApiError::Validation { errors, .. } => errors,
            _ => Vec::new(),
        };
        let problem = Problem {
            kind: format!("urn:delego:problem:{slug}"),
            title: title.into(),
            status: status.as_u16(),
            detail,
            errors,
        };
        let mut response = (status, axum::Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::Conflict(detail) => ApiError::Conflict(detail),
            StoreError::Invalid(errors) => ApiError::Validation {
                detail: summary(&errors),
                errors,
            },
            StoreError::InvalidDefinition(problems) => ApiError::Validation {
                detail: format!("the service definition has {} problem(s)", problems.len()),
                errors: problems
                    .into_iter()
                    .map(|p| FieldError {
                        field: p.path,
                        code: "definition".into(),
                        message: format!("line {}, column {}: {}", p.line, p.column, p.message),
                    })
                    .collect(),
            },
            StoreError::Rejected(rejection) => rejection.into(),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::InvalidData(errors) => ApiError::Validation {
                detail: summary(&errors),
                errors,
            },
            Rejection::UnknownOutcome { .. } => {
                ApiError::field("outcome", "not_allowed", rejection.to_string())
            }
            Rejection::Runaway | Rejection::UnknownStep(_) => {
                ApiError::Internal(anyhow::anyhow!("engine fault: {rejection}"))
            }
            other => ApiError::Conflict(other.to_string()),
        }
    }
}

fn summary(errors: &[FieldError]) -> String {
    match errors {
        [one] => format!("`{}`: {}", one.field, one.message),
        many => format!("{} fields have problems", many.len()),
    }
}

/// Answers unknown paths with a problem document too.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}
