//! Conversions between domain values and the column types both backends share: UUIDs,
//! microsecond timestamps, text keys and JSON.

use delego_core::values::{Key, Language, Priority, SkillLevel};
use jiff::Timestamp;

use crate::{Result, StoreError};

pub fn micros(at: Timestamp) -> i64 {
    at.as_microsecond()
}

pub fn timestamp(micros: i64) -> Result<Timestamp> {
    Timestamp::from_microsecond(micros).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub fn optional_timestamp(micros: Option<i64>) -> Result<Option<Timestamp>> {
    micros.map(timestamp).transpose()
}

pub fn key(text: String) -> Result<Key> {
    Key::parse(&text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub fn language(text: Option<String>) -> Result<Option<Language>> {
    text.map(|t| Language::parse(&t).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

pub fn skill_level(level: i64) -> Result<SkillLevel> {
    u8::try_from(level)
        .ok()
        .and_then(|l| SkillLevel::new(l).ok())
        .ok_or_else(|| StoreError::Corrupt(format!("skill level {level}")))
}

pub fn priority(rank: i64) -> Result<Priority> {
    Priority::from_rank(rank).ok_or_else(|| StoreError::Corrupt(format!("priority {rank}")))
}

pub fn version(number: i64) -> Result<u32> {
    u32::try_from(number).map_err(|_| StoreError::Corrupt(format!("service version {number}")))
}

pub fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    // Domain types serialise infallibly: they hold no maps with non-string keys.
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}
