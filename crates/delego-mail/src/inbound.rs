//! Inbound mail: from raw RFC 5322 bytes to what an item needs.

use std::panic::{AssertUnwindSafe, catch_unwind};

use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders, PartType};

use crate::{Mailbox, html, report, text};

/// The largest message [`parse`] accepts: 25 MiB, the size most providers cap mail at.
/// Anything larger is set aside rather than held in memory in full.
pub const MAX_MESSAGE_SIZE: usize = 25 * 1024 * 1024;

/// Why a message could not be read. The caller keeps the raw message aside with this
/// reason — a message is never dropped silently.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Malformed {
    pub reason: String,
}

impl Malformed {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// A message as the e-mail channel reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbound {
    /// Without angle brackets, like every id here.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    /// Oldest first, as in the header.
    pub references: Vec<String>,
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub return_path: ReturnPath,
    /// The addresses this message was sent to, lower-cased, each once: the envelope ones
    /// first (`Delivered-To`, `X-Original-To`: the address that really led here, even when
    /// the requester used Bcc or an alias), then `To` and `Cc`. The server maps an address
    /// to an engagement.
    pub recipients: Vec<String>,
    /// Decoded (RFC 2047), possibly empty.
    pub subject: String,
    /// The sender's own `Date`, which may be wrong; the server records when it received it.
    pub date: Option<jiff::Timestamp>,
    /// What the sender wrote in this message, in UTF-8: the plain-text body, or the HTML
    /// one as text when there is no plain one, without the quoted history.
    pub text: String,
    /// The quoted history split off the end of the body (earlier messages of the thread),
    /// kept so that it can be unfolded, never shown as new text.
    pub quoted: Option<String>,
    /// Every part that is not the body: attached files, inline images, attached messages
    /// (as `.eml`).
    pub attachments: Vec<Attachment>,
    pub kind: Kind,
    /// The sender asked that no automatic reply be sent (`X-Auto-Response-Suppress: All`,
    /// `OOF` or `AutoReply`, as Exchange and many notification systems set). This alone
    /// does not make the message automatic: people's mail can carry it too.
    pub auto_reply_suppressed: bool,
}

impl Inbound {
    /// Whether an acknowledgement or any other automatic answer may go to the sender. Only
    /// personal mail gets one: answering automatic mail is how mail storms start.
    pub fn may_auto_reply(&self) -> bool {
        self.kind == Kind::Personal && !self.auto_reply_suppressed
    }

    /// Whether this message may open a new item. Automatic mail and reports may at most be
    /// recorded on an item that already exists.
    pub fn may_open_item(&self) -> bool {
        self.kind == Kind::Personal
    }

    /// The ids of the messages this one answers, most direct first: `In-Reply-To`, then
    /// `References` from the newest back, each once. The first that matches a message of
    /// an item makes this a reply on that item.
    pub fn thread_ids(&self) -> impl Iterator<Item = &str> {
        let mut seen: Vec<&str> = Vec::new();
        self.in_reply_to
            .iter()
            .chain(self.references.iter().rev())
            .map(String::as_str)
            .filter(move |id| {
                if seen.contains(id) {
                    false
                } else {
                    seen.push(id);
                    true
                }
            })
    }

    /// The item reference the subject carries (`[#ABCD1234]`), for replies whose threading
    /// headers were lost.
    pub fn reference(&self) -> Option<String> {
        crate::reference_in_subject(&self.subject)
    }
}

/// The envelope sender the delivering server recorded (`Return-Path`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReturnPath {
    /// No `Return-Path` header: the message did not come through a delivering server (for
    /// example, it was posted to the API).
    Absent,
    /// `Return-Path: <>`: the null sender, which only automatic mail uses (RFC 5321 §4.5.5).
    Null,
    Address(String),
}

