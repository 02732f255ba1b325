//! The UI's words, in Project Fluent files (`locales/<tag>/main.ftl`), one bundle per
//! language. Adding a language is adding a file and a line to [`LOCALES`].

use std::collections::HashMap;
use std::sync::Arc;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};
use fluent_langneg::{NegotiationStrategy, accepted_languages, negotiate_languages};
use unic_langid::LanguageIdentifier;

type Bundle = FluentBundle<FluentResource>;

/// Embedded, so that the binary needs no data directory. The first is the default.
const LOCALES: &[(&str, &str)] = &[
    ("en", include_str!("../locales/en/main.ftl")),
    ("sk", include_str!("../locales/sk/main.ftl")),
];

pub struct I18n {
    bundles: HashMap<LanguageIdentifier, Arc<Bundle>>,
    available: Vec<LanguageIdentifier>,
}

impl I18n {
    /// Loads every bundle; a broken `.ftl` file is a bug, reported with its language.
    pub fn load() -> Result<Self, String> {
        let mut bundles = HashMap::new();
        let mut available = Vec::new();
        for (tag, source) in LOCALES {
            let language: LanguageIdentifier = tag.parse().map_err(|e| format!("{tag}: {e}"))?;
            let resource = FluentResource::try_new((*source).to_owned())
                .map_err(|(_, errors)| format!("{tag}: {errors:?}"))?;
            let mut bundle = Bundle::new_concurrent(vec![language.clone()]);
            // Isolation marks around arguments would end up as invisible characters in
            // the HTML; the arguments are plain text.
            bundle.set_use_isolating(false);
            bundle
                .add_resource(resource)
                .map_err(|errors| format!("{tag}: {errors:?}"))?;
            available.push(language.clone());
            bundles.insert(language, Arc::new(bundle));
        }
        Ok(Self { bundles, available })
    }

    /// The best of our languages for an `Accept-Language` header; English otherwise.
    pub fn negotiate(&self, accept_language: Option<&str>) -> Tr {
        let requested = accepted_languages::parse(accept_language.unwrap_or(""));
        let default = &self.available[0];
        let chosen = negotiate_languages(
            &requested,
            &self.available,
            Some(default),
            NegotiationStrategy::Lookup,
        );
        let language = chosen.first().copied().unwrap_or(default).clone();
        Tr {
            bundle: self.bundles[&language].clone(),
            language: language.to_string(),
        }
    }
}

/// One request's translator, handed to templates.
pub struct Tr {
    language: String,
    bundle: Arc<Bundle>,
}

impl Tr {
    pub fn language(&self) -> &str {
        &self.language
    }

    /// The message `id`; its id itself if it is missing, so a gap shows instead of hiding.
    pub fn t(&self, id: &str) -> String {
        self.format(id, None)
    }

    pub fn t_arg(&self, id: &str, name: &str, value: &str) -> String {
        let mut args = FluentArgs::new();
        args.set(name.to_owned(), value.to_owned());
        self.format(id, Some(&args))
    }

    fn format(&self, id: &str, args: Option<&FluentArgs>) -> String {
        let Some(pattern) = self.bundle.get_message(id).and_then(|m| m.value()) else {
            return id.to_owned();
        };
        let mut errors = Vec::new();
        self.bundle
            .format_pattern(pattern, args, &mut errors)
            .into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browser_language_picks_slovak_or_falls_back_to_english() {
        let i18n = I18n::load().unwrap();
        assert_eq!(
            i18n.negotiate(Some("sk-SK,sk;q=0.9,en;q=0.5")).language(),
            "sk"
        );
        assert_eq!(i18n.negotiate(Some("en-US,en;q=0.9")).language(), "en");
        assert_eq!(i18n.negotiate(Some("de-DE")).language(), "en");
        assert_eq!(i18n.negotiate(None).language(), "en");
    }

    #[test]
    fn every_message_exists_in_every_language() {
        let ids = |source: &str| -> Vec<String> {
            source
                .lines()
                .filter_map(|line| line.split_once(" = ").map(|(id, _)| id.trim().to_owned()))
                .filter(|id| !id.starts_with(' ') && !id.is_empty())
                .collect()
        };
        let english = ids(LOCALES[0].1);
        for (tag, source) in &LOCALES[1..] {
            assert_eq!(ids(source), english, "{tag} lists other messages than en");
        }
    }
}
