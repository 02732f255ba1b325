//! Signing in and out, the caller's own profile, and API tokens.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use delego_core::values::{EmailAddress, Name};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::parse_id;
use crate::AppState;
use crate::auth::{self, Caller};
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::ApiJson;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    email: String,
    password: String,
}

/// The signed-in user and, for staff who work tasks, their worker profile.
#[derive(Serialize, ToSchema)]
pub struct Me {
    #[schema(value_type = Object)]
    user: delego_core::identity::User,
    #[schema(value_type = Option<Object>)]
    worker: Option<delego_core::model::Worker>,
}

const WRONG_CREDENTIALS: &str = "the e-mail address or the password is wrong";

/// Signs in with e-mail and password and sets the session cookie.
#[utoipa::path(post, path = "/auth/login", tag = "session", request_body = Login,
    responses((status = 200, body = Me), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub async fn login(
    State(state): State<AppState>,
    ApiJson(login): ApiJson<Login>,
) -> ApiResult<Response> {
    let (user, cookie) = open_session(&state, &login.email, login.password).await?;
    let worker = match user.worker_id {
        Some(id) => Some(state.store.worker(id).await?),
        None => None,
    };
    Ok((
        [(header::SET_COOKIE, cookie)],
        axum::Json(Me { user, worker }),
    )
        .into_response())
}

/// Checks the credentials (throttled, in the same time whether or not the account
/// exists) and opens a session: the user and the `Set-Cookie` value that carries it. The
/// API's login and the web page's share it.
pub async fn open_session(
    state: &AppState,
    email: &str,
    password: String,
) -> ApiResult<(delego_core::identity::User, String)> {
    let now = state.clock.now();
    state.limits.check_login(email, now)?;
    let wrong = || {
        state.limits.record_failed_login(email, now);
        ApiError::Forbidden(WRONG_CREDENTIALS.into())
    };
    let address = EmailAddress::parse(email).map_err(|_| wrong())?;
    let (user, hash) = match state.store.user_by_email(&address).await {
        Ok(found) => found,
        Err(delego_store::StoreError::NotFound(_)) => {
            // Spend the same time as a real check, so timing does not reveal accounts.
            let dummy = state
                .dummy_hash
                .get_or_try_init(|| auth::hash_password(auth::random_secret().unwrap_or_default()))
                .await?;
            let _ = auth::verify_password(password, dummy.clone()).await;
            return Err(unauthorized(wrong()));
        }
        Err(other) => return Err(other.into()),
    };
    let Some(hash) = hash else {
        return Err(unauthorized(wrong()));
    };
    if !auth::verify_password(password, hash).await {
        return Err(unauthorized(wrong()));
    }
    state.limits.clear_failed_logins(email);
    let secret = auth::random_secret()?;
    let ttl = state.config.session_ttl;
    let expires = now.checked_add(ttl).map_err(|e| anyhow::anyhow!(e))?;
    state
        .store
        .create_session(user.id, &auth::secret_hash(&secret), expires)
        .await?;
    Ok((
        user,
        auth::session_cookie(&secret, ttl, state.config.secure_cookies),
    ))
}

/// A wrong password is a 401, with the same words whether or not the account exists.
fn unauthorized(error: ApiError) -> ApiError {
    match error {
        ApiError::Forbidden(_) => ApiError::Unauthenticated,
        other => other,
    }
}

/// Signs out: ends the session and clears the cookie.
#[utoipa::path(post, path = "/auth/logout", tag = "session", responses((status = 204)))]
pub async fn logout(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> ApiResult<Response> {
    let (parts, _) = request.into_parts();
    if let Some(secret) = auth::cookie(&parts.headers, auth::SESSION_COOKIE) {
        state
            .store
            .delete_session(&auth::secret_hash(secret))
            .await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, auth::expired_session_cookie())],
    )
        .into_response())
}

/// The signed-in user.
#[utoipa::path(get, path = "/me", tag = "session", responses((status = 200, body = Me), (status = 401, body = Problem)))]
pub async fn me(caller: Caller) -> axum::Json<Me> {
    axum::Json(Me {
        user: caller.user,
        worker: caller.worker,
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for, e.g. "CRM integration".
    name: String,
}

/// A token as listed: never with its secret.
#[derive(Serialize, ToSchema)]
pub struct TokenView {
    #[schema(value_type = Object)]
    #[serde(flatten)]
    token: delego_core::model::ApiToken,
}

/// A new token with its secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    #[schema(value_type = Object)]
    token: delego_core::model::ApiToken,
    /// Send as `Authorization: Bearer <secret>`. It cannot be shown again.
    secret: String,
}

/// Creates an API token acting as the caller. The secret is in this response only.
#[utoipa::path(post, path = "/tokens", tag = "session", request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 422, body = Problem)))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewToken>,
) -> ApiResult<(StatusCode, axum::Json<CreatedToken>)> {
    let (token, secret) = add_token(&state, &caller, &new.name).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedToken { token, secret }),
    ))
}

/// A new token of the caller's and its secret, which only its hash is kept of.
pub(crate) async fn add_token(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> ApiResult<(delego_core::model::ApiToken, String)> {
    let name = Name::parse(name).map_err(|e| ApiError::field("name", "invalid", e.0))?;
    let (secret, prefix) = auth::new_token_secret()?;
    let token = state
        .store
        .create_api_token(
            caller.user.id,
            name,
            &auth::secret_hash(&secret),
            &prefix,
            &caller.actor(),
        )
        .await?;
    Ok((token, secret))
}

/// The caller's tokens.
#[utoipa::path(get, path = "/tokens", tag = "session", responses((status = 200, body = Vec<TokenView>)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<Vec<TokenView>>> {
    let tokens = state.store.api_tokens(caller.user.id).await?;
    Ok(axum::Json(
        tokens
            .into_iter()
            .map(|token| TokenView { token })
            .collect(),
    ))
}

/// Revokes one of the caller's tokens.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "session", params(("id" = String, Path)),
    responses((status = 200, body = TokenView), (status = 404, body = Problem)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<TokenView>> {
    let token = revoke_own_token(&state, &caller, &id).await?;
    Ok(axum::Json(TokenView { token }))
}

/// Revokes a token of the caller's; anyone else's is as unknown as a made-up id.
pub(crate) async fn revoke_own_token(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<delego_core::model::ApiToken> {
    let id = parse_id(id, "token")?;
    Ok(state
        .store
        .revoke_api_token(caller.user.id, id, &caller.actor())
        .await?)
}
