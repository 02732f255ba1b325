//! The web UI: server-rendered pages in the user's language, every form protected
//! against cross-site request forgery with a double-submit token.
//!
//! This first part is signing in and out; the workspaces grow from here.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::i18n::Tr;
use delego_core::identity::Role;

const CSRF_COOKIE: &str = "delego_csrf";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", axum::routing::post(logout))
        .route("/queues", get(queues))
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    tr: Tr,
    csrf: String,
    email: String,
    error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
struct HomePage {
    tr: Tr,
    csrf: String,
    name: String,
    role: String,
    /// The provider's people see the floor's pages; client users do not.
    staff: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "queues.html")]
struct QueuesPage {
    tr: Tr,
    queues: Vec<QueueRow>,
}

struct QueueRow {
    engagement: String,
    step: String,
    open: u64,
    held: u64,
    oldest: String,
    at_risk: u64,
    breached: u64,
}

#[derive(Template, WebTemplate)]
#[template(path = "not_found.html")]
struct NotFoundPage {
    tr: Tr,
}

fn tr(state: &AppState, headers: &HeaderMap) -> Tr {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    state.i18n.negotiate(accept)
}

/// A page with a fresh CSRF token: the token goes in the page's forms and in a cookie
/// that a form post must match.
fn with_csrf(status: StatusCode, page: impl IntoResponse, token: &str) -> Response {
    let mut response = (status, page).into_response();
    let cookie = format!("{CSRF_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response.headers_mut().insert(
        header::VARY,
        HeaderValue::from_static("accept-language, cookie"),
    );
    response
}

fn csrf_matches(parts: &Parts, posted: &str) -> bool {
    auth::cookie(parts, CSRF_COOKIE)
        .is_some_and(|cookie| !posted.is_empty() && auth::same_secret(cookie, posted))
}

async fn signed_in(parts: &mut Parts, state: &AppState) -> Option<Caller> {
    Caller::from_request_parts(parts, state).await.ok()
}

fn login_form(
    state: &AppState,
    parts: &Parts,
    status: StatusCode,
    email: String,
    error: Option<&str>,
) -> Result<Response, ApiError> {
    let tr = tr(state, &parts.headers);
    let csrf = auth::random_secret()?;
    let error = error.map(|id| tr.t(id));
    let page = LoginPage {
        tr,
        csrf: csrf.clone(),
        email,
        error,
    };
    Ok(with_csrf(status, page, &csrf))
}

async fn login_page(State(state): State<AppState>, mut parts: Parts) -> Result<Response, ApiError> {
    if signed_in(&mut parts, &state).await.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    login_form(&state, &parts, StatusCode::OK, String::new(), None)
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: String,
    email: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    parts: Parts,
    Form(form): Form<LoginForm>,
) -> Result<Response, ApiError> {
    if !csrf_matches(&parts, &form.csrf) {
        return login_form(
            &state,
            &parts,
            StatusCode::FORBIDDEN,
            form.email,
            Some("form-expired"),
        );
    }
    match crate::api::session::open_session(&state, &form.email, form.password).await {
        Ok((_, cookie)) => Ok((
            StatusCode::SEE_OTHER,
            [
                (header::SET_COOKIE, cookie),
                (header::LOCATION, "/".to_owned()),
            ],
        )
            .into_response()),
        Err(ApiError::TooManyRequests { .. }) => login_form(
            &state,
            &parts,
            StatusCode::TOO_MANY_REQUESTS,
            form.email,
            Some("login-throttled"),
        ),
        Err(ApiError::Unauthenticated | ApiError::Forbidden(_)) => login_form(
            &state,
            &parts,
            StatusCode::UNAUTHORIZED,
            form.email,
            Some("login-wrong"),
        ),
        Err(other) => Err(other),
    }
}

async fn home(State(state): State<AppState>, mut parts: Parts) -> Result<Response, ApiError> {
    let Some(caller) = signed_in(&mut parts, &state).await else {
        return Ok(Redirect::to("/login").into_response());
    };
    let csrf = auth::random_secret()?;
    let tr = tr(&state, &parts.headers);
    let role = tr.t(&format!(
        "role-{}",
        caller.role().as_str().replace('_', "-")
    ));
    let page = HomePage {
        tr,
        csrf: csrf.clone(),
        name: caller.user.name.to_string(),
        role,
        staff: caller.role() != Role::ClientUser,
    };
    Ok(with_csrf(StatusCode::OK, page, &csrf))
}

/// Backlog per engagement and step, for the provider's people (a client user finds no
/// such page, exactly like an unknown address).
async fn queues(State(state): State<AppState>, mut parts: Parts) -> Result<Response, ApiError> {
    let Some(caller) = signed_in(&mut parts, &state).await else {
        return Ok(Redirect::to("/login").into_response());
    };
    let tr = tr(&state, &parts.headers);
    if caller.role() == Role::ClientUser {
        return Ok((StatusCode::NOT_FOUND, NotFoundPage { tr }).into_response());
    }
    let risk = jiff::SignedDuration::from_hours(1);
    let queues = crate::api::tasks::queue_views(&state, &caller, risk)
        .await?
        .into_iter()
        .map(|queue| QueueRow {
            engagement: queue.engagement,
            step: queue.step,
            open: queue.open,
            held: queue.held,
            oldest: queue
                .oldest_age_seconds
                .map(|age| format!("{:#}", jiff::SignedDuration::from_secs(age)))
                .unwrap_or_else(|| "–".to_owned()),
            at_risk: queue.at_risk,
            breached: queue.breached,
        })
        .collect();
    Ok(QueuesPage { tr, queues }.into_response())
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    parts: Parts,
    Form(form): Form<LogoutForm>,
) -> Result<Response, ApiError> {
    if !csrf_matches(&parts, &form.csrf) {
        return Err(ApiError::Forbidden(
            "the form expired; reload the page".into(),
        ));
    }
    if let Some(secret) = auth::cookie(&parts, auth::SESSION_COOKIE) {
        state
            .store
            .delete_session(&auth::secret_hash(secret))
            .await?;
    }
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, auth::expired_session_cookie()),
            (header::LOCATION, "/login".to_owned()),
        ],
    )
        .into_response())
}
