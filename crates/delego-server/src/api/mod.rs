//! The JSON API under `/api/v1`. Each module owns one resource; every handler is
//! annotated for the OpenAPI document.

use std::str::FromStr;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

pub(crate) mod articles;
pub(crate) mod attachments;
mod csv_upload;
pub(crate) mod directory;
mod item_import;
pub(crate) mod items;
mod mail;
pub(crate) mod metrics;
mod notifications;
mod parents;
pub(crate) mod public;
pub(crate) mod registers;
pub(crate) mod session;
mod staffing;
pub(crate) mod tasks;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(session::login))
        .routes(routes!(session::logout))
        .routes(routes!(session::me))
        .routes(routes!(session::create_token, session::list_tokens))
        .routes(routes!(session::revoke_token))
        .routes(routes!(directory::list_clients, directory::create_client))
        .routes(routes!(directory::get_client))
        .routes(routes!(directory::list_users, directory::create_user))
        .routes(routes!(directory::list_workers, directory::create_worker))
        .routes(routes!(directory::get_worker))
        .routes(routes!(directory::set_presence))
        .routes(routes!(directory::list_services))
        .routes(routes!(directory::get_service))
        .routes(routes!(
            directory::list_engagements,
            directory::create_engagement
        ))
        .routes(routes!(directory::get_engagement))
        .routes(routes!(directory::set_engagement_settings))
        .routes(routes!(staffing::staffing_plan))
        .routes(routes!(items::create_item))
        .routes(routes!(items::create_batch))
        .routes(routes!(item_import::import_items))
        .routes(routes!(items::list_items))
        .routes(routes!(items::get_item, items::update_item))
        .routes(routes!(items::add_message, items::list_messages))
        .routes(routes!(items::cancel_item))
        .routes(routes!(items::merge_item))
        .routes(routes!(items::item_history))
        .routes(routes!(items::item_tasks))
        .routes(routes!(mail::item_mail))
        .routes(routes!(mail::inbound))
        .routes(routes!(mail::kept_aside))
        .routes(routes!(mail::kept_aside_message))
        .routes(routes!(items::requester_links))
        .routes(routes!(parents::set_parent, parents::unlink_parent))
        .routes(routes!(registers::list_client_entries))
        .routes(routes!(
            registers::get_client_entry,
            registers::put_client_entry,
            registers::delete_client_entry
        ))
        .routes(routes!(registers::import_client_entries))
        .routes(routes!(registers::list_entries))
        .routes(routes!(
            registers::get_entry,
            registers::put_entry,
            registers::delete_entry
        ))
        .routes(routes!(registers::import_entries))
        .routes(routes!(attachments::upload, attachments::list))
        .routes(routes!(attachments::get_attachment))
        .routes(routes!(attachments::content))
        .routes(routes!(articles::list_articles, articles::create_article))
        .routes(routes!(articles::get_article, articles::update_article))
        .routes(routes!(tasks::claim_next))
        .routes(routes!(tasks::get_task))
        .routes(routes!(tasks::start_task))
        .routes(routes!(tasks::submit_task))
        .routes(routes!(tasks::release_task))
        .routes(routes!(tasks::renew_lease))
        .routes(routes!(tasks::queues))
        .routes(routes!(metrics::metrics))
        .routes(routes!(tasks::my_offers))
        .routes(routes!(tasks::accept_offer))
        .routes(routes!(tasks::reject_offer))
        .routes(routes!(tasks::eligibility))
        .routes(routes!(tasks::assignment))
        .routes(routes!(public::csat_page, public::rate))
        .routes(routes!(public::thread, public::reply))
        .routes(routes!(notifications::list_notifications))
        .routes(routes!(notifications::read_notification))
}

/// A field's value is not acceptable; `error` says why, in the user's terms.
pub(crate) fn invalid(field: &str, error: impl ToString) -> ApiError {
    ApiError::field(field, "invalid", error.to_string())
}

/// Parses a path id; a malformed id is just another unknown id.
pub fn parse_id<T: FromStr>(raw: &str, what: &'static str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound(what))
}

/// Hides an object of a client outside the caller's scope behind the same 404 as an
/// unknown one.
pub fn in_scope<T>(
    caller: &Caller,
    client: delego_core::id::ClientId,
    value: T,
    what: &'static str,
) -> Result<T, ApiError> {
    if caller.scope.allows(client) {
        Ok(value)
    } else {
        Err(ApiError::NotFound(what))
    }
}
