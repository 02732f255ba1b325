//! Outbound mail: composing replies that requesters' clients thread, and sending them.

use std::fmt;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Attachment, MultiPart, SinglePart};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::Mailbox;

/// At most this many ids go into `References`: the thread's first and its latest. RFC 5322
/// §3.6.4 allows trimming; clients thread on the ends.
const MAX_REFERENCES: usize = 20;

/// A message from the desk to a requester: an agent's public reply, an acknowledgement, a
/// satisfaction survey link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The engagement's address.
    pub from: Mailbox,
    pub to: Mailbox,
    /// Usually made with [`crate::reply_subject`], so that it carries the item's reference.
    pub subject: String,
    pub text: String,
    /// The engagement's signature, appended below the standard `-- ` line so that mail
    /// clients recognise (and, when quoting, drop) it.
    pub signature: Option<String>,
    /// Without angle brackets; see [`new_message_id`]. Stored with the item so that replies
    /// and bounces find their way back.
    pub message_id: String,
    /// The message this one answers, without angle brackets.
    pub in_reply_to: Option<String>,
    /// The thread so far, oldest first, without angle brackets.
    pub references: Vec<String>,
    /// An automatic notice (acknowledgement, survey request) rather than a person's reply.
    /// It carries `Auto-Submitted: auto-replied` (RFC 3834) and
    /// `X-Auto-Response-Suppress: All` (Exchange's equivalent), so that other systems'
    /// autoresponders do not answer it.
    pub automatic: bool,
    /// Files sent with it, after the text.
    pub attachments: Vec<OutgoingFile>,
}

/// A file sent with a mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingFile {
    pub file_name: String,
    /// A MIME type; one that does not parse is sent as `application/octet-stream`.
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Why an [`Outgoing`] cannot become a message. Retrying will not help.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("`{0}` is not an e-mail address a message can be sent to or from")]
    Address(String),
    #[error("`{0}` is not a message id (`local@domain`, without angle brackets)")]
    MessageId(String),
    #[error("the message cannot be built: {0}")]
    Build(#[from] lettre::error::Error),
}

impl Outgoing {
    pub fn to_message(&self) -> Result<lettre::Message, ComposeError> {
        let mut builder = lettre::Message::builder()
            .from(lettre_mailbox(&self.from)?)
            .to(lettre_mailbox(&self.to)?)
            .subject(self.subject.clone())
            .message_id(Some(angle(checked_id(&self.message_id)?)));
        // Ids other mailers made may be malformed; one of them must not keep the reply
        // from going out, so it is left out of the threading headers.
        if let Some(parent) = self
            .in_reply_to
            .as_deref()
            .and_then(|id| checked_id(id).ok())
        {
            builder = builder.in_reply_to(angle(parent));
        }
        let references = self.thread_references();
        let ids: Vec<String> = references
            .iter()
            .filter_map(|id| checked_id(id).ok().map(angle))
            .collect();
        if !ids.is_empty() {
            builder = builder.references(ids.join(" "));
        }
        if self.automatic {
            builder = builder
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("Auto-Submitted"),
                    "auto-replied".into(),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
                    "All".into(),
                ));
        }
        let text = SinglePart::plain(self.body());
        if self.attachments.is_empty() {
            return Ok(builder.singlepart(text)?);
        }
        let mut parts = MultiPart::mixed().singlepart(text);
        for file in &self.attachments {
            let content_type = ContentType::parse(&file.content_type).unwrap_or_else(|_| {
                ContentType::parse("application/octet-stream").expect("a valid type")
            });
            parts = parts.singlepart(
                Attachment::new(file.file_name.clone()).body(file.bytes.clone(), content_type),
            );
        }
        Ok(builder.multipart(parts)?)
    }

    /// The message as it goes on the wire (CRLF line endings), for the outbox or a test.
    pub fn formatted(&self) -> Result<Vec<u8>, ComposeError> {
        Ok(self.to_message()?.formatted())
    }

    /// `References`: the given thread plus the message answered, when the caller left it
    /// out, trimmed to the thread's first and latest ids.
    fn thread_references(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for id in self.references.iter().chain(&self.in_reply_to) {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        if ids.len() > MAX_REFERENCES {
            ids.drain(1..ids.len() - (MAX_REFERENCES - 1));
        }
        ids
    }

    fn body(&self) -> String {
        let mut body = self.text.trim_end().to_string();
        if let Some(signature) = self.signature.as_deref().map(str::trim_end)
            && !signature.is_empty()
        {
            body.push_str("\n\n-- \n");
            body.push_str(signature);
        }
        body.push('\n');
        body
    }
}

