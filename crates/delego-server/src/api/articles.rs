//! The knowledge base: articles kept per engagement. Staff within scope read and write
//! them; a client's users may read their own engagements' articles (the answers their
//! tickets were resolved with), never write them.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use delego_core::identity::Role;
use delego_core::knowledge::{Article, ArticleDraft};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::items::{if_match, visible_engagement};
use super::{in_scope, parse_id};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::ApiJson;

/// An article as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct ArticleView {
    #[schema(value_type = String)]
    id: delego_core::id::ArticleId,
    #[schema(value_type = String)]
    client_id: delego_core::id::ClientId,
    #[schema(value_type = String)]
    engagement_id: delego_core::id::EngagementId,
    title: String,
    body: String,
    #[schema(value_type = Vec<String>)]
    tags: Vec<delego_core::values::Key>,
    #[schema(value_type = Object)]
    created_by: delego_core::model::Actor,
    #[schema(value_type = Object)]
    updated_by: delego_core::model::Actor,
    #[schema(value_type = String, format = DateTime)]
    created_at: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: jiff::Timestamp,
    /// The concurrency token; also sent as the `ETag` header.
    version: i64,
}

impl From<Article> for ArticleView {
    fn from(article: Article) -> Self {
        Self {
            id: article.id,
            client_id: article.client_id,
            engagement_id: article.engagement_id,
            title: article.title,
            body: article.body,
            tags: article.tags,
            created_by: article.created_by,
            updated_by: article.updated_by,
            created_at: article.created_at,
            updated_at: article.updated_at,
            version: article.version,
        }
    }
}

/// An article's content, to create one or to replace one's.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticleBody {
    /// 1 to 200 characters.
    pub(crate) title: String,
    /// 1 to 100,000 characters.
    pub(crate) body: String,
    /// Up to 20 keys (lower-case letters, digits, `_` and `-`); stored lower-cased, sorted,
    /// each once.
    #[serde(default)]
    pub(crate) tags: Vec<String>,
}

impl ArticleBody {
    /// The checked content; field errors are named under `prefix`.
    pub(crate) fn draft(&self, prefix: &str) -> ApiResult<ArticleDraft> {
        ArticleDraft::parse(prefix, &self.title, &self.body, &self.tags)
            .map_err(|errors| delego_store::StoreError::Invalid(errors).into())
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words that must all appear in the title, body or tags (any case); all articles
    /// when left out.
    pub(crate) q: Option<String>,
    /// 1 to 200, default 50.
    pub(crate) limit: Option<u32>,
}

fn article_response(status: StatusCode, article: Article) -> Response {
    let tag = HeaderValue::from_str(&format!("\"{}\"", article.version));
    let mut response = (status, axum::Json(ArticleView::from(article))).into_response();
    if let Ok(tag) = tag {
        response.headers_mut().insert(header::ETAG, tag);
    }
    response
}

/// Client users read the knowledge base; writing it is the provider's.
fn require_staff(caller: &Caller) -> ApiResult<()> {
    if caller.role() == Role::ClientUser {
        Err(ApiError::Forbidden(
            "client users read the knowledge base; the provider's staff write it".into(),
        ))
    } else {
        Ok(())
    }
}

/// The articles of an engagement the caller may see that match `query`, most recently
/// updated first: the API's list and the agent's search beside a task.
pub(crate) async fn search(
    state: &AppState,
    caller: &Caller,
    engagement: &str,
    query: &SearchQuery,
) -> ApiResult<Vec<Article>> {
    let engagement = visible_engagement(state, caller, engagement).await?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::field("limit", "out_of_range", "use 1 to 200"));
    }
    let text = query.q.as_deref().unwrap_or_default();
    Ok(state.store.articles(engagement.id, text, limit).await?)
}

/// Searches an engagement's knowledge base.
#[utoipa::path(get, path = "/engagements/{id}/articles", tag = "knowledge",
    params(("id" = String, Path), SearchQuery),
    responses((status = 200, body = Vec<ArticleView>), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn list_articles(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<Vec<ArticleView>>> {
    let Query(query) = query.map_err(|e| ApiError::field("query", "invalid", e.body_text()))?;
    let articles = search(&state, &caller, &id, &query).await?;
    Ok(axum::Json(articles.into_iter().map(Into::into).collect()))
}

/// Adds an article to an engagement's knowledge base (staff only).
#[utoipa::path(post, path = "/engagements/{id}/articles", tag = "knowledge",
    params(("id" = String, Path)), request_body = ArticleBody,
    responses((status = 201, body = ArticleView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create_article(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ArticleBody>,
) -> ApiResult<Response> {
    let engagement = visible_engagement(&state, &caller, &id).await?;
    require_staff(&caller)?;
    let draft = body.draft("")?;
    let article = state
        .store
        .create_article(engagement.id, draft, &caller.actor())
        .await?;
    let location = format!("/api/v1/articles/{}", article.id);
    let mut response = article_response(StatusCode::CREATED, article);
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn visible_article(state: &AppState, caller: &Caller, raw: &str) -> ApiResult<Article> {
    let article = state.store.article(parse_id(raw, "article")?).await?;
    in_scope(caller, article.client_id, article.clone(), "article")
}

/// One article, with its version as the `ETag`.
#[utoipa::path(get, path = "/articles/{id}", tag = "knowledge", params(("id" = String, Path)),
    responses((status = 200, body = ArticleView), (status = 404, body = Problem)))]
pub async fn get_article(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let article = visible_article(&state, &caller, &id).await?;
    Ok(article_response(StatusCode::OK, article))
}

/// Replaces an article's title, body and tags (staff only). `If-Match` with its ETag is
/// honoured when sent: a stale one is 412.
#[utoipa::path(put, path = "/articles/{id}", tag = "knowledge",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)), request_body = ArticleBody,
    responses((status = 200, body = ArticleView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_article(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ArticleBody>,
) -> ApiResult<Response> {
    let article = visible_article(&state, &caller, &id).await?;
    require_staff(&caller)?;
    let expected = if_match(&headers)?;
    let draft = body.draft("")?;
    let updated = state
        .store
        .update_article(article.id, draft, expected, &caller.actor())
        .await
        .map_err(|error| match error {
            delego_store::StoreError::Conflict(detail) => ApiError::PreconditionFailed(detail),
            other => other.into(),
        })?;
    Ok(article_response(StatusCode::OK, updated))
}
