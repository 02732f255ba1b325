//! A JSON body extractor whose every failure is a problem document: malformed JSON is a
//! 400, a wrong or unknown field a 422 naming it, a too-large body a 413.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as JSON with `Content-Type: application/json`".into(),
            ));
        }
        let body = Bytes::from_request(request, state)
            .await
            .map_err(body_error)?;
        parse(&body).map(ApiJson)
    }
}

/// Why a body could not be read, as a problem: too large (413) or cut off (400).
pub fn body_error(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(format!("the body is too large: {rejection}"))
    } else {
        ApiError::BadRequest(format!("cannot read the body: {rejection}"))
    }
}

/// Parses JSON, telling apart bad syntax (400) from a well-formed body with wrong values
/// (422, naming the field).
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = inner.to_string();
                let field = unknown_field_name(&message).unwrap_or(path);
                let field = if field == "." {
                    "body".to_owned()
                } else {
                    field
                };
                let code = if message.starts_with("unknown field") {
                    "unknown_field"
                } else if message.starts_with("missing field") {
                    "required"
                } else {
                    "wrong_type"
                };
                ApiError::field(&field, code, strip_position(&message))
            }
            _ => ApiError::BadRequest(format!("the body is not valid JSON: {inner}")),
        }
    })
}

/// serde names an unknown field only in its message: "unknown field `x`, expected …".
fn unknown_field_name(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("missing field `"))?;
    rest.split('`').next().map(str::to_owned)
}

fn strip_position(message: &str) -> String {
    message
        .rsplit_once(" at line ")
        .map_or(message, |(text, _)| text)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        count: u32,
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        assert!(matches!(
            parse::<Body>(b"{\"name\": "),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn unknown_and_mistyped_fields_are_named() {
        let Err(ApiError::Validation { errors, .. }) =
            parse::<Body>(br#"{"name": "a", "count": 1, "colour": 2}"#)
        else {
            panic!()
        };
        assert_eq!(
            (errors[0].field.as_str(), errors[0].code.as_str()),
            ("colour", "unknown_field")
        );
        let Err(ApiError::Validation { errors, .. }) =
            parse::<Body>(br#"{"name": "a", "count": -1}"#)
        else {
            panic!()
        };
        assert_eq!(
            (errors[0].field.as_str(), errors[0].code.as_str()),
            ("count", "wrong_type")
        );
        let Err(ApiError::Validation { errors, .. }) = parse::<Body>(br#"{"name": "a"}"#) else {
            panic!()
        };
        assert_eq!(
            (errors[0].field.as_str(), errors[0].code.as_str()),
            ("count", "required")
        );
    }
}
