//! Typed identifiers. A `WorkItemId` can never be passed where a `ClientId` is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered (UUIDv7) identifier.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

typed_id!(
    /// A client of the provider: the tenant boundary.
    ClientId
);
typed_id!(UserId);
typed_id!(ApiTokenId);
typed_id!(MessageId);
typed_id!(AttachmentId);
typed_id!(OfferId);
typed_id!(NotificationId);
typed_id!(RequesterId);
typed_id!(WorkerId);
typed_id!(EngagementId);
typed_id!(WorkItemId);

impl WorkItemId {
    /// The short, stable reference people read out on the phone and find items by: the
    /// id's last 8 hex digits, upper-cased (its first digits are a timestamp, shared by
    /// items created together).
    pub fn reference(&self) -> String {
        let digits = self.0.simple().to_string();
        digits[digits.len() - 8..].to_uppercase()
    }
}
typed_id!(TaskId);
typed_id!(AuditEventId);
typed_id!(
    /// An article of an engagement's knowledge base.
    ArticleId
);
