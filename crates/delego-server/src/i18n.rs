//! The UI's words, in Project Fluent files (`locales/<tag>/main.ftl`), one bundle per
//! language. Adding a language is adding its file: the build embeds every one.
//!
//! How a language writes numbers, dates and money is in its file too (the `format-*`
//! messages), so that a new language brings its conventions with it and no crate of
//! locale data is needed for the two separators and a date pattern.

use std::collections::HashMap;
use std::sync::Arc;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};
use fluent_langneg::{NegotiationStrategy, accepted_languages, negotiate_languages};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use unic_langid::LanguageIdentifier;

type Bundle = FluentBundle<FluentResource>;

/// Embedded, so that the binary needs no data directory: (tag, file) for each language,
/// English first as the default (written by `build.rs`).
const LOCALES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/locales.rs"));

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

    /// The tags of the languages the UI ships, the default first.
    pub fn languages(&self) -> impl Iterator<Item = String> + '_ {
        self.available.iter().map(|language| language.to_string())
    }

    /// The user's own language if they chose one we ship, else the best of ours for the
    /// browser's `Accept-Language`, else English; times shown in `time_zone` (UTC when
    /// unset or unknown).
    pub fn for_user(
        &self,
        language: Option<&str>,
        accept_language: Option<&str>,
        time_zone: Option<&str>,
    ) -> Tr {
        let mut tr = match language.and_then(|tag| tag.parse::<LanguageIdentifier>().ok()) {
            Some(chosen) if self.bundles.contains_key(&chosen) => Tr {
                bundle: self.bundles[&chosen].clone(),
                language: chosen.to_string(),
                time_zone: TimeZone::UTC,
            },
            _ => self.negotiate(accept_language),
        };
        if let Some(zone) = time_zone.and_then(|name| TimeZone::get(name).ok()) {
            tr.time_zone = zone;
        }
        tr
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
            time_zone: TimeZone::UTC,
        }
    }
}

/// One request's translator and formatter, handed to templates.
pub struct Tr {
    language: String,
    bundle: Arc<Bundle>,
    time_zone: TimeZone,
}

impl Tr {
    pub fn language(&self) -> &str {
        &self.language
    }

    /// Whether the language has a message `id`.
    pub fn has(&self, id: &str) -> bool {
        self.bundle.has_message(id)
    }

    /// The message `id`; its id itself if it is missing, so a gap shows instead of hiding.
    pub fn t(&self, id: &str) -> String {
        self.format(id, None)
    }

    pub fn t_arg(&self, id: &str, name: &str, value: impl AsRef<str>) -> String {
        self.t_args(id, &[(name, value.as_ref())])
    }

    pub fn t_args(&self, id: &str, values: &[(&str, &str)]) -> String {
        let mut args = FluentArgs::new();
        for (name, value) in values {
            args.set(name.to_string(), value.to_string());
        }
        self.format(id, Some(&args))
    }

    /// The time zone times are shown and typed in.
    pub fn zone(&self) -> &TimeZone {
        &self.time_zone
    }

    /// The time zone times are shown in, by its IANA name.
    pub fn time_zone(&self) -> String {
        self.time_zone.iana_name().unwrap_or("UTC").to_owned()
    }

    /// An integer with the language's digit grouping: `12,345` or `12 345`.
    pub fn int(&self, value: impl Into<i64>) -> String {
        let value: i64 = value.into();
        let digits = self.grouped(&value.unsigned_abs().to_string());
        if value < 0 {
            format!("−{digits}")
        } else {
            digits
        }
    }

    /// A number with `places` decimals: `1,234.5` or `1 234,5`.
    pub fn decimal(&self, value: f64, places: usize) -> String {
        self.decimal_text(&format!("{value:.places$}"))
    }

    /// A share as a percentage with one decimal: `85.0%` or `85,0 %`.
    pub fn percent(&self, share: f64) -> String {
        self.t_arg("format-percent", "value", self.decimal(share * 100.0, 1))
    }

    /// An exact amount (a decimal string such as `1234.50`) in its currency.
    pub fn money(&self, amount: &str, currency: &str) -> String {
        let amount = self.decimal_text(amount);
        self.t_args(
            "format-money",
            &[("amount", amount.as_str()), ("currency", currency)],
        )
    }

    /// An instant as a date and time in the user's time zone.
    pub fn date_time(&self, at: Timestamp) -> String {
        self.local("format-date-time", at)
    }

    /// The day of an instant in the user's time zone.
    pub fn date(&self, at: Timestamp) -> String {
        self.local("format-date", at)
    }