/// A part of a message that is not its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// Safe to use as a file name: no directories, no control characters; a default such as
    /// `attachment-2.pdf` when the message gave none.
    pub file_name: String,
    /// `type/subtype`, lower-cased, without parameters.
    pub content_type: String,
    /// The decoded content. Text parts are in UTF-8, whatever charset they were sent in.
    pub bytes: Vec<u8>,
    /// Shown within the body (an image in a signature or a pasted screenshot) rather than
    /// attached as a file.
    pub inline: bool,
    /// What the HTML body refers to it by (`cid:…`), without angle brackets.
    pub content_id: Option<String>,
}

/// What kind of message this is, which decides what it may cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Written by a person: it may open an item and be answered automatically.
    Personal,
    /// Sent by a program — an out-of-office answer, another help desk's acknowledgement, a
    /// newsletter or list message, anything with a null return path. It never opens an
    /// item and is never answered; `reason` says which sign gave it away.
    Automatic { reason: String },
    /// A delivery report (bounce) about a message we sent. It is recorded on the item that
    /// message belongs to.
    Report(DeliveryReport),
}

/// A delivery status notification (RFC 3464), or a non-standard bounce read as one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryReport {
    /// The `Message-ID` of the message that could not be delivered, from the copy of it (or
    /// of its header) the report returns.
    pub original_message_id: Option<String>,
    /// The recipients it did not reach; for a delay warning, the ones still being tried.
    pub failed_recipients: Vec<String>,
    /// The enhanced status code, such as `5.1.1` (unknown mailbox).
    pub status: Option<String>,
    /// The receiving server's own words, such as `550 5.1.1 User unknown`.
    pub diagnostic: Option<String>,
    /// True when delivery has been given up; false for a delay warning (4.x.x), after which
    /// the message may still arrive.
    pub permanent: bool,
}

/// Reads a raw RFC 5322 message (with CRLF or bare LF line endings).
///
/// Never panics: whatever cannot be read comes back as [`Malformed`] with a reason a person
/// can act on.
pub fn parse(raw: &[u8]) -> Result<Inbound, Malformed> {
    if raw.len() > MAX_MESSAGE_SIZE {
        return Err(Malformed::new("larger than the 25 MiB limit"));
    }
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(Malformed::new("empty message"));
    }
    let raw = skip_envelope_line(raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw));
    if !starts_with_header_field(raw) {
        return Err(Malformed::new("not an RFC 5322 message: no header section"));
    }
    // mail-parser is written never to panic, but it keeps debug assertions for states it
    // believes impossible; one odd message must not take the intake loop down with it.
    catch_unwind(AssertUnwindSafe(|| read(raw))).unwrap_or_else(|_| {
        Err(Malformed::new(
            "the message could not be read: the MIME parser failed on it",
        ))
    })
}

fn read(raw: &[u8]) -> Result<Inbound, Malformed> {
    let message = MessageParser::default()
        .parse(raw)
        .filter(|message| !message.parts.is_empty())
        .ok_or_else(|| Malformed::new("not an RFC 5322 message: no header section"))?;

    let from = message
        .from()
        .and_then(first_mailbox)
        .ok_or_else(|| Malformed::new("no From address"))?;
    let reply_to = message.reply_to().and_then(first_mailbox);
    let return_path = return_path(&message);
    let body = body_text(&message);
    let forwarded = text::is_forward_subject(message.subject().unwrap_or_default());
    let (new_text, quoted) = if forwarded {
        (body.clone(), None)
    } else {
        text::split_quoted(&body)
    };
    let kind = classify(&message, &from, &return_path, &body);

    Ok(Inbound {
        message_id: message.message_id().and_then(clean_id),
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
        reply_to,
        return_path,
        recipients: recipients(&message),
        subject: message
            .subject()
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
        date: message
            .date()
            .filter(|date| date.is_valid())
            .and_then(|date| jiff::Timestamp::from_second(date.to_timestamp()).ok()),
        text: new_text,
        quoted,
        attachments: attachments(&message),
        kind,
        auto_reply_suppressed: auto_reply_suppressed(&message),
        from,
    })
}

