//! The knowledge base beside a task whose step form has an `article` field: search the
//! engagement's articles, pick the one that solves the ticket (it fills the field), or
//! write a new one, which the submission adds to the knowledge base and names.

use delego_core::definition::{FieldError, Form};
use delego_core::model::{Task, WorkItem};
use serde_json::{Map, Value as Json};

use super::Web;
use super::forms::Posted;
use super::portal::query_value;
use crate::AppState;
use crate::api::articles::{self, ArticleBody, SearchQuery};
use crate::error::ApiError;

/// How many articles a search lists beside the task.
const LISTED: u32 = 10;

/// The names of the new article's inputs in the task form.
const NEW_TITLE: &str = "new_article_title";
const NEW_BODY: &str = "new_article_body";
const NEW_TAGS: &str = "new_article_tags";

/// The knowledge-base panel of a task page.
pub struct Knowledge {
    /// The step form's article field, which picking an article fills.
    pub field: String,
    pub query: String,
    pub articles: Vec<ArticleRow>,
    /// The title of the article the field names now, if it is one of the engagement's.
    pub chosen: Option<String>,
    pub new_article: NewArticle,
}

pub struct ArticleRow {
    pub id: String,
    pub title: String,
    pub body: String,
    /// "Tags: …", for an article with tags.
    pub tags: Option<String>,
    /// The task page with the article in its field (without scripts).
    pub href: String,
    /// "Chosen article: …", shown once a script has filled the field in place.
    pub chosen: String,
    pub use_label: String,
}

/// The new article's inputs as typed, with their errors.
pub struct NewArticle {
    pub title: String,
    pub body: String,
    pub tags: String,
    pub title_error: Option<String>,
    pub body_error: Option<String>,
    pub tags_error: Option<String>,
    /// A refusal of the new article as a whole (an article picked as well, say).
    pub error: Option<String>,
}

/// The new article typed into the task form, if a title or text was: tags are separated
/// by commas or spaces.
pub fn posted_article(posted: &Posted) -> Option<ArticleBody> {
    let text = |name: &str| posted.first(name).unwrap_or_default().to_owned();
    let (title, body) = (text(NEW_TITLE), text(NEW_BODY));
    if title.trim().is_empty() && body.trim().is_empty() {
        return None;
    }
    let tags = text(NEW_TAGS)
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|tag| !tag.is_empty())
        .map(str::to_owned)
        .collect();
    Some(ArticleBody { title, body, tags })
}

/// The panel for a task whose step `form` has an article field: the articles matching
/// `query` (the latest ones when it is blank), the article the field names (as posted, or
/// `current`), and the new article as posted with its `errors`.
#[allow(clippy::too_many_arguments)]
pub async fn panel(
    state: &AppState,
    web: &Web,
    task: &Task,
    item: &WorkItem,
    form: &Form,
    query: &str,
    posted: Option<&Posted>,
    current: &Map<String, Json>,
    errors: &[FieldError],
) -> Result<Option<Knowledge>, ApiError> {
    let Some(field) = form.article_field().map(|field| field.name.to_string()) else {
        return Ok(None);
    };
    let search = SearchQuery {
        q: Some(query.to_owned()),
        limit: Some(LISTED),
    };
    let found =
        articles::search(state, &web.caller, &item.engagement_id.to_string(), &search).await?;
    let chosen_text = |title: &str| web.ctx.t_args("kb-chosen", &[("title", title)]);
    let articles = found
        .into_iter()
        .map(|article| ArticleRow {
            href: format!(
                "/work/tasks/{}?kb={}&article={}",
                task.id,
                query_value(query),
                article.id
            ),
            id: article.id.to_string(),
            chosen: chosen_text(&article.title),
            use_label: web.ctx.t_args("kb-use", &[("title", &article.title)]),
            tags: (!article.tags.is_empty()).then(|| {
                let tags: Vec<&str> = article.tags.iter().map(|tag| tag.as_str()).collect();
                web.ctx.t_args("kb-tags", &[("tags", &tags.join(", "))])
            }),
            title: article.title,
            body: article.body,
        })
        .collect();
    let named = match posted {
        Some(posted) => posted.first(&field).map(str::to_owned),
        None => current
            .get(&field)
            .and_then(Json::as_str)
            .map(str::to_owned),
    };
    let mut chosen = None;
    if let Some(id) = named.and_then(|id| id.trim().parse().ok()) {
        // Only an article of this item's engagement is named; anything else stays a bare
        // value for the submission to refuse.
        chosen = match state.store.article(id).await {
            Ok(article) if article.engagement_id == item.engagement_id => {
                Some(chosen_text(&article.title))
            }
            _ => None,
        };
    }
    let error_of = |matches: &dyn Fn(&str) -> bool| super::forms::field_error(errors, matches);
    let typed = |name: &str| {
        posted
            .and_then(|posted| posted.first(name))
            .unwrap_or_default()
            .to_owned()
    };
    Ok(Some(Knowledge {
        field,
        query: query.to_owned(),
        articles,
        chosen,
        new_article: NewArticle {
            title: typed(NEW_TITLE),
            body: typed(NEW_BODY),
            tags: typed(NEW_TAGS),
            title_error: error_of(&|field| field == "new_article.title"),
            body_error: error_of(&|field| field == "new_article.body"),
            tags_error: error_of(&|field| field.starts_with("new_article.tags")),
            error: error_of(&|field| field == "new_article"),
        },
    }))
}