fn lettre_mailbox(mailbox: &Mailbox) -> Result<lettre::message::Mailbox, ComposeError> {
    let address = mailbox
        .address
        .trim()
        .parse()
        .map_err(|_| ComposeError::Address(mailbox.address.clone()))?;
    let name = mailbox
        .name
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_string);
    Ok(lettre::message::Mailbox::new(name, address))
}

fn checked_id(id: &str) -> Result<&str, ComposeError> {
    let valid = id
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && id
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>'));
    if valid {
        Ok(id)
    } else {
        Err(ComposeError::MessageId(id.to_string()))
    }
}

fn angle(id: &str) -> String {
    format!("<{id}>")
}

/// A new, unique message id for mail sent from `domain` (the sender's mail domain),
/// without angle brackets. Time-ordered (UUIDv7), which makes ids in a log easy to follow.
pub fn new_message_id(domain: &str) -> String {
    let domain = domain.trim().trim_start_matches('@');
    let domain = if domain.is_empty() {
        "localhost"
    } else {
        domain
    };
    format!("{}@{domain}", uuid::Uuid::now_v7().simple())
}

/// How to reach the SMTP relay that sends our mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub credentials: Option<Credentials>,
    /// For connecting and for each answer the server owes.
    pub timeout: Duration,
    /// The name to greet the server with (`EHLO`); the machine's host name when `None`.
    pub hello_name: Option<String>,
}