/// Skips an mbox `From sender date` line, which some delivery agents leave at the top of
/// the files they write.
fn skip_envelope_line(raw: &[u8]) -> &[u8] {
    if raw.starts_with(b"From ")
        && let Some(end) = raw.iter().position(|&b| b == b'\n')
    {
        return &raw[end + 1..];
    }
    raw
}

/// Whether the message begins with a header field (`Name: value`). mail-parser reads
/// almost anything as a message; this is what tells mail from a stray binary file.
fn starts_with_header_field(raw: &[u8]) -> bool {
    let name_len = raw
        .iter()
        .position(|&b| !(b'!'..=b'~').contains(&b) || b == b':')
        .unwrap_or(raw.len());
    name_len > 0 && raw.get(name_len) == Some(&b':')
}

fn first_mailbox(address: &Address<'_>) -> Option<Mailbox> {
    address.iter().find_map(|addr| {
        let address = addr.address()?.trim();
        is_plausible_address(address).then(|| Mailbox {
            address: address.to_lowercase(),
            name: addr
                .name()
                .map(|name| name.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|name| !name.is_empty() && !name.eq_ignore_ascii_case(address)),
        })
    })
}

fn is_plausible_address(address: &str) -> bool {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !address.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

fn return_path(message: &Message<'_>) -> ReturnPath {
    // The first one is the one the final delivery added.
    match header_values(message, "Return-Path").into_iter().next() {
        None => ReturnPath::Absent,
        Some(value) => {
            let inner = value
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim();
            // Some servers write the null sender as MAILER-DAEMON.
            if inner.is_empty() || inner.eq_ignore_ascii_case("mailer-daemon") {
                ReturnPath::Null
            } else {
                ReturnPath::Address(inner.to_lowercase())
            }
        }
    }
}

/// The unfolded, raw values of every header of this name at the top of the message.
pub(crate) fn header_values(message: &Message<'_>, name: &str) -> Vec<String> {
    let raw = &message.raw_message;
    message
        .root_part()
        .headers
        .iter()
        .filter(|header| header.name.as_str().eq_ignore_ascii_case(name))
        .filter_map(|header| raw.get(header.offset_start as usize..header.offset_end as usize))
        .map(|value| {
            String::from_utf8_lossy(value)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn clean_id(id: &str) -> Option<String> {
    let id = id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!id.is_empty() && !id.contains(char::is_whitespace)).then(|| id.to_string())
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => clean_id(id).into_iter().collect(),
        HeaderValue::TextList(list) => list.iter().filter_map(|id| clean_id(id)).collect(),
        _ => Vec::new(),
    }
}

fn recipients(message: &Message<'_>) -> Vec<String> {
    let envelope = ["Delivered-To", "X-Original-To"]
        .into_iter()
        .flat_map(|name| header_values(message, name))
        .map(|value| {
            value
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        });
    let headers = message
        .all_to()
        .chain(message.all_cc())
        .flat_map(|address| address.iter())
        .filter_map(|addr| addr.address().map(|a| a.trim().to_string()));
    let mut recipients: Vec<String> = Vec::new();
    for address in envelope.chain(headers) {
        let address = address.to_lowercase();
        if is_plausible_address(&address) && !recipients.contains(&address) {
            recipients.push(address);
        }
    }
    recipients
}

/// The body as text: the plain-text parts, or the HTML ones converted where a message has
/// no plain text — or only an empty one, as some bulk senders and web forms send. mail-parser
/// has already decoded the transfer encoding and the charset.
fn body_text(message: &Message<'_>) -> String {
    let plain = parts_text(message, &message.text_body);
    if plain.is_empty() {
        parts_text(message, &message.html_body)
    } else {
        plain
    }
}

fn parts_text(message: &Message<'_>, ids: &[u32]) -> String {
    let parts: Vec<String> = ids
        .iter()
        .filter_map(|&id| message.parts.get(id as usize))
        .filter_map(|part| match &part.body {
            PartType::Text(plain) => {
                let plain = text::normalize_newlines(plain);
                let parameter = |name: &str, value: &str| {
                    part.content_type()
                        .and_then(|ct| ct.attribute(name))
                        .is_some_and(|v| v.eq_ignore_ascii_case(value))
                };
                Some(if parameter("format", "flowed") {
                    text::unflow(&plain, parameter("delsp", "yes"))
                } else {
                    plain
                })
            }
            PartType::Html(markup) => Some(html::to_text(markup)),
            _ => None,
        })
        .collect();
    let joined = text::collapse_blank_lines(&parts.join("\n"));
    joined.trim_matches('\n').trim_end().to_string()
}

fn attachments(message: &Message<'_>) -> Vec<Attachment> {
    let mut attachments = Vec::new();
    for &id in &message.attachments {
        let Some(part) = message.parts.get(id as usize) else {
            continue;
        };
        let (bytes, default_type, nested_subject) = match &part.body {
            // A part mail-parser could not decode (typically base64 cut off by a truncated
            // message) comes back as its encoded text; what can be decoded is the truth.
            PartType::Text(text)
                if part.is_encoding_problem
                    && part
                        .content_transfer_encoding()
                        .is_some_and(|cte| cte.trim().eq_ignore_ascii_case("base64")) =>
            {
                (
                    lenient_base64(text.as_bytes()),
                    "application/octet-stream",
                    None,
                )
            }
            PartType::Text(text) => (text.as_bytes().to_vec(), "text/plain", None),
            PartType::Html(html) => (html.as_bytes().to_vec(), "text/html", None),
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
                (bytes.to_vec(), "application/octet-stream", None)
            }
            PartType::Message(nested) => (
                nested_raw(message, part, nested),
                "message/rfc822",
                nested.subject().map(str::to_string),
            ),
            PartType::Multipart(_) => continue,
        };
        let content_type = part
            .content_type()
            .map(|ct| match ct.subtype() {
                Some(subtype) => format!("{}/{}", ct.ctype(), subtype),
                None => default_type.to_string(),
            })
            .unwrap_or_else(|| default_type.to_string())
            .to_ascii_lowercase();
        let content_id = part.content_id().and_then(clean_id);
        let inline = match part.content_disposition() {
            Some(disposition) if disposition.is_inline() => true,
            Some(disposition) if disposition.is_attachment() => false,
            _ => content_id.is_some() || matches!(part.body, PartType::InlineBinary(_)),
        };
        let number = attachments.len() + 1;
        let file_name = part
            .attachment_name()
            .and_then(safe_file_name)
            .or_else(|| {
                nested_subject
                    .as_deref()
                    .and_then(|subject| safe_file_name(&format!("{subject}.eml")))
            })
            .unwrap_or_else(|| default_file_name(&content_type, number));
        attachments.push(Attachment {
            file_name,
            content_type,
            bytes,
            inline,
            content_id,
        });
    }
    attachments
}

/// The attached message exactly as it was sent, so that the `.eml` opens as the original.
fn nested_raw(
    outer: &Message<'_>,
    part: &mail_parser::MessagePart<'_>,
    nested: &Message<'_>,
) -> Vec<u8> {
    // An attached message that was not transfer-encoded lies verbatim in the outer one.
    if part.encoding == mail_parser::Encoding::None
        && let Some(bytes) = outer
            .raw_message
            .get(part.offset_body as usize..part.offset_end as usize)
    {
        return bytes.to_vec();
    }
    nested.raw_message().to_vec()
}

/// Keeps the last path component, without control characters or leading dots, at most
/// 200 bytes: a name that can be shown and offered for download safely.
fn safe_file_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let cleaned = cleaned.trim_start_matches('.').trim();
    if cleaned.is_empty() {
        return None;
    }
    let mut end = cleaned.len().min(200);
    while !cleaned.is_char_boundary(end) {
        end -= 1;
    }
    Some(cleaned[..end].to_string())
}

