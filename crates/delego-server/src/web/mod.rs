//! The web UI: server-rendered pages in the user's language, every form protected
//! against cross-site request forgery with a double-submit token.
//!
//! Pages reuse the API's own functions for what they show and change, so a page can never
//! see more than the API would show the same caller. A page outside the caller's role or
//! scope answers the same "not found" page as an unknown address.

use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::AppState;
use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::i18n::Tr;
use delego_core::identity::Role;
use delego_core::model::Presence;

mod admin;
mod chart;
mod dashboard;
pub(crate) mod forms;
pub(crate) mod item;
mod knowledge;
mod portal;
mod session;
mod work;

const CSRF_COOKIE: &str = "delego_csrf";
/// Mirrors the signed-in user's chosen language, so that pages rendered without a
/// session (sign-in, errors) speak it too.
const LANGUAGE_COOKIE: &str = "delego_lang";

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(session::routes())
        .merge(admin::routes())
        .merge(dashboard::routes())
        .merge(work::routes())
        .merge(portal::routes())
        .route("/static/delego.css", axum::routing::get(stylesheet))
        .layer(axum::middleware::from_fn(csrf_cookie))
}

/// What every page needs: the words and formats of the user's language, the form token,
/// and the navigation of the signed-in user (none on the sign-in page).
pub struct Ctx {
    pub tr: Tr,
    pub csrf: String,
    pub nav: Option<Nav>,
}

impl Ctx {
    /// Whether the user may open the floor's pages (an item's page among them).
    pub fn floor(&self) -> bool {
        self.nav.as_ref().is_some_and(|nav| nav.floor)
    }
}

impl std::ops::Deref for Ctx {
    type Target = Tr;

    fn deref(&self) -> &Tr {
        &self.tr
    }
}

/// The signed-in user as the page header shows them, and the parts of the UI they may
/// open.
pub struct Nav {
    pub name: String,
    pub role: String,
    pub workspace: bool,
    pub floor: bool,
    pub portal: bool,
    pub admin: bool,
}

impl Nav {
    fn of(caller: &Caller, tr: &Tr) -> Self {
        let role = caller.role();
        Self {
            name: caller.user.name.to_string(),
            role: role_name(tr, role),
            workspace: caller.worker.is_some(),
            floor: floor_role(role),
            portal: role == Role::ClientUser,
            admin: role.manages(),
        }
    }
}

/// A role in the user's words.
pub fn role_name(tr: &Tr, role: Role) -> String {
    tr.t(&format!("role-{}", role.as_str().replace('_', "-")))
}

/// A worker's presence as pages show it: its state (for styles and counts) and its words,
/// with a break's reason and the end of a wrap-up.
pub fn presence(tr: &Tr, presence: &Presence) -> (&'static str, String) {
    match presence {
        Presence::Available => ("available", tr.t("presence-available")),
        Presence::Busy => ("busy", tr.t("presence-busy")),
        Presence::WrapUp { until } => (
            "wrap-up",
            tr.t_arg("presence-wrap-up", "until", tr.date_time(*until)),
        ),
        Presence::Break { reason } => ("break", tr.t_arg("presence-break", "reason", reason)),
        Presence::Offline => ("offline", tr.t("presence-offline")),
    }
}

/// Who sees the floor: queues, dashboard and every client's items.
fn floor_role(role: Role) -> bool {
    matches!(role, Role::Admin | Role::Manager | Role::TeamLead)
}

/// A signed-in user opening a page. Without a session the browser is sent to sign in.
pub struct Web {
    pub caller: Caller,
    pub ctx: Ctx,
}

impl FromRequestParts<AppState> for Web {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let caller = match Caller::from_request_parts(parts, state).await {
            Ok(caller) => caller,
            Err(ApiError::Unauthenticated) => return Err(Redirect::to("/login").into_response()),
            Err(other) => return Err(other.into_response()),
        };
        let preferences = &caller.user.preferences;
        let tr = state.i18n.for_user(
            preferences.language.as_deref(),
            accept_language(&parts.headers),
            preferences.time_zone.as_deref(),
        );
        let nav = Some(Nav::of(&caller, &tr));
        let csrf = csrf_token(parts);
        Ok(Web {
            caller,
            ctx: Ctx { tr, csrf, nav },
        })
    }
}