    /// A length of time in hours and minutes, or minutes and seconds when short.
    pub fn duration(&self, seconds: i64) -> String {
        let sign = if seconds < 0 { "−" } else { "" };
        let seconds = seconds.unsigned_abs();
        let (hours, minutes, rest) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
        let text = if hours > 0 {
            self.t_args(
                "format-duration-hours",
                &[
                    ("hours", &self.int(i64::try_from(hours).unwrap_or(i64::MAX))),
                    ("minutes", &minutes.to_string()),
                ],
            )
        } else {
            self.t_args(
                "format-duration-minutes",
                &[
                    ("minutes", &minutes.to_string()),
                    ("seconds", &rest.to_string()),
                ],
            )
        };
        format!("{sign}{text}")
    }

    /// The message `id` given the parts of `at` on the user's wall clock.
    fn local(&self, id: &str, at: Timestamp) -> String {
        let local = at.to_zoned_datetime(self.time_zone.clone());
        let month = local.month().to_string();
        self.t_args(
            id,
            &[
                ("day", &local.day().to_string()),
                ("month", &month),
                ("month-name", &self.t(&format!("month-{month}"))),
                ("year", &local.year().to_string()),
                ("hour", &local.hour().to_string()),
                ("hour2", &format!("{:02}", local.hour())),
                ("minute", &format!("{:02}", local.minute())),
            ],
        )
    }

    /// `1234.5` (as Rust prints it) in the language's separators.
    fn decimal_text(&self, plain: &str) -> String {
        let (sign, unsigned) = match plain.strip_prefix('-') {
            Some(rest) => ("−", rest),
            None => ("", plain),
        };
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let mut text = format!("{sign}{}", self.grouped(whole));
        if !fraction.is_empty() {
            text.push_str(&self.t("format-decimal-separator"));
            text.push_str(fraction);
        }
        text
    }

    fn grouped(&self, digits: &str) -> String {
        let separator = self.t("format-group-separator");
        let mut text = String::with_capacity(digits.len() + digits.len() / 3 * separator.len());
        for (index, digit) in digits.chars().enumerate() {
            if index > 0 && (digits.len() - index).is_multiple_of(3) {
                text.push_str(&separator);
            }
            text.push(digit);
        }
        text
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
    fn numbers_money_and_times_follow_the_language_and_the_time_zone() {
        let i18n = I18n::load().unwrap();
        let en = i18n.for_user(Some("en"), None, Some("America/New_York"));
        let sk = i18n.for_user(None, Some("sk"), Some("Europe/Bratislava"));
        assert_eq!(en.int(1_234_567), "1,234,567");
        assert_eq!(sk.int(1_234_567), "1\u{a0}234\u{a0}567");
        assert_eq!(en.int(-999), "−999");
        assert_eq!(en.decimal(1234.5, 2), "1,234.50");
        assert_eq!(sk.decimal(1234.5, 2), "1\u{a0}234,50");
        assert_eq!(en.percent(0.8512), "85.1%");
        assert_eq!(sk.percent(0.8512), "85,1\u{a0}%");
        assert_eq!(en.money("12500.00", "EUR"), "EUR\u{a0}12,500.00");
        assert_eq!(sk.money("-12500.00", "EUR"), "−12\u{a0}500,00\u{a0}EUR");
        // 2026-03-29 01:30 UTC: 21:30 the day before in New York, 03:30 summer time in
        // Bratislava.
        let at: Timestamp = "2026-03-29T01:30:00Z".parse().unwrap();
        assert_eq!(en.date_time(at), "28 Mar 2026, 21:30");
        assert_eq!(sk.date_time(at), "29. 3. 2026 3:30");
        assert_eq!(sk.time_zone(), "Europe/Bratislava");
        assert_eq!(en.duration(3_900), "1 h 5 min");
        assert_eq!(sk.duration(95), "1 min 35 s");
    }

    #[test]
    fn a_chosen_language_wins_over_the_browser_and_unknown_choices_fall_back() {
        let i18n = I18n::load().unwrap();
        assert_eq!(i18n.for_user(Some("sk"), Some("en"), None).language(), "sk");
        assert_eq!(i18n.for_user(Some("de"), Some("sk"), None).language(), "sk");
        let utc = i18n.for_user(None, None, Some("Mars/Olympus"));
        assert_eq!(utc.time_zone(), "UTC");
    }

    #[test]
    fn every_message_exists_in_every_language() {
        let ids = |source: &str| -> Vec<String> {
            source
                .lines()
                .filter_map(|line| line.split_once(" = ").map(|(id, _)| id.trim().to_owned()))
                .filter(|id| !id.starts_with(' ') && !id.is_empty())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        let english = ids(LOCALES[0].1);
        for (tag, source) in &LOCALES[1..] {
            assert_eq!(ids(source), english, "{tag} lists other messages than en");
        }
    }
}