/// A name for a part that came without one: what a report's parts are, else numbered.
fn default_file_name(content_type: &str, number: usize) -> String {
    let stem = match content_type {
        "message/delivery-status" | "message/global-delivery-status" => "delivery-status".into(),
        "text/rfc822-headers" | "message/rfc822-headers" => "returned-headers".into(),
        "message/disposition-notification" => "disposition-notification".into(),
        _ => format!("attachment-{number}"),
    };
    format!("{stem}.{}", extension(content_type))
}

/// Base64 that skips what is not base64 and stops at padding or the end: the decodable
/// start of a cut-off part.
fn lenient_base64(encoded: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded.len() / 4 * 3);
    let (mut bits, mut count) = (0u32, 0u32);
    for &byte in encoded {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

fn extension(content_type: &str) -> &'static str {
    match content_type {
        "application/pdf" => "pdf",
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "text/plain"
        | "text/rfc822-headers"
        | "message/rfc822-headers"
        | "message/delivery-status"
        | "message/global-delivery-status"
        | "message/disposition-notification" => "txt",
        "text/html" => "html",
        "text/csv" => "csv",
        "text/calendar" => "ics",
        "message/rfc822" | "message/global" => "eml",
        "application/zip" => "zip",
        _ => "bin",
    }
}

