//! Delivery reports: standard ones (RFC 3464 `multipart/report; report-type=delivery-status`)
//! and the plain-text bounces some servers still send.

use mail_parser::{Message, MimeHeaders, PartType};

use crate::inbound::{DeliveryReport, header_values};

/// The `report-type` of a `multipart/report` message, lower-cased.
pub(crate) fn report_type(message: &Message<'_>) -> Option<String> {
    let content_type = message.root_part().content_type()?;
    let is_report = content_type.ctype().eq_ignore_ascii_case("multipart")
        && content_type
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"));
    if is_report {
        return Some(
            content_type
                .attribute("report-type")
                .unwrap_or("unknown")
                .to_ascii_lowercase(),
        );
    }
    // A report wrapped in something else (some gateways do that) still has its status part.
    message
        .parts
        .iter()
        .any(|part| is_status_part(part))
        .then(|| "delivery-status".to_string())
}

/// Whether the address is a mail system's own (`MAILER-DAEMON@…`, `postmaster@…`), which
/// with a null return path marks a bounce even when it is not a standard report.
pub(crate) fn is_mailer_daemon(address: &str) -> bool {
    let local = address.split('@').next().unwrap_or_default();
    ["mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"]
        .iter()
        .any(|name| local.eq_ignore_ascii_case(name))
}

fn is_status_part(part: &mail_parser::MessagePart<'_>) -> bool {
    part.is_content_type("message", "delivery-status")
        || part.is_content_type("message", "global-delivery-status")
}

/// Reads a bounce: the machine-readable status part when there is one, otherwise what the
/// human-readable text and the returned copy of the message say. `body` is the message's
/// whole text (before quoted history was split off, which a returned copy may look like).
pub(crate) fn delivery_report(message: &Message<'_>, body: &str) -> DeliveryReport {
    let original_message_id = returned_message_id(message).or_else(|| message_id_in_text(body));
    let status_part = message
        .parts
        .iter()
        .find(|part| is_status_part(part))
        .map(|part| String::from_utf8_lossy(part.contents()).into_owned());
    match status_part {
        Some(fields) => from_status_fields(&fields, original_message_id),
        None => from_text(message, body, original_message_id),
    }
}

/// RFC 3464: a block of per-message fields, then one block per recipient.
fn from_status_fields(fields: &str, original_message_id: Option<String>) -> DeliveryReport {
    let blocks = field_blocks(fields);
    let mut failed = Vec::new();
    let mut permanent = false;
    // The most telling recipient: the first that failed for good, else the first delayed.
    let mut telling: Option<(bool, Option<String>, Option<String>)> = None;
    for block in blocks
        .iter()
        .skip(1)
        .chain(blocks.first().filter(|_| blocks.len() == 1))
    {
        let field = |name: &str| {
            block
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
        };
        let Some(recipient) = field("Final-Recipient").or_else(|| field("Original-Recipient"))
        else {
            continue;
        };
        let recipient = after_type(&recipient)
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_lowercase();
        let status = field("Status").map(|s| s.split_whitespace().next().unwrap_or("").to_string());
        let action = field("Action").map(|a| a.to_lowercase());
        let this_permanent = match action.as_deref() {
            Some("failed") => true,
            Some("delayed") => false,
            Some(_) => continue, // delivered, relayed, expanded: not a failure
            None => match status.as_deref() {
                Some(s) if s.starts_with('5') => true,
                Some(s) if s.starts_with('4') => false,
                _ => continue,
            },
        };
        permanent |= this_permanent;
        if !failed.contains(&recipient) {
            failed.push(recipient);
        }
        let diagnostic = field("Diagnostic-Code").map(|d| after_type(&d).to_string());
        if telling
            .as_ref()
            .is_none_or(|(p, _, _)| !p && this_permanent)
        {
            telling = Some((this_permanent, status, diagnostic));
        }
    }
    let (_, status, diagnostic) = telling.unwrap_or((false, None, None));
    DeliveryReport {
        original_message_id,
        failed_recipients: failed,
        status: status.filter(|s| !s.is_empty()),
        diagnostic: diagnostic.filter(|d| !d.is_empty()),
        permanent,
    }
}

/// `rfc822; jan@example.org` → `jan@example.org`; `smtp; 550 …` → `550 …`.
fn after_type(value: &str) -> &str {
    value.split_once(';').map_or(value, |(_, rest)| rest).trim()
}

/// Header-like field blocks separated by blank lines, with folded lines unfolded.
fn field_blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks = Vec::new();
    let mut block: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !block.is_empty() {
                blocks.push(std::mem::take(&mut block));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = block.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            block.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    if !block.is_empty() {
        blocks.push(block);
    }
    blocks
}