impl Web {
    /// The form was rendered by us for this browser.
    pub fn check_csrf(&self, posted: &str) -> Result<(), ApiError> {
        if !posted.is_empty() && auth::same_secret(&self.ctx.csrf, posted) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(self.ctx.t("form-expired")))
        }
    }

    /// Pages for the provider's floor; anyone else finds nothing here.
    pub fn require_floor(&self) -> Result<(), ApiError> {
        self.require(floor_role(self.caller.role()))
    }

    pub fn require(&self, allowed: bool) -> Result<(), ApiError> {
        if allowed {
            Ok(())
        } else {
            Err(ApiError::NotFound("page"))
        }
    }
}

fn accept_language(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
}

/// The words for a page without a signed-in user: the language last chosen in this
/// browser, else the browser's.
fn anonymous_tr(state: &AppState, parts: &Parts) -> Tr {
    state.i18n.for_user(
        auth::cookie(&parts.headers, LANGUAGE_COOKIE),
        accept_language(&parts.headers),
        None,
    )
}

fn language_cookie(language: &str) -> String {
    format!("{LANGUAGE_COOKIE}={language}; SameSite=Lax; Path=/; Max-Age=31536000")
}

/// The token this browser's forms carry: the cookie's, or the one the middleware just
/// set.
fn csrf_token(parts: &Parts) -> String {
    parts
        .extensions
        .get::<FreshCsrf>()
        .map(|fresh| fresh.0.clone())
        .or_else(|| auth::cookie(&parts.headers, CSRF_COOKIE).map(str::to_owned))
        .unwrap_or_default()
}

#[derive(Clone)]
struct FreshCsrf(String);

/// Gives a browser without a form token one: a random value in an HTTP-only, same-site
/// cookie that every form posts back (double submit).
async fn csrf_cookie(mut request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let has_token =
        auth::cookie(&parts.headers, CSRF_COOKIE).is_some_and(|token| token.len() == 64);
    request = Request::from_parts(parts, body);
    if has_token {
        return next.run(request).await;
    }
    let token = match auth::random_secret() {
        Ok(token) => token,
        Err(error) => return ApiError::Internal(error).into_response(),
    };
    request.extensions_mut().insert(FreshCsrf(token.clone()));
    let mut response = next.run(request).await;
    let cookie = format!("{CSRF_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    ctx: Ctx,
    status: u16,
    title: String,
    detail: Option<String>,
}

/// Browsers get a page, not a problem document: an API error met while rendering a page
/// (or an unknown address) is shown as an error page in the user's language. Not found
/// looks the same whatever was not found, and internal details stay in the log.
pub async fn html_errors(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let wants_html = !request.uri().path().starts_with("/api/")
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"));
    if !wants_html {
        return next.run(request).await;
    }
    // Only what choosing the language needs is kept; most pages are no error.
    let language = auth::cookie(request.headers(), LANGUAGE_COOKIE).map(str::to_owned);
    let accept = accept_language(request.headers()).map(str::to_owned);
    let response = next.run(request).await;
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !is_problem {
        return response;
    }
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED {
        return Redirect::to("/login").into_response();
    }
    let tr = state
        .i18n
        .for_user(language.as_deref(), accept.as_deref(), None);
    let detail = match status {
        StatusCode::NOT_FOUND => None,
        status if status.is_server_error() => None,
        _ => problem_detail(response).await,
    };
    let title = tr.t(match status {
        StatusCode::NOT_FOUND => "not-found-title",
        StatusCode::FORBIDDEN => "forbidden-title",
        status if status.is_server_error() => "server-error-title",
        _ => "bad-request-title",
    });
    error_page(tr, status, title, detail)
}

fn error_page(tr: Tr, status: StatusCode, title: String, detail: Option<String>) -> Response {
    let page = ErrorPage {
        ctx: Ctx {
            tr,
            csrf: String::new(),
            nav: None,
        },
        status: status.as_u16(),
        title,
        detail,
    };
    render(status, &page)
}

async fn problem_detail(response: Response) -> Option<String> {
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .ok()?;
    let problem: serde_json::Value = serde_json::from_slice(&body).ok()?;
    problem["detail"].as_str().map(str::to_owned)
}

/// A rendered page; a template that fails to render is a bug, logged and shown as an
/// internal error.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (
            status,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            html,
        )
            .into_response(),
        Err(error) => {
            ApiError::Internal(anyhow::anyhow!("rendering a page: {error}")).into_response()
        }
    }
}

pub fn page(page: &impl Template) -> Result<Response, ApiError> {
    Ok(render(StatusCode::OK, page))
}

/// The stylesheet, compiled in.
async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/delego.css"),
    )
        .into_response()
}
