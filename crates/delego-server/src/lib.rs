//! Delego's HTTP server: the JSON API under `/api/v1` with its OpenAPI document, identity,
//! and the background runtime that fires timers.
//!
//! Isolation rule: every handler that reads or changes client data checks the caller's
//! [`auth::Caller::scope`]; what lies outside it answers 404, exactly like what does not
//! exist.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use delego_core::clock::Clock;
use delego_store::Backend;
use jiff::SignedDuration;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub mod api;
pub mod auth;
pub mod blobs;
pub mod error;
pub mod i18n;
pub mod json;
pub mod links;
pub mod mail;
pub mod prometheus;
pub mod runtime;
mod web;

/// Settings of one server process.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long a sign-in lasts.
    pub session_ttl: SignedDuration,
    /// Mark cookies `Secure`; turn on behind HTTPS.
    pub secure_cookies: bool,
    /// Requests per minute allowed to one API token.
    pub token_requests_per_minute: u32,
    /// The largest JSON body accepted.
    pub max_body_bytes: usize,
    /// The largest attachment accepted.
    pub max_attachment_bytes: u64,
    /// The address requesters reach this server at, for the links sent to them.
    pub public_url: String,
    /// How long a claimed task is held before its worker's client must renew it.
    pub task_lease: SignedDuration,
    /// How often a worker waiting for a task looks again even without a notification.
    pub wake_poll_interval: std::time::Duration,
    /// On shutdown, put held tasks back in line (kept for their holders for a while):
    /// right for a single node; several nodes rely on leases instead.
    pub hand_back_on_shutdown: bool,
    /// The bearer token Prometheus scrapes `/metrics` with; without one, `/metrics` does
    /// not exist.
    pub metrics_token: Option<String>,
    /// How the node sends and receives mail.
    pub mail: mail::MailConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            session_ttl: SignedDuration::from_hours(12),
            secure_cookies: false,
            token_requests_per_minute: 600,
            max_body_bytes: 1024 * 1024,
            max_attachment_bytes: 25 * 1024 * 1024,
            public_url: "http://127.0.0.1:8080".into(),
            task_lease: SignedDuration::from_mins(5),
            wake_poll_interval: std::time::Duration::from_secs(2),
            hand_back_on_shutdown: true,
            metrics_token: None,
            mail: mail::MailConfig::default(),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub store: Arc<dyn Backend>,
    pub clock: Arc<dyn Clock>,
    /// Attachment content; the store holds only its metadata.
    pub blobs: Arc<dyn blobs::BlobStore>,
    pub config: Config,
    pub limits: auth::Limits,
    /// A hash to verify against when an account does not exist, so that a failed sign-in
    /// takes as long either way.
    pub dummy_hash: tokio::sync::OnceCell<String>,
    /// True once shutdown begins: `/readyz` fails so load balancers stop sending work,
    /// and workers waiting for a task are answered at once.
    pub draining: tokio::sync::watch::Sender<bool>,
    /// The web UI's words in every language it speaks.
    pub i18n: i18n::I18n,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(
        store: Arc<dyn Backend>,
        clock: Arc<dyn Clock>,
        blobs: Arc<dyn blobs::BlobStore>,
        config: Config,
    ) -> Self {
        let limits = auth::Limits::new(config.token_requests_per_minute);
        store.set_task_lease(config.task_lease);
        Self(Arc::new(Shared {
            store,
            clock,
            blobs,
            config,
            limits,
            dummy_hash: tokio::sync::OnceCell::new(),
            draining: tokio::sync::watch::Sender::new(false),
            // The message files are compiled in; a unit test loads them, so this holds.
            i18n: i18n::I18n::load().expect("the embedded Fluent files load"),
        }))
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Delego API",
        description = "Clients, engagements, work items and tasks of an outsourcing provider. \
                       Errors are RFC 9457 problem documents. Authenticate with the session \
                       cookie from `POST /api/v1/auth/login` or `Authorization: Bearer <token>`."
    ),
    components(schemas(error::Problem))
)]
struct ApiDoc;

/// The API router and its OpenAPI document.
pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let max_body = state.config.max_body_bytes;
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", api::routes())
        .split_for_parts();
    let document = openapi.clone();
    let app = api
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let document = document.clone();
                async move { axum::Json(document) }
            }),
        )
        .merge(web::routes())
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route("/metrics", axum::routing::get(prometheus::scrape))
        .route("/readyz", axum::routing::get(readyz))
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::html_errors,
        ))
        .layer(axum::middleware::from_fn(move |request, next| {
            refuse_announced_oversize(max_body, request, next)
        }))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state);
    (app, openapi)
}

/// Ready when the database answers and the node is not shutting down.
async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if *state.draining.borrow() {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    match state.store.ping().await {
        Ok(()) => "ready".into_response(),
        Err(error) => {
            tracing::warn!(%error, "not ready: the database does not answer");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "the database does not answer",
            )
                .into_response()
        }
    }
}

/// Answers a body announced larger than the limit at once, from its `Content-Length`,
/// rather than after reading it. Chunked bodies are cut off by `DefaultBodyLimit`.
async fn refuse_announced_oversize(
    max_body: usize,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if is_attachment_upload(&request) {
        return next.run(request).await;
    }
    let announced = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match announced {
        Some(length) if length > max_body => error::ApiError::PayloadTooLarge(format!(
            "the body has {length} bytes; at most {max_body} are accepted"
        ))
        .into_response(),
        _ => next.run(request).await,
    }
}

/// Attachment uploads (raw files, the portal's intake form with its files) and inbound mail
/// have their own, larger limits (`Config::max_attachment_bytes`, `MAX_MESSAGE_SIZE`), which
/// their handlers enforce, beyond the reach of `DefaultBodyLimit`.
fn is_attachment_upload(request: &axum::extract::Request) -> bool {
    let path = request.uri().path();
    request.method() == axum::http::Method::POST
        && ((path.starts_with("/api/v1/items/") && path.ends_with("/attachments"))
            || (path.starts_with("/portal/engagements/") && path.ends_with("/new"))
            || path == "/api/v1/mail/inbound")
}

/// After a shutdown, how long each handed-back task is kept for the worker who held it.
pub const HOLDER_KEEPS_FOR: SignedDuration = SignedDuration::from_mins(10);

/// Serves until `shutdown` resolves, running the background runtime beside the API.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (app, _) = router(state.clone());
    let background = tokio::spawn(runtime::run(state.clone()));
    let draining = state.clone();
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        draining.draining.send_replace(true);
    })
    .await?;
    background.abort();
    if state.config.hand_back_on_shutdown {
        let handed = state.store.hand_back_held_tasks(HOLDER_KEEPS_FOR).await?;
        tracing::info!(
            handed,
            "held tasks are back in line, kept for their holders for a while"
        );
    }
    Ok(())
}