impl Smtp {
    /// A relay on a trusted network, without TLS or authentication: a local MTA or, in
    /// tests, the sink.
    pub fn plain(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            security: SmtpSecurity::None,
            credentials: None,
            timeout: Duration::from_secs(10),
            hello_name: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain text: only for a relay on the same machine or a trusted network.
    None,
    /// Upgrade to TLS with STARTTLS (usually port 587); refuse to send if the server cannot.
    StartTls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Why a message was not sent, and whether to try again.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Compose(#[from] ComposeError),
    /// The server refused the message with a 5xx answer (unknown recipient, rejected
    /// content): sending it again would be refused again.
    #[error("the mail server refused the message: {0}")]
    Permanent(String),
    /// A 4xx answer, a refused or lost connection, a timeout, a TLS failure: the same
    /// message may well go through later.
    #[error("the message could not be sent now: {0}")]
    Transient(String),
}

impl SendError {
    /// Whether retrying is pointless.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Compose(_) | SendError::Permanent(_))
    }
}

/// Sends one message through the relay. A connection per message: the volumes of a help
/// desk do not call for a pool, and a fresh connection never inherits a broken one.
pub async fn send(smtp: &Smtp, mail: &Outgoing) -> Result<(), SendError> {
    let message = mail.to_message()?;
    transport(smtp)?
        .send(message)
        .await
        .map(drop)
        .map_err(|error| {
            if error.is_permanent() {
                SendError::Permanent(error.to_string())
            } else {
                SendError::Transient(error.to_string())
            }
        })
}

fn transport(smtp: &Smtp) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
    type Transport = AsyncSmtpTransport<Tokio1Executor>;
    let builder = match smtp.security {
        SmtpSecurity::None => Transport::builder_dangerous(&smtp.host),
        // A TLS set-up error is a configuration mistake: transient, since fixing the
        // configuration lets the queued mail go out.
        SmtpSecurity::StartTls => Transport::starttls_relay(&smtp.host)
            .map_err(|e| SendError::Transient(format!("TLS set-up: {e}")))?,
        SmtpSecurity::Tls => Transport::relay(&smtp.host)
            .map_err(|e| SendError::Transient(format!("TLS set-up: {e}")))?,
    };
    let mut builder = builder.port(smtp.port).timeout(Some(smtp.timeout));
    if let Some(credentials) = &smtp.credentials {
        builder = builder.credentials(lettre::transport::smtp::authentication::Credentials::new(
            credentials.user.clone(),
            credentials.password.clone(),
        ));
    }
    if let Some(name) = &smtp.hello_name {
        builder = builder.hello_name(ClientId::Domain(name.clone()));
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply() -> Outgoing {
        Outgoing {
            from: Mailbox::new("help@acme.example", Some("ACME Help Desk".into())),
            to: Mailbox::new("jan@example.org", Some("Ján Novák".into())),
            subject: crate::reply_subject("Tlačiareň nefunguje", "0A1B2C3D"),
            text: "Dobrý deň,\n\nskúste ju reštartovať.\n".into(),
            signature: Some("ACME Help Desk\n+421 2 1234 5678".into()),
            message_id: "0192aa@acme.example".into(),
            in_reply_to: Some("CAF=jan.1@mail.example.org".into()),
            references: vec!["first@acme.example".into()],
            automatic: false,
            attachments: Vec::new(),
        }
    }

    fn text_of(mail: &Outgoing) -> String {
        String::from_utf8(mail.formatted().unwrap()).unwrap()
    }

    #[test]
    fn a_reply_carries_the_threading_headers() {
        let text = text_of(&reply());
        assert!(
            text.contains("Message-ID: <0192aa@acme.example>\r\n"),
            "{text}"
        );
        assert!(
            text.contains("In-Reply-To: <CAF=jan.1@mail.example.org>\r\n"),
            "{text}"
        );
        assert!(
            text.contains("References: <first@acme.example> <CAF=jan.1@mail.example.org>\r\n"),
            "{text}"
        );
        assert!(text.contains("Date: "));
        assert!(!text.contains("Auto-Submitted"));
        assert!(!text.contains("X-Auto-Response-Suppress"));
    }

    #[test]
    fn files_go_with_the_text_and_read_back_whole() {
        let pdf = b"%PDF-1.4\n1 0 obj\n%%EOF\n".to_vec();
        let mail = Outgoing {
            attachments: vec![
                OutgoingFile {
                    file_name: "Návod – tlačiareň.pdf".into(),
                    content_type: "application/pdf".into(),
                    bytes: pdf.clone(),
                },
                OutgoingFile {
                    file_name: "log.bin".into(),
                    content_type: "not a type".into(),
                    bytes: vec![0, 159, 146, 150],
                },
            ],
            ..reply()
        };
        let inbound = crate::parse(&mail.formatted().unwrap()).unwrap();
        assert!(inbound.text.starts_with("Dobrý deň,"), "{}", inbound.text);
        let files: Vec<(&str, &str, &[u8])> = inbound
            .attachments
            .iter()
            .map(|a| {
                (
                    a.file_name.as_str(),
                    a.content_type.as_str(),
                    a.bytes.as_slice(),
                )
            })
            .collect();
        assert_eq!(
            files,
            [
                ("Návod – tlačiareň.pdf", "application/pdf", pdf.as_slice()),
                (
                    "log.bin",
                    "application/octet-stream",
                    &[0, 159, 146, 150][..]
                ),
            ]
        );
    }

    #[test]
    fn an_automatic_notice_asks_not_to_be_answered() {
        let text = text_of(&Outgoing {
            automatic: true,
            ..reply()
        });
        assert!(text.contains("Auto-Submitted: auto-replied\r\n"), "{text}");
        assert!(text.contains("X-Auto-Response-Suppress: All\r\n"), "{text}");
    }

    #[test]
    fn a_composed_reply_reads_back_as_the_same_message() {
        let inbound = crate::parse(&reply().formatted().unwrap()).unwrap();
        assert_eq!(inbound.message_id.as_deref(), Some("0192aa@acme.example"));
        assert_eq!(inbound.in_reply_to, ["CAF=jan.1@mail.example.org"]);
        assert_eq!(
            inbound.references,
            ["first@acme.example", "CAF=jan.1@mail.example.org"]
        );
        assert_eq!(inbound.subject, "Re: Tlačiareň nefunguje [#0A1B2C3D]");
        assert_eq!(inbound.reference().as_deref(), Some("0A1B2C3D"));
        assert_eq!(
            inbound.from,
            Mailbox::new("help@acme.example", Some("ACME Help Desk".into()))
        );
        assert_eq!(inbound.recipients, ["jan@example.org"]);
        assert_eq!(
            inbound.text,
            "Dobrý deň,\n\nskúste ju reštartovať.\n\n-- \nACME Help Desk\n+421 2 1234 5678"
        );
        assert_eq!(inbound.kind, crate::Kind::Personal);

        let notice = Outgoing {
            automatic: true,
            signature: None,
            ..reply()
        };
        let inbound = crate::parse(&notice.formatted().unwrap()).unwrap();
        assert_eq!(
            inbound.kind,
            crate::Kind::Automatic {
                reason: "Auto-Submitted: auto-replied".into()
            }
        );
        assert!(inbound.auto_reply_suppressed);
        assert_eq!(inbound.text, "Dobrý deň,\n\nskúste ju reštartovať.");
    }

    #[test]
    fn long_threads_keep_their_first_and_latest_references() {
        let mail = Outgoing {
            references: (0..30).map(|i| format!("m{i}@x")).collect(),
            in_reply_to: Some("m29@x".into()),
            ..reply()
        };
        let ids = mail.thread_references();
        assert_eq!(ids.len(), MAX_REFERENCES);
        assert_eq!(ids[0], "m0@x");
        assert_eq!(ids[1], "m11@x");
        assert_eq!(ids.last().unwrap(), "m29@x");
    }

    #[test]
    fn bad_addresses_and_our_own_bad_ids_are_refused_before_sending() {
        let bad_to = Outgoing {
            to: Mailbox::new("not an address", None),
            ..reply()
        };
        assert!(matches!(bad_to.to_message(), Err(ComposeError::Address(_))));
        let bad_id = Outgoing {
            message_id: "<x@y>".into(),
            ..reply()
        };
        assert!(matches!(
            bad_id.to_message(),
            Err(ComposeError::MessageId(_))
        ));
        // Another mailer's malformed id (an injection attempt among them) is left out of
        // the threading headers rather than keeping the reply from going out.
        let injected = Outgoing {
            in_reply_to: Some("a@b>\r\nBcc: <x@y".into()),
            references: vec!["no-at-sign".into(), "first@example.org".into()],
            ..reply()
        };
        let formatted = String::from_utf8(injected.formatted().unwrap()).unwrap();
        assert!(!formatted.contains("Bcc"), "{formatted}");
        assert!(!formatted.contains("no-at-sign"), "{formatted}");
        assert!(!formatted.contains("In-Reply-To"), "{formatted}");
        assert!(
            formatted.contains("References: <first@example.org>"),
            "{formatted}"
        );
    }

    #[test]
    fn message_ids_are_unique_and_bare() {
        let a = new_message_id("acme.example");
        let b = new_message_id("@acme.example");
        assert_ne!(a, b);
        assert!(a.ends_with("@acme.example") && b.ends_with("@acme.example"));
        assert!(!a.contains(['<', '>']));
        assert!(new_message_id("").ends_with("@localhost"));
    }

    #[test]
    fn credentials_do_not_show_the_password() {
        let credentials = Credentials {
            user: "desk".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{credentials:?}").contains("hunter2"));
    }
}
