//! Newtypes that can only hold valid values: parse at the boundary, trust inside.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Why a value was refused, in words a user can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

fn invalid(message: impl Into<String>) -> InvalidValue {
    InvalidValue(message.into())
}

/// Implements `FromStr`, `Display`, string serde and `as_str` for a validated string newtype.
macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

/// A human-readable name: trimmed, 1 to 200 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if trimmed.chars().count() > 200 {
            return Err(invalid("must be at most 200 characters"));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(invalid("must not contain control characters"));
        }
        Ok(Self(trimmed.to_owned()))
    }
}
string_newtype!(Name);

/// A machine key such as a skill, a service key or a step id: lowercase ASCII letters,
/// digits, `_` and `-`, starting with a letter, at most 64 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Key(String);

impl Key {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let valid_start = s.chars().next().is_some_and(|c| c.is_ascii_lowercase());
        let valid_rest = s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !valid_start || !valid_rest || s.len() > 64 {
            return Err(invalid(format!(
                "`{s}` is not a valid key: use lowercase letters, digits, `_` or `-`, starting with a letter, at most 64 characters"
            )));
        }
        Ok(Self(s.to_owned()))
    }
}
string_newtype!(Key);

/// A skill level from 1 (novice) to 5 (expert).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct SkillLevel(u8);

impl SkillLevel {
    pub const MIN: SkillLevel = SkillLevel(1);
    pub const MAX: SkillLevel = SkillLevel(5);

    pub fn new(level: u8) -> Result<Self, InvalidValue> {
        if (1..=5).contains(&level) {
            Ok(Self(level))
        } else {
            Err(invalid(format!("skill level must be 1 to 5, not {level}")))
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for SkillLevel {
    type Error = InvalidValue;

    fn try_from(level: u8) -> Result<Self, Self::Error> {
        Self::new(level)
    }
}

impl From<SkillLevel> for u8 {
    fn from(level: SkillLevel) -> u8 {
        level.0
    }
}

/// A language as a lowercase primary language subtag (ISO 639-1/639-3), e.g. `en`, `sk`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Language(String);

impl Language {
    /// Accepts a BCP 47 tag (`en-GB`, `sk`) and keeps its primary subtag: routing matches on
    /// the language, not the region.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let primary = s.split(['-', '_']).next().unwrap_or_default();
        if !(2..=3).contains(&primary.len()) || !primary.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(invalid(format!(
                "`{s}` is not a language tag such as `en` or `sk-SK`"
            )));
        }
        Ok(Self(primary.to_ascii_lowercase()))
    }
}
string_newtype!(Language);

/// An e-mail address, checked for shape (one `@`, a dotted domain, no spaces) and
/// lowercased in its domain part.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let s = s.trim();
        let refuse = || invalid(format!("`{s}` is not an e-mail address"));
        let (local, domain) = s.rsplit_once('@').ok_or_else(refuse)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.contains('@')
            && !local.chars().any(|c| c.is_whitespace() || c.is_control());
        if !domain_ok || !local_ok || s.len() > 254 {
            return Err(refuse());
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }
}
string_newtype!(EmailAddress);

/// A phone number in E.164 form (`+` and 8 to 15 digits); spaces, dots, dashes and
/// parentheses in the input are dropped.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let compact: String = s
            .chars()
            .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')'))
            .collect();
        let digits = compact.strip_prefix('+').unwrap_or("");
        if !(8..=15).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid(format!(
                "`{s}` is not a phone number in international form, e.g. +421 2 1234 5678"
            )));
        }
        Ok(Self(compact))
    }
}
string_newtype!(PhoneNumber);

/// Priority of a work item; a higher priority is served first.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ];

    /// A number for ordering in storage: larger is more urgent.
    pub fn rank(self) -> i64 {
        match self {
            Priority::Low => 1,
            Priority::Normal => 2,
            Priority::High => 3,
            Priority::Urgent => 4,
        }
    }

    /// One step more urgent (urgent stays urgent).
    pub fn raised(self) -> Self {
        Self::from_rank(self.rank() + 1).unwrap_or(self)
    }

    pub fn from_rank(rank: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.rank() == rank)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

impl FromStr for Priority {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                invalid(format!(
                    "priority must be low, normal, high or urgent, not `{s}`"
                ))
            })
    }
}

/// An ISO 4217 currency code: three uppercase letters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if s.len() == 3 && s.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(invalid(format!(
                "`{s}` is not an ISO 4217 currency code such as EUR or USD"
            )))
        }
    }
}
string_newtype!(Currency);

/// An exact amount of money. Amounts are decimals, never floats.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub currency: Currency,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_lowercases_the_domain_only() {
        let email = EmailAddress::parse(" Jana.Novak@Example.SK ").unwrap();
        assert_eq!(email.as_str(), "Jana.Novak@example.sk");
    }

    #[test]
    fn email_refuses_missing_domain_dot_and_spaces() {
        for bad in [
            "jana@",
            "jana@sk",
            "ja na@example.sk",
            "@example.sk",
            "jana.example.sk",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn skill_level_holds_only_one_to_five() {
        assert!(SkillLevel::new(0).is_err());
        assert!(SkillLevel::new(6).is_err());
        assert_eq!(SkillLevel::new(3).unwrap().get(), 3);
        assert!(serde_json::from_str::<SkillLevel>("9").is_err());
    }

    #[test]
    fn language_keeps_the_primary_subtag() {
        assert_eq!(Language::parse("sk-SK").unwrap().as_str(), "sk");
        assert_eq!(Language::parse("EN").unwrap().as_str(), "en");
        assert!(Language::parse("english").is_err());
    }

    #[test]
    fn phone_numbers_normalise_to_e164() {
        assert_eq!(
            PhoneNumber::parse("+421 (2) 1234-5678").unwrap().as_str(),
            "+421212345678"
        );
        assert!(PhoneNumber::parse("0905 123 456").is_err());
    }

    #[test]
    fn keys_refuse_uppercase_and_leading_digits() {
        assert!(Key::parse("customer_support").is_ok());
        assert!(Key::parse("Customer").is_err());
        assert!(Key::parse("1st").is_err());
        assert!(Key::parse("").is_err());
    }

    #[test]
    fn priority_round_trips_through_rank() {
        for p in Priority::ALL {
            assert_eq!(Priority::from_rank(p.rank()), Some(p));
        }
    }
}