fn auto_reply_suppressed(message: &Message<'_>) -> bool {
    header_values(message, "X-Auto-Response-Suppress")
        .iter()
        .flat_map(|value| value.split([',', ' ']))
        .any(|token| {
            ["all", "oof", "autoreply"]
                .iter()
                .any(|t| token.trim().eq_ignore_ascii_case(t))
        })
}

/// Decides what a message may cause. Delivery reports first (they are automatic too, but
/// are worth recording on their item), then every sign of automatic mail, most specific
/// first.
fn classify(message: &Message<'_>, from: &Mailbox, return_path: &ReturnPath, body: &str) -> Kind {
    match report::report_type(message) {
        Some(report_type) if report_type.contains("delivery-status") => {
            return Kind::Report(report::delivery_report(message, body));
        }
        Some(report_type) => {
            return Kind::Automatic {
                reason: format!("a report ({report_type})"),
            };
        }
        None => {}
    }
    if report::is_mailer_daemon(&from.address) && !matches!(return_path, ReturnPath::Address(_)) {
        return Kind::Report(report::delivery_report(message, body));
    }
    if let Some(reason) = automatic_reason(message) {
        return Kind::Automatic { reason };
    }
    if *return_path == ReturnPath::Null {
        return Kind::Automatic {
            reason: "a null return path (Return-Path: <>)".into(),
        };
    }
    Kind::Personal
}

