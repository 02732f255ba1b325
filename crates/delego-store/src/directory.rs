//! People and files: users, sessions, API tokens, requesters, attachments' metadata, and
//! the provider's secrets. Implemented for both backends by `sql_directory.rs`.

use async_trait::async_trait;
use delego_core::id::{
    ApiTokenId, AttachmentId, ClientId, RequesterId, UserId, WorkItemId, WorkerId,
};
use delego_core::identity::{Preferences, Role, User};
use delego_core::model::{Actor, ApiToken, Attachment, Engagement, Requester, Worker};
use delego_core::values::{EmailAddress, Name};
use jiff::Timestamp;

use crate::Result;

/// A user to create. The password hash is an argon2 PHC string made by the caller; the
/// store never sees a password.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub email: EmailAddress,
    pub name: Name,
    pub role: Role,
    pub client_id: Option<ClientId>,
    pub worker_id: Option<WorkerId>,
    pub password_hash: Option<String>,
}

/// A published service version, for catalog listings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceVersion {
    pub key: String,
    pub version: u32,
    pub name: String,
    pub published_at: Timestamp,
}

#[async_trait]
pub trait Directory: Send + Sync {
    /// Creates a user. A taken e-mail address is a `Conflict`; a role that does not fit
    /// its client or worker profile (see `identity::check_user_shape`) is `Invalid` with
    /// one field error; an unknown client or worker is `NotFound`. Audited as `user.created`.
    async fn create_user(&self, new: NewUser, actor: &Actor) -> Result<User>;
    async fn user(&self, id: UserId) -> Result<User>;
    /// The user with this address and its password hash, if it has one.
    async fn user_by_email(&self, email: &EmailAddress) -> Result<(User, Option<String>)>;
    /// Users, all or of one client, ordered by e-mail.
    async fn users(&self, client_id: Option<ClientId>) -> Result<Vec<User>>;
    async fn set_password_hash(&self, id: UserId, hash: &str, actor: &Actor) -> Result<()>;
    /// Sets the user's language and time zone, checked by the caller. An unknown user is
    /// `NotFound`. Audited as `user.preferences_set`.
    async fn set_preferences(
        &self,
        id: UserId,
        preferences: &Preferences,
        actor: &Actor,
    ) -> Result<()>;

    /// Stores a session by the SHA-256 of its cookie secret.
    async fn create_session(
        &self,
        user: UserId,
        secret_hash: &[u8],
        expires_at: Timestamp,
    ) -> Result<()>;
    /// The user of an unexpired session, or `None`.
    async fn session_user(&self, secret_hash: &[u8], now: Timestamp) -> Result<Option<User>>;
    async fn delete_session(&self, secret_hash: &[u8]) -> Result<()>;
    /// Removes expired sessions; returns how many.
    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64>;

    /// Stores a token by the SHA-256 of its secret. Audited as `token.created`.
    async fn create_api_token(
        &self,
        user: UserId,
        name: Name,
        secret_hash: &[u8],
        prefix: &str,
        actor: &Actor,
    ) -> Result<ApiToken>;
    /// The token and its user for an unrevoked token secret hash, recording its use.
    async fn api_token_user(
        &self,
        secret_hash: &[u8],
        now: Timestamp,
    ) -> Result<Option<(ApiToken, User)>>;
    async fn api_tokens(&self, user: UserId) -> Result<Vec<ApiToken>>;
    /// Revokes one of the user's tokens; another user's token is `NotFound`.
    async fn revoke_api_token(
        &self,
        user: UserId,
        id: ApiTokenId,
        actor: &Actor,
    ) -> Result<ApiToken>;

    /// The client's requester with this address, created on first sight.
    async fn requester_for_email(
        &self,
        client_id: ClientId,
        email: &EmailAddress,
        name: Option<Name>,
    ) -> Result<Requester>;
    async fn requester(&self, id: RequesterId) -> Result<Requester>;
    /// The client's requester with this address, if the client has seen it before.
    async fn find_requester(
        &self,
        client_id: ClientId,
        email: &EmailAddress,
    ) -> Result<Option<Requester>>;

    /// Records a stored file's metadata. Audited as `attachment.added` on its client.
    async fn create_attachment(&self, attachment: &Attachment) -> Result<()>;
    async fn attachment(&self, id: AttachmentId) -> Result<Attachment>;
    /// The attachments stored on an item, oldest first; none for an unknown item.
    async fn attachments_of_item(&self, item: WorkItemId) -> Result<Vec<Attachment>>;

    /// A named random secret of 32 bytes, created on first use; the same for every node
    /// sharing the database (signing keys for requester links).
    async fn secret(&self, name: &str) -> Result<Vec<u8>>;

    /// Engagements, all or of one client, ordered by name.
    async fn engagements(&self, client_id: Option<ClientId>) -> Result<Vec<Engagement>>;
    /// Workers ordered by name.
    async fn workers(&self) -> Result<Vec<Worker>>;
    /// Published service versions ordered by key and version.
    async fn services(&self) -> Result<Vec<ServiceVersion>>;
}
