//! Identity: passwords, session cookies, API tokens, login throttling and per-token rate
//! limits, and the [`Caller`] every handler is given.

use std::collections::HashMap;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use delego_core::id::ApiTokenId;
use delego_core::identity::{Role, Scope, User};
use delego_core::model::{Actor, Worker};
use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

pub const SESSION_COOKIE: &str = "delego_session";
/// API token secrets start with this, so that leaked tokens are easy to scan for.
pub const TOKEN_PREFIX: &str = "dlg_";

/// An argon2id PHC string for `password`, computed off the async threads: it is slow on
/// purpose.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
    })
    .await?
}

pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

/// 32 random bytes as 64 hex digits.
pub fn random_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A new API token secret and the prefix shown in listings.
pub fn new_token_secret() -> anyhow::Result<(String, String)> {
    let secret = format!("{TOKEN_PREFIX}{}", random_secret()?);
    let prefix = secret.chars().take(TOKEN_PREFIX.len() + 6).collect();
    Ok((secret, prefix))
}

/// Secrets are stored only as their SHA-256: they are long and random, so a slow hash
/// would add nothing.
pub fn secret_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// The signed-in person behind a request, and the clients they may see.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: User,
    pub worker: Option<Worker>,
    pub scope: Scope,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        Actor::User(self.user.id)
    }

    pub fn role(&self) -> Role {
        self.user.role
    }

    /// Refuses callers who are not provider managers. Used only on routes that manage the
    /// provider itself; anything client-scoped answers 404 instead.
    pub fn require_manager(&self) -> Result<(), ApiError> {
        if self.role().manages() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "only admins and operations managers may do this".into(),
            ))
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role() == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden("only admins may do this".into()))
        }
    }

    /// The caller's worker profile, for task routes.
    pub fn worker(&self) -> Result<&Worker, ApiError> {
        self.worker.as_ref().ok_or_else(|| {
            ApiError::Forbidden("only users with a worker profile work on tasks".into())
        })
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let now = state.clock.now();
        let user = if let Some(secret) = bearer_token(parts) {
            let (token, user) = state
                .store
                .api_token_user(&secret_hash(secret), now)
                .await?
                .ok_or(ApiError::Unauthenticated)?;
            state.limits.check_token(token.id, now)?;
            user
        } else if let Some(secret) = cookie(&parts.headers, SESSION_COOKIE) {
            state
                .store
                .session_user(&secret_hash(secret), now)
                .await?
                .ok_or(ApiError::Unauthenticated)?
        } else {
            return Err(ApiError::Unauthenticated);
        };
        let worker = match user.worker_id {
            Some(id) => Some(state.store.worker(id).await?),
            None => None,
        };
        let scope = Scope::of(&user, worker.as_ref());
        Ok(Caller {
            user,
            worker,
            scope,
        })
    }
}

fn bearer_token(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

pub fn cookie<'h>(headers: &'h axum::http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The `Set-Cookie` value for a session; `secure` adds the `Secure` attribute (HTTPS).
pub fn session_cookie(secret: &str, ttl: SignedDuration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={secret}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{secure}",
        ttl.as_secs()
    )
}

pub fn expired_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0")
}

/// In-memory counters for login throttling and token rate limits. They are per node, which
/// bounds abuse per node; a shared limit across nodes would need the database.
#[derive(Default)]
pub struct Limits {
    failed_logins: std::sync::Mutex<HashMap<String, Vec<Timestamp>>>,
    token_windows: std::sync::Mutex<HashMap<ApiTokenId, (Timestamp, u32)>>,
    pub token_requests_per_minute: u32,
}

/// Failed sign-ins allowed per address in [`LOGIN_WINDOW`] before sign-in is refused.
pub const MAX_FAILED_LOGINS: usize = 5;
pub const LOGIN_WINDOW: SignedDuration = SignedDuration::from_mins(15);

impl Limits {
    pub fn new(token_requests_per_minute: u32) -> Self {
        Self {
            token_requests_per_minute,
            ..Self::default()
        }
    }

    /// Refuses a sign-in for an address that failed too often lately.
    pub fn check_login(&self, email: &str, now: Timestamp) -> Result<(), ApiError> {
        let mut failures = lock(&self.failed_logins);
        let recent = failures.entry(email.to_lowercase()).or_default();
        recent.retain(|at| now.duration_since(*at) < LOGIN_WINDOW);
        match recent.first() {
            Some(oldest) if recent.len() >= MAX_FAILED_LOGINS => {
                let wait = LOGIN_WINDOW - now.duration_since(*oldest);
                Err(ApiError::TooManyRequests {
                    retry_after: wait.as_secs().max(1).unsigned_abs(),
                })
            }
            _ => Ok(()),
        }
    }

    pub fn record_failed_login(&self, email: &str, now: Timestamp) {
        lock(&self.failed_logins)
            .entry(email.to_lowercase())
            .or_default()
            .push(now);
    }

    pub fn clear_failed_logins(&self, email: &str) {
        lock(&self.failed_logins).remove(&email.to_lowercase());
    }

    /// A fixed one-minute window per token.
    pub fn check_token(&self, token: ApiTokenId, now: Timestamp) -> Result<(), ApiError> {
        let mut windows = lock(&self.token_windows);
        let (start, count) = windows.entry(token).or_insert((now, 0));
        let elapsed = now.duration_since(*start);
        if elapsed >= SignedDuration::from_mins(1) {
            *start = now;
            *count = 0;
        }
        if *count >= self.token_requests_per_minute {
            let wait = SignedDuration::from_mins(1) - now.duration_since(*start);
            return Err(ApiError::TooManyRequests {
                retry_after: wait.as_secs().max(1).unsigned_abs(),
            });
        }
        *count += 1;
        Ok(())
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Compares digests byte by byte without stopping early, so the time taken does not tell
/// how much of a guess was right (nor the token's length).
pub fn same_secret(expected: &str, given: &str) -> bool {
    let (a, b) = (Sha256::digest(expected), Sha256::digest(given));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}
