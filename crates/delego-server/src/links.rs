//! Signed links for requesters, who have no account: a link names one item and one
//! purpose, expires, and is signed with the provider's key (HMAC-SHA256), so it cannot be
//! altered to reach another item.

use delego_core::id::WorkItemId;
use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use sha2::Sha256;

/// What a link lets its holder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Rate a finished item.
    Csat,
    /// Reply on an item's thread.
    Reply,
}

impl Purpose {
    fn tag(self) -> &'static str {
        match self {
            Purpose::Csat => "csat",
            Purpose::Reply => "reply",
        }
    }
}

/// How long a requester link stays valid.
pub const LINK_LIFETIME: SignedDuration = SignedDuration::from_hours(24 * 30);

/// The name of the signing key in the store's secrets.
pub const SIGNING_KEY: &str = "requester-links";

fn mac(key: &[u8], purpose: Purpose, item: WorkItemId, expires: i64) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(format!("{}:{item}:{expires}", purpose.tag()).as_bytes());
    mac
}

/// A token `item.expiry.signature` for the link.
pub fn sign(key: &[u8], purpose: Purpose, item: WorkItemId, now: Timestamp) -> String {
    let expires = now.saturating_add(LINK_LIFETIME).unwrap_or(now).as_second();
    let signature: String = mac(key, purpose, item, expires)
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{item}.{expires}.{signature}")
}

/// The item a valid, unexpired token for `purpose` names, or `None`.
pub fn verify(key: &[u8], purpose: Purpose, token: &str, now: Timestamp) -> Option<WorkItemId> {
    let mut parts = token.split('.');
    let (item, expires, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let item: WorkItemId = item.parse().ok()?;
    let expires: i64 = expires.parse().ok()?;
    if now.as_second() > expires || signature.len() != 64 {
        return None;
    }
    let bytes: Vec<u8> = (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(signature.get(i..i + 2)?, 16).ok())
        .collect::<Option<_>>()?;
    // verify_slice compares in constant time.
    mac(key, purpose, item, expires)
        .verify_slice(&bytes)
        .ok()
        .map(|()| item)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-05-01T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_signed_link_names_its_item_until_it_expires() {
        let item = WorkItemId::new();
        let token = sign(b"key", Purpose::Csat, item, now());
        assert_eq!(verify(b"key", Purpose::Csat, &token, now()), Some(item));
        let later = now()
            .saturating_add(LINK_LIFETIME + SignedDuration::from_secs(1))
            .unwrap();
        assert_eq!(verify(b"key", Purpose::Csat, &token, later), None);
    }

    #[test]
    fn a_link_cannot_be_bent_to_another_item_purpose_or_key() {
        let item = WorkItemId::new();
        let token = sign(b"key", Purpose::Csat, item, now());
        let other = token.replacen(&item.to_string(), &WorkItemId::new().to_string(), 1);
        assert_eq!(verify(b"key", Purpose::Csat, &other, now()), None);
        assert_eq!(verify(b"key", Purpose::Reply, &token, now()), None);
        assert_eq!(verify(b"other key", Purpose::Csat, &token, now()), None);
        assert_eq!(verify(b"key", Purpose::Csat, "garbage", now()), None);
        assert_eq!(
            verify(b"key", Purpose::Csat, &format!("{token}.x"), now()),
            None
        );
    }
}
