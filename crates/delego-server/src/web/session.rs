//! Signing in and out, the start page each role lands on, and the user's own settings.

use askama::Template;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use delego_core::identity::{Preferences, Role};
use serde::Deserialize;

use super::{Ctx, Web, anonymous_tr, csrf_token, language_cookie, render};
use crate::AppState;
use crate::auth::{self, Caller};
use crate::error::ApiError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/settings", get(settings_page).post(save_settings))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    ctx: Ctx,
    email: String,
    error: Option<String>,
}

fn login_form(
    state: &AppState,
    parts: &Parts,
    status: StatusCode,
    email: String,
    error: Option<&str>,
) -> Response {
    let tr = anonymous_tr(state, parts);
    let error = error.map(|id| tr.t(id));
    let ctx = Ctx {
        tr,
        csrf: csrf_token(parts),
        nav: None,
    };
    render(status, &LoginPage { ctx, email, error })
}

async fn login_page(State(state): State<AppState>, mut parts: Parts) -> Response {
    if Caller::from_request_parts(&mut parts, &state).await.is_ok() {
        return Redirect::to("/").into_response();
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
    let token = csrf_token(&parts);
    if token.is_empty() || !auth::same_secret(&token, &form.csrf) {
        return Ok(login_form(
            &state,
            &parts,
            StatusCode::FORBIDDEN,
            form.email,
            Some("form-expired"),
        ));
    }
    let email = form.email.clone();
    match crate::api::session::open_session(&state, &form.email, form.password).await {
        Ok((user, cookie)) => {
            let mut response = (
                StatusCode::SEE_OTHER,
                [
                    (header::SET_COOKIE, cookie),
                    (header::LOCATION, "/".to_owned()),
                ],
            )
                .into_response();
            if let Some(language) = &user.preferences.language
                && let Ok(value) = language_cookie(language).parse()
            {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            Ok(response)
        }
        Err(ApiError::TooManyRequests { .. }) => Ok(login_form(
            &state,
            &parts,
            StatusCode::TOO_MANY_REQUESTS,
            email,
            Some("login-throttled"),
        )),
        Err(ApiError::Unauthenticated | ApiError::Forbidden(_)) => Ok(login_form(
            &state,
            &parts,
            StatusCode::UNAUTHORIZED,
            email,
            Some("login-wrong"),
        )),
        Err(other) => Err(other),
    }
}

/// Each role starts where its day's work is.
async fn home(web: Web) -> Redirect {
    let role = web.caller.role();
    Redirect::to(if role == Role::ClientUser {
        "/portal"
    } else if role.manages() || role == Role::TeamLead {
        "/dashboard"
    } else if web.caller.worker.is_some() {
        "/work"
    } else {
        "/settings"
    })
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    web: Web,
    parts: Parts,
    Form(form): Form<LogoutForm>,
) -> Result<Response, ApiError> {
    web.check_csrf(&form.csrf)?;
    if let Some(secret) = auth::cookie(&parts.headers, auth::SESSION_COOKIE) {
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

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    ctx: Ctx,
    /// (tag, the language's own name) for each language the UI ships.
    languages: Vec<(String, String)>,
    language: String,
    time_zones: Vec<String>,
    time_zone: String,
    saved: bool,
    error: Option<String>,
    now: jiff::Timestamp,
}

#[derive(Deserialize)]
struct SettingsQuery {
    #[serde(default)]
    saved: bool,
}

fn settings_form(
    state: &AppState,
    web: Web,
    saved: bool,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let preferences = &web.caller.user.preferences;
    let languages = state
        .i18n
        .languages()
        .map(|tag| {
            let name = state
                .i18n
                .for_user(Some(&tag), None, None)
                .t("language-name");
            (tag, name)
        })
        .collect();
    let time_zones = jiff::tz::db()
        .available()
        .map(|name| name.as_str().to_owned())
        .filter(|name| name.contains('/') || name == "UTC")
        .collect();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let settings = SettingsPage {
        languages,
        language: preferences.language.clone().unwrap_or_default(),
        time_zones,
        time_zone: web.ctx.time_zone(),
        saved,
        error,
        now: state.clock.now(),
        ctx: web.ctx,
    };
    Ok(render(status, &settings))
}

async fn settings_page(
    State(state): State<AppState>,
    web: Web,
    axum::extract::Query(query): axum::extract::Query<SettingsQuery>,
) -> Result<Response, ApiError> {
    settings_form(&state, web, query.saved, None)
}

#[derive(Deserialize)]
struct SettingsForm {
    csrf: String,
    language: String,
    time_zone: String,
}

async fn save_settings(
    State(state): State<AppState>,
    web: Web,
    Form(form): Form<SettingsForm>,
) -> Result<Response, ApiError> {
    web.check_csrf(&form.csrf)?;
    let language = Some(form.language).filter(|tag| !tag.is_empty());
    if let Some(tag) = &language
        && !state.i18n.languages().any(|known| &known == tag)
    {
        let error = web.ctx.t("settings-unknown-language");
        return settings_form(&state, web, false, Some(error));
    }
    let time_zone = form.time_zone.trim();
    let Ok(zone) = jiff::tz::TimeZone::get(time_zone) else {
        let error = web
            .ctx
            .t_arg("settings-unknown-time-zone", "zone", time_zone);
        return settings_form(&state, web, false, Some(error));
    };
    let preferences = Preferences {
        language: language.clone(),
        time_zone: zone.iana_name().map(str::to_owned),
    };
    state
        .store
        .set_preferences(web.caller.user.id, &preferences, &web.caller.actor())
        .await?;
    let mut response = Redirect::to("/settings?saved=true").into_response();
    let cookie = match &language {
        Some(tag) => language_cookie(tag),
        // Following the browser again: forget the remembered choice.
        None => format!("{}=; Path=/; Max-Age=0", super::LANGUAGE_COOKIE),
    };
    if let Ok(value) = cookie.parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}