/// A bounce without a status part: the failed addresses from `X-Failed-Recipients` (Exim)
/// or the `<address>:` lines qmail writes, the first enhanced status code in the text.
fn from_text(
    message: &Message<'_>,
    body: &str,
    original_message_id: Option<String>,
) -> DeliveryReport {
    let mut failed: Vec<String> = header_values(message, "X-Failed-Recipients")
        .iter()
        .flat_map(|value| value.split(','))
        .map(|a| {
            a.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_lowercase()
        })
        .filter(|a| a.contains('@'))
        .collect();
    // Only the explanation, not the returned copy below it.
    let explanation = body
        .lines()
        .take_while(|line| !crate::text::is_returned_copy(line))
        .collect::<Vec<_>>()
        .join("\n");
    if failed.is_empty() {
        for line in explanation.lines() {
            let line = line.trim();
            if let Some(address) = line
                .strip_prefix('<')
                .and_then(|rest| rest.strip_suffix(">:"))
                .filter(|a| a.contains('@') && !a.contains(char::is_whitespace))
            {
                let address = address.to_lowercase();
                if !failed.contains(&address) {
                    failed.push(address);
                }
            }
        }
    }
    let status_line = explanation
        .lines()
        .find_map(|line| enhanced_status(line).map(|status| (status, line.trim())));
    let lower = explanation.to_lowercase();
    let permanent = match status_line.as_ref().map(|(status, _)| status.as_bytes()[0]) {
        Some(b'5') => true,
        Some(b'4') => false,
        _ => {
            lower.contains("permanent")
                || !(lower.contains("temporar")
                    || lower.contains("delayed")
                    || lower.contains("will retry"))
        }
    };
    DeliveryReport {
        original_message_id,
        failed_recipients: failed,
        diagnostic: status_line.as_ref().map(|(_, line)| line.to_string()),
        status: status_line.map(|(status, _)| status),
        permanent,
    }
}

/// The first enhanced status code (`5.1.1`, RFC 3463) in a line.
fn enhanced_status(line: &str) -> Option<String> {
    let bytes = line.as_bytes();
    for start in 0..bytes.len() {
        if !matches!(bytes[start], b'2' | b'4' | b'5') || bytes.get(start + 1) != Some(&b'.') {
            continue;
        }
        if start > 0 && (bytes[start - 1].is_ascii_digit() || bytes[start - 1] == b'.') {
            continue;
        }
        let rest = &line[start + 2..];
        let subject: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if subject.is_empty() || subject.len() > 3 {
            continue;
        }
        let rest = &rest[subject.len()..];
        let Some(rest) = rest.strip_prefix('.') else {
            continue;
        };
        let detail: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let after = rest[detail.len()..].chars().next();
        if detail.is_empty()
            || detail.len() > 3
            || after.is_some_and(|c| c.is_ascii_digit() || c == '.')
        {
            continue;
        }
        if bytes[start] != b'2' {
            return Some(format!("{}.{subject}.{detail}", bytes[start] as char));
        }
    }
    None
}

/// The `Message-ID` of the returned message: from an attached copy (`message/rfc822`) or an
/// attached header section (`text/rfc822-headers`).
fn returned_message_id(message: &Message<'_>) -> Option<String> {
    message.parts.iter().find_map(|part| match &part.body {
        PartType::Message(returned) => returned
            .message_id()
            .map(|id| id.trim().to_string())
            .filter(|id| !id.is_empty()),
        PartType::Text(text)
            if part.is_content_type("text", "rfc822-headers")
                || part.is_content_type("message", "rfc822-headers") =>
        {
            message_id_in_text(text)
        }
        PartType::Binary(bytes) if part.is_content_type("message", "rfc822") => {
            message_id_in_text(&String::from_utf8_lossy(bytes))
        }
        _ => None,
    })
}

/// A `Message-ID:` header line (possibly folded) in text, as in a returned header section.
pub(crate) fn message_id_in_text(text: &str) -> Option<String> {
    let mut lines = text.lines().map(|line| line.trim_end_matches('\r'));
    while let Some(line) = lines.next() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("message-id") || name.starts_with([' ', '\t']) {
            continue;
        }
        let mut value = value.trim().to_string();
        if value.is_empty() {
            value = lines.next().unwrap_or_default().trim().to_string();
        }
        let id = value
            .split_once('<')
            .and_then(|(_, rest)| rest.split_once('>'))
            .map_or(value.as_str(), |(id, _)| id)
            .trim();
        if !id.is_empty() && !id.contains(char::is_whitespace) {
            return Some(id.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_status_codes_are_found_and_not_confused_with_versions() {
        assert_eq!(
            enhanced_status("550 5.1.1 <jan@example.org>: User unknown").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            enhanced_status("said: 452 4.2.2 Mailbox full").as_deref(),
            Some("4.2.2")
        );
        assert_eq!(enhanced_status("Postfix 3.5.1.2 released"), None);
        assert_eq!(enhanced_status("version 15.20.123"), None);
        assert_eq!(enhanced_status("250 2.0.0 OK"), None);
    }

    #[test]
    fn message_ids_are_read_from_header_text_even_when_folded() {
        let headers =
            "From: help@acme.example\r\nMessage-ID:\r\n <abc.123@acme.example>\r\nSubject: x\r\n";
        assert_eq!(
            message_id_in_text(headers).as_deref(),
            Some("abc.123@acme.example")
        );
        assert_eq!(
            message_id_in_text("Message-Id: <a@b>").as_deref(),
            Some("a@b")
        );
        assert_eq!(message_id_in_text("no ids here"), None);
    }

    #[test]
    fn status_fields_pick_the_permanent_failure() {
        let fields = "Reporting-MTA: dns; mx.example.net\r\n\r\n\
            Final-Recipient: rfc822; later@example.org\r\nAction: delayed\r\nStatus: 4.4.7\r\n\r\n\
            Final-Recipient: rfc822; <Gone@Example.org>\r\nAction: failed\r\nStatus: 5.1.1\r\n\
            Diagnostic-Code: smtp; 550 5.1.1 <gone@example.org>:\r\n    Recipient address rejected\r\n";
        let report = from_status_fields(fields, None);
        assert_eq!(
            report.failed_recipients,
            ["later@example.org", "gone@example.org"]
        );
        assert!(report.permanent);
        assert_eq!(report.status.as_deref(), Some("5.1.1"));
        assert_eq!(
            report.diagnostic.as_deref(),
            Some("550 5.1.1 <gone@example.org>: Recipient address rejected")
        );
    }
}
