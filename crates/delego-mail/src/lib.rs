//! The e-mail channel's message layer: what the store and the server call to turn mail into
//! items and replies into mail. No database and no HTTP here.
//!
//! - Inbound: [`parse`] turns raw RFC 5322 bytes into an [`Inbound`] message — the new text
//!   the sender wrote (quoted history folded away into [`Inbound::quoted`]), attachments,
//!   the ids that thread it onto an existing item, and its [`Kind`]: personal mail, an
//!   automatic message (out-of-office, list, bulk) or a delivery report (bounce). Only
//!   personal mail may open an item or be answered automatically, which is what keeps two
//!   automatic systems from answering each other forever. Whatever cannot be read comes
//!   back as [`Malformed`] with a reason, so the caller can keep it aside.
//! - References: items' short references travel in subjects as `[#ABCD1234]`
//!   ([`reference_in_subject`], [`subject_with_reference`]), for the replies whose
//!   threading headers were lost on the way.
//! - Outbound: [`Outgoing`] composes a reply with the headers that make requesters' mail
//!   clients thread it, and [`send`] hands it to an SMTP relay, telling permanent failures
//!   from ones worth retrying.
//! - [`Maildir`]: the watched per-engagement mail directory.
//! - `SmtpSink` (feature `sink`): a local SMTP server that captures what is sent, for tests.
//!
//! ```
//! use delego_mail::{Mailbox, Outgoing, new_message_id, parse, reply_subject};
//!
//! let raw = b"From: Jana <Jana@example.sk>\r\nTo: support@acme.example\r\n\
//!     Subject: Printer broken\r\nMessage-ID: <a1@example.sk>\r\n\r\nIt jams.\r\n";
//! let inbound = parse(raw).expect("a readable message");
//! assert_eq!(inbound.from.address, "jana@example.sk");
//! assert!(inbound.may_open_item() && inbound.may_auto_reply());
//!
//! let reply = Outgoing {
//!     from: Mailbox::new("support@acme.example", Some("ACME Help Desk".into())),
//!     to: inbound.reply_to.clone().unwrap_or_else(|| inbound.from.clone()),
//!     subject: reply_subject(&inbound.subject, "0A1B2C3D"),
//!     text: "We are on it.".into(),
//!     signature: Some("ACME Help Desk".into()),
//!     message_id: new_message_id("acme.example"),
//!     in_reply_to: inbound.message_id.clone(),
//!     references: inbound.references.clone(),
//!     automatic: false,
//!     attachments: Vec::new(),
//! };
//! assert_eq!(reply.subject, "Re: Printer broken [#0A1B2C3D]");
//! assert!(reply.formatted().is_ok());
//! ```

mod html;
mod inbound;
mod maildir;
mod outbound;
mod reference;
mod report;
#[cfg(feature = "sink")]
mod sink;
mod text;

pub use inbound::{
    Attachment, DeliveryReport, Inbound, Kind, MAX_MESSAGE_SIZE, Malformed, ReturnPath, parse,
};
pub use maildir::Maildir;
pub use outbound::{
    ComposeError, Credentials, Outgoing, OutgoingFile, SendError, Smtp, SmtpSecurity,
    new_message_id, send,
};
pub use reference::{reference_in_subject, reply_subject, subject_with_reference};
#[cfg(feature = "sink")]
pub use sink::{Captured, Failure, SmtpSink};

/// An e-mail address with the display name that came with it (`"Jana Nováková"
/// <jana@example.com>`). Inbound addresses are lower-cased, so that the same person is the
/// same requester however their client capitalised the address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mailbox {
    pub address: String,
    pub name: Option<String>,
}

impl Mailbox {
    pub fn new(address: impl Into<String>, name: Option<String>) -> Self {
        Self {
            address: address.into(),
            name,
        }
    }
}

impl std::fmt::Display for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name} <{}>", self.address),
            None => f.write_str(&self.address),
        }
    }
}