/// The headers automatic senders set. Deliberately broad: a person's message taken for
/// an automatic one still reaches an existing item and is seen; an automatic message
/// taken for a person's opens items and answers robots.
fn automatic_reason(message: &Message<'_>) -> Option<String> {
    // RFC 3834: anything but `no` is automatic (auto-replied, auto-generated, auto-notified).
    for name in ["Auto-Submitted", "Autosubmitted"] {
        for value in header_values(message, name) {
            let token = value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_lowercase();
            if !token.is_empty() && token != "no" {
                return Some(format!("{name}: {token}"));
            }
        }
    }
    // Not standard, but what list servers, bulk senders and older vacation programs set.
    for value in header_values(message, "Precedence") {
        let token = value.trim().to_lowercase();
        if matches!(
            token.as_str(),
            "bulk" | "junk" | "list" | "auto_reply" | "auto-reply"
        ) {
            return Some(format!("Precedence: {token}"));
        }
    }
    // Autoresponders that set no Auto-Submitted (cPanel, Exim, Zimbra, Outlook rules).
    for name in [
        "X-Autoreply",
        "X-Autorespond",
        "X-Autogenerated",
        "X-AutoReply-From",
        "X-Mail-Autoreply",
    ] {
        if let Some(value) = header_values(message, name).into_iter().next() {
            let value = value.trim().to_lowercase();
            if !matches!(value.as_str(), "no" | "false" | "0") {
                return Some(format!("{name}: {value}"));
            }
        }
    }
    // A message that came through a mailing list: it was written to the list, not to us.
    for name in ["List-Id", "List-Unsubscribe", "List-Post"] {
        if !header_values(message, name).is_empty() {
            return Some(format!("a mailing-list message ({name})"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_section_must_start_the_message() {
        assert!(starts_with_header_field(b"From: a@b.example\r\n"));
        assert!(starts_with_header_field(b"X-Odd_Name: 1\n"));
        assert!(!starts_with_header_field(b"Hello world: nope"));
        assert!(!starts_with_header_field(b": empty name"));
        assert!(!starts_with_header_field(b"\x00\x01binary"));
    }

    #[test]
    fn file_names_lose_directories_and_control_characters() {
        assert_eq!(
            safe_file_name("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(
            safe_file_name("C:\\Users\\jana\\report\t2026.pdf").as_deref(),
            Some("report 2026.pdf")
        );
        assert_eq!(safe_file_name("..."), None);
        assert_eq!(safe_file_name(".hidden").as_deref(), Some("hidden"));
        let long = "ž".repeat(300);
        let cut = safe_file_name(&long).unwrap();
        assert!(cut.len() <= 200);
    }

    fn with_headers(headers: &str) -> Inbound {
        let raw = format!(
            "From: Jana <jana@example.sk>\r\nTo: support@acme.example\r\nSubject: Hi\r\n{headers}\r\nHello\r\n"
        );
        parse(raw.as_bytes()).unwrap()
    }

    #[test]
    fn every_sign_of_automatic_mail_is_recognised() {
        for (headers, reason) in [
            (
                "Auto-Submitted: auto-replied\r\n",
                "Auto-Submitted: auto-replied",
            ),
            (
                "Auto-Submitted: Auto-Generated; owner-email=x@y\r\n",
                "Auto-Submitted: auto-generated",
            ),
            (
                "Auto-Submitted: auto-notified\r\n",
                "Auto-Submitted: auto-notified",
            ),
            ("Precedence: bulk\r\n", "Precedence: bulk"),
            ("Precedence: junk\r\n", "Precedence: junk"),
            ("Precedence: list\r\n", "Precedence: list"),
            ("Precedence: auto_reply\r\n", "Precedence: auto_reply"),
            ("X-Autoreply: yes\r\n", "X-Autoreply: yes"),
            ("X-Autorespond: Re: Hi\r\n", "X-Autorespond: re: hi"),
            ("X-Autogenerated: Reply\r\n", "X-Autogenerated: reply"),
            (
                "List-Id: Users <users.lists.example.org>\r\n",
                "a mailing-list message (List-Id)",
            ),
            (
                "List-Unsubscribe: <mailto:leave@lists.example.org>\r\n",
                "a mailing-list message (List-Unsubscribe)",
            ),
            (
                "Return-Path: <>\r\n",
                "a null return path (Return-Path: <>)",
            ),
        ] {
            let inbound = with_headers(headers);
            assert_eq!(
                inbound.kind,
                Kind::Automatic {
                    reason: reason.into()
                },
                "{headers}"
            );
            assert!(
                !inbound.may_open_item() && !inbound.may_auto_reply(),
                "{headers}"
            );
        }
    }

    #[test]
    fn personal_mail_stays_personal() {
        for headers in [
            "",
            "Auto-Submitted: no\r\n",
            "Precedence: normal\r\n",
            "X-Autoreply: no\r\n",
            "Return-Path: <jana@example.sk>\r\n",
            "Importance: high\r\n",
        ] {
            let inbound = with_headers(headers);
            assert_eq!(inbound.kind, Kind::Personal, "{headers}");
            assert!(
                inbound.may_open_item() && inbound.may_auto_reply(),
                "{headers}"
            );
        }
    }

    #[test]
    fn a_request_to_suppress_auto_replies_is_honoured_without_hiding_the_message() {
        for value in ["All", "OOF, AutoReply", "DR, RN, NRN, OOF, AutoReply"] {
            let inbound = with_headers(&format!("X-Auto-Response-Suppress: {value}\r\n"));
            assert!(inbound.may_open_item(), "{value}");
            assert!(!inbound.may_auto_reply(), "{value}");
        }
        assert!(with_headers("X-Auto-Response-Suppress: DR, RN\r\n").may_auto_reply());
    }

    #[test]
    fn a_mailer_daemon_with_a_null_return_path_is_a_bounce_even_without_a_report() {
        let raw =
            b"Return-Path: <>\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n\
            To: support@acme.example\r\nSubject: Mail delivery failed\r\n\
            X-Failed-Recipients: gone@example.org\r\n\r\n\
            A message that you sent could not be delivered. This is a permanent error.\r\n\r\n\
              gone@example.org\r\n    550 5.1.1 User unknown\r\n\r\n\
            ------ This is a copy of the message, including all the headers. ------\r\n\r\n\
            Message-ID: <ours-1@acme.example>\r\nFrom: support@acme.example\r\n";
        let inbound = parse(raw).unwrap();
        let Kind::Report(report) = &inbound.kind else {
            panic!("{:?}", inbound.kind);
        };
        assert_eq!(
            report.original_message_id.as_deref(),
            Some("ours-1@acme.example")
        );
        assert_eq!(report.failed_recipients, ["gone@example.org"]);
        assert_eq!(report.status.as_deref(), Some("5.1.1"));
        assert!(report.permanent);
        // A person at postmaster@ with a real return path still writes personal mail.
        let human =
            b"Return-Path: <postmaster@example.org>\r\nFrom: postmaster@example.org\r\n\r\nHi\r\n";
        assert_eq!(parse(human).unwrap().kind, Kind::Personal);
    }

    #[test]
    fn recipients_come_from_the_envelope_and_the_headers_once_each() {
        let raw = b"Delivered-To: Support@ACME.example\r\nX-Original-To: helpdesk@acme.example\r\n\
            From: jana@example.sk\r\nTo: Support <support@acme.example>, Team: eva@example.org, a@b.example;\r\n\
            Cc: \"Novak, Jan\" <JAN@example.sk>, undisclosed-recipients:;\r\n\r\nHi\r\n";
        let inbound = parse(raw).unwrap();
        assert_eq!(
            inbound.recipients,
            [
                "support@acme.example",
                "helpdesk@acme.example",
                "eva@example.org",
                "a@b.example",
                "jan@example.sk"
            ]
        );
    }

    #[test]
    fn unreadable_input_is_set_aside_with_a_reason() {
        let cases: [(&[u8], &str); 5] = [
            (b"", "empty message"),
            (b" \r\n\t\r\n", "empty message"),
            (
                b"\x89PNG\r\n\x1a\n",
                "not an RFC 5322 message: no header section",
            ),
            (b"Subject: hi\r\n\r\nno sender\r\n", "no From address"),
            (
                b"From: Jana Novakova\r\n\r\nno address\r\n",
                "no From address",
            ),
        ];
        for (raw, reason) in cases {
            assert_eq!(parse(raw).unwrap_err().reason, reason, "{raw:?}");
        }
        let huge = vec![b'a'; MAX_MESSAGE_SIZE + 1];
        assert_eq!(
            parse(&huge).unwrap_err().reason,
            "larger than the 25 MiB limit"
        );
    }

    #[test]
    fn an_mbox_envelope_line_and_a_byte_order_mark_are_skipped() {
        let inbound =
            parse(b"From jana@example.sk Mon Nov 23 09:14:05 2026\nFrom: jana@example.sk\n\nHi\n")
                .unwrap();
        assert_eq!(inbound.text, "Hi");
        let inbound = parse(b"\xEF\xBB\xBFFrom: jana@example.sk\r\n\r\nHi\r\n").unwrap();
        assert_eq!(inbound.from.address, "jana@example.sk");
    }

    mod never_panics {
        use super::*;
        use proptest::prelude::*;

        /// Pieces of MIME structure, so that generated input gets deep into the parser.
        fn fragment() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                Just(b"\r\n".to_vec()),
                Just(b"--b\r\n".to_vec()),
                Just(b"--b--\r\n".to_vec()),
                Just(b"Content-Type: multipart/mixed; boundary=b\r\n".to_vec()),
                Just(b"Content-Type: multipart/alternative; boundary=\"b\"\r\n".to_vec()),
                Just(
                    b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n"
                        .to_vec()
                ),
                Just(b"Content-Type: message/rfc822\r\n".to_vec()),
                Just(b"Content-Type: message/delivery-status\r\n".to_vec()),
                Just(b"Content-Type: text/html; charset=koi8-r\r\n".to_vec()),
                Just(
                    b"Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\r\n"
                        .to_vec()
                ),
                Just(b"Content-Transfer-Encoding: base64\r\n".to_vec()),
                Just(b"Content-Transfer-Encoding: quoted-printable\r\n".to_vec()),
                Just(
                    b"Content-Disposition: attachment; filename*0*=utf-8''%C3%A1; filename*1=b\r\n"
                        .to_vec()
                ),
                Just(b"Subject: =?utf-8?B?w6E=?= =?iso-8859-2?Q?=E8?=\r\n".to_vec()),
                Just(
                    b"Final-Recipient: rfc822; a@b\r\nAction: failed\r\nStatus: 5.1.1\r\n".to_vec()
                ),
                Just(b"<div><blockquote>&amp;&#x1F600;<br>".to_vec()),
                Just(b"On Mon, X wrote:\r\n> q\r\n".to_vec()),
                Just(b"Message-ID: <a@b>\r\n".to_vec()),
                Just(b"-----Original Message-----\r\n".to_vec()),
                proptest::collection::vec(any::<u8>(), 0..40),
            ]
        }

        proptest! {
            #[test]
            fn on_arbitrary_bytes(raw in proptest::collection::vec(any::<u8>(), 0..2048)) {
                let _ = parse(&raw);
            }

            #[test]
            fn on_mime_shaped_input(pieces in proptest::collection::vec(fragment(), 0..40)) {
                let mut raw = b"From: a@b.example\r\nContent-Type: multipart/mixed; boundary=b\r\n".to_vec();
                raw.extend(pieces.concat());
                // The parser itself must hold up, not only our guard around it.
                if let Err(malformed) = parse(&raw) {
                    prop_assert!(!malformed.reason.contains("parser failed"), "{}", malformed.reason);
                }
            }
        }
    }

    #[test]
    fn an_empty_plain_alternative_falls_back_to_the_html_one() {
        let raw = b"From: forms@example.org\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n\
            --b\r\nContent-Type: text/plain\r\n\r\n \r\n\
            --b\r\nContent-Type: text/html\r\n\r\n<p>Name: Jana</p><p>Issue: login</p>\r\n--b--\r\n";
        assert_eq!(parse(raw).unwrap().text, "Name: Jana\nIssue: login");
    }

    #[test]
    fn cut_off_base64_decodes_as_far_as_it_goes() {
        assert_eq!(lenient_base64(b"SGVsbG8s\r\nIHdvcmxk"), b"Hello, world");
        assert_eq!(lenient_base64(b"SGVsbG8=\r\n"), b"Hello");
        assert_eq!(lenient_base64(b"SGVsb"), b"Hel");
        assert!(lenient_base64(b"").is_empty());
    }

    #[test]
    fn thread_ids_are_most_direct_first_and_unique() {
        let raw = b"From: a@example.com\r\nIn-Reply-To: <c@x>\r\nReferences: <a@x> <b@x>\r\n <c@x>\r\n\r\nhi\r\n";
        let inbound = parse(raw).unwrap();
        assert_eq!(
            inbound.thread_ids().collect::<Vec<_>>(),
            vec!["c@x", "b@x", "a@x"]
        );
    }
}
