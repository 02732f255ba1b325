//! The knowledge base: articles kept per engagement, which agents search while they work
//! and a resolution names (a step form's field of type `article`).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::definition::FieldError;
use crate::id::{ArticleId, ClientId, EngagementId};
use crate::model::Actor;
use crate::values::Key;

/// One article of an engagement's knowledge base.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Article {
    pub id: ArticleId,
    pub client_id: ClientId,
    pub engagement_id: EngagementId,
    pub title: String,
    pub body: String,
    /// Sorted, each once.
    pub tags: Vec<Key>,
    pub created_by: Actor,
    pub updated_by: Actor,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Bumped by every change: an update may be conditioned on it.
    pub version: i64,
}

/// An article's content as written, checked and normalised: trimmed title and body, tags
/// lower-cased, sorted and each once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArticleDraft {
    pub title: String,
    pub body: String,
    pub tags: Vec<Key>,
}

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_BODY_CHARS: usize = 100_000;
pub const MAX_TAGS: usize = 20;
/// Words of a search beyond these are ignored: each is one more `LIKE` per article.
pub const MAX_SEARCH_WORDS: usize = 8;

impl ArticleDraft {
    /// Checks an article's parts; each error names its field under `prefix` (`title`,
    /// `new_article.body`, `tags[2]`).
    pub fn parse(
        prefix: &str,
        title: &str,
        body: &str,
        tags: &[String],
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut error = |field: String, code: &str, message: String| {
            errors.push(FieldError {
                field,
                code: code.to_owned(),
                message,
            });
        };
        let mut text = |name: &str, value: &str, max: usize| {
            let value = value.trim();
            let field = format!("{prefix}{name}");
            if value.is_empty() {
                error(field, "required", "is required".into());
            } else if value.chars().count() > max {
                error(field, "too_long", format!("write at most {max} characters"));
            }
            value.to_owned()
        };
        let title = text("title", title, MAX_TITLE_CHARS);
        let body = text("body", body, MAX_BODY_CHARS);
        let mut keys = Vec::new();
        for (n, tag) in tags.iter().enumerate() {
            match Key::parse(&tag.trim().to_lowercase()) {
                Ok(key) => keys.push(key),
                Err(problem) => error(format!("{prefix}tags[{n}]"), "invalid", problem.0),
            }
        }
        keys.sort();
        keys.dedup();
        if keys.len() > MAX_TAGS {
            error(
                format!("{prefix}tags"),
                "too_many_items",
                format!("give at most {MAX_TAGS} tags"),
            );
        }
        if errors.is_empty() {
            Ok(Self {
                title,
                body,
                tags: keys,
            })
        } else {
            Err(errors)
        }
    }

    /// What a search looks in: title, body and tags, lower-cased here rather than in SQL,
    /// whose `lower()` differs between the backends outside ASCII.
    pub fn search_text(&self) -> String {
        let tags: Vec<&str> = self.tags.iter().map(Key::as_str).collect();
        format!("{}\n{}\n{}", self.title, self.body, tags.join(" ")).to_lowercase()
    }
}

/// The words of a search, lower-cased: an article matches when its search text contains
/// every one of them.
pub fn search_words(query: &str) -> Vec<String> {
    query
        .split_whitespace()
        .take(MAX_SEARCH_WORDS)
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draft_is_trimmed_and_its_tags_normalised() {
        let draft = ArticleDraft::parse(
            "",
            "  VPN drops every hour ",
            " Renew the lease.\n",
            &["Network".into(), "vpn".into(), "network".into()],
        )
        .unwrap();
        assert_eq!(draft.title, "VPN drops every hour");
        assert_eq!(draft.body, "Renew the lease.");
        let tags: Vec<&str> = draft.tags.iter().map(Key::as_str).collect();
        assert_eq!(tags, ["network", "vpn"]);
        assert_eq!(
            draft.search_text(),
            "vpn drops every hour\nrenew the lease.\nnetwork vpn"
        );
    }

    #[test]
    fn every_problem_is_named_under_its_prefix() {
        let errors = ArticleDraft::parse(
            "new_article.",
            " ",
            &"x".repeat(MAX_BODY_CHARS + 1),
            &["ok".into(), "not a tag".into()],
        )
        .unwrap_err();
        let fields: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("new_article.title", "required"),
                ("new_article.body", "too_long"),
                ("new_article.tags[1]", "invalid"),
            ]
        );
    }

    #[test]
    fn a_search_is_its_first_words_lower_cased() {
        assert_eq!(search_words("  Printer  OFFLINE "), ["printer", "offline"]);
        assert_eq!(search_words(&"a ".repeat(20)).len(), MAX_SEARCH_WORDS);
        assert!(search_words("   ").is_empty());
    }
}
