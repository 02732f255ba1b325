//! The corpus: real-world-shaped messages (as phones, Gmail, Outlook, Thunderbird, Apple
//! Mail, autoresponders and mail servers write them) and what a user of the e-mail channel
//! relies on for each.

use std::path::PathBuf;

use delego_mail::{Inbound, Kind, ReturnPath, parse};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn raw(name: &str) -> Vec<u8> {
    let path = corpus_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read(name: &str) -> Inbound {
    parse(&raw(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn automatic_reason(inbound: &Inbound) -> &str {
    match &inbound.kind {
        Kind::Automatic { reason } => reason,
        other => panic!("expected an automatic message, got {other:?}"),
    }
}

fn report(inbound: &Inbound) -> &delego_mail::DeliveryReport {
    match &inbound.kind {
        Kind::Report(report) => report,
        other => panic!("expected a delivery report, got {other:?}"),
    }
}

/// Every file of the corpus is either read or set aside with a reason — never a panic —
/// and every file has its own test here.
#[test]
fn every_corpus_message_is_read_or_set_aside_with_a_reason() {
    let covered = [
        "autoreply-x-autoreply.eml",
        "autoresponder-loop.eml",
        "delay-warning.eml",
        "dsn-bounce.eml",
        "forwarded-attached-rfc822.eml",
        "forwarded-inline.eml",
        "gmail-alternative-reply.eml",
        "iso-8859-2-qp.eml",
        "koi8-r-base64.eml",
        "malformed-binary.eml",
        "malformed-empty.eml",
        "malformed-no-from.eml",
        "newsletter-bulk.eml",
        "null-return-path.eml",
        "out-of-office.eml",
        "outlook-html-only.eml",
        "outlook-original-message.eml",
        "pdf-rfc2231-filename.eml",
        "phone-plain-utf8.eml",
        "postfix-bounce.eml",
        "qmail-bounce.eml",
        "read-receipt.eml",
        "related-inline-image.eml",
        "reply-quoted-gt.eml",
        "shift-jis-base64.eml",
        "truncated-multipart.eml",
        "windows-1250-subject.eml",
    ];
    let mut names: Vec<String> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".eml"))
        .collect();
    names.sort();
    assert_eq!(
        names, covered,
        "a corpus file without a test, or a test without its file"
    );
    for name in &names {
        match parse(&raw(name)) {
            Ok(inbound) => assert!(!inbound.from.address.is_empty(), "{name}"),
            Err(malformed) => {
                assert!(name.starts_with("malformed-"), "{name}: {malformed}");
                assert!(!malformed.reason.is_empty());
            }
        }
    }
}

#[test]
fn a_phone_message_in_utf8_opens_an_item() {
    let inbound = read("phone-plain-utf8.eml");
    assert_eq!(inbound.from.address, "jana.kovacova@example.sk");
    assert_eq!(inbound.from.name.as_deref(), Some("Jana Kovačová"));
    assert_eq!(inbound.subject, "Nefunguje mi e-mail v mobile 😞");
    assert!(
        inbound
            .text
            .starts_with("Dobrý deň,\n\nod rána mi na telefóne nechodí pošta.")
    );
    assert!(inbound.text.contains("„Nedá sa pripojiť k serveru“"));
    assert!(inbound.text.contains("reštart 🙏"));
    assert_eq!(inbound.quoted, None);
    assert_eq!(
        inbound.message_id.as_deref(),
        Some("7C3A1F2E-5B4D-4E6F-8A9B-0C1D2E3F4A5B@example.sk")
    );
    assert_eq!(inbound.recipients, ["support@acme.example"]);
    assert_eq!(
        inbound.return_path,
        ReturnPath::Address("jana.kovacova@example.sk".into())
    );
    assert_eq!(inbound.date, Some("2026-11-23T08:13:58Z".parse().unwrap()));
    assert_eq!(inbound.thread_ids().count(), 0);
    assert_eq!(inbound.reference(), None);
    assert!(inbound.attachments.is_empty());
    assert_eq!(inbound.kind, Kind::Personal);
    assert!(inbound.may_open_item() && inbound.may_auto_reply());
}

#[test]
fn a_gmail_reply_uses_the_plain_part_and_folds_the_quote() {
    let inbound = read("gmail-alternative-reply.eml");
    assert_eq!(
        inbound.text,
        "I restarted it as you suggested, but it still shows „Paper jam“ even though the tray is empty.\n\nPeter"
    );
    let quoted = inbound.quoted.as_deref().unwrap();
    assert!(quoted.starts_with(
        "On Mon, 23 Nov 2026 at 10:02, ACME Help Desk <support@acme.example>\nwrote:"
    ));
    assert!(quoted.contains("> please switch the printer off and on again."));
    assert_eq!(
        inbound.thread_ids().collect::<Vec<_>>(),
        [
            "01936b30aa117c3d9e1f2a3b4c5d6e80@acme.example",
            "01936b2e8f7a7c3d9e1f2a3b4c5d6e7f@acme.example"
        ]
    );
    assert_eq!(inbound.reference().as_deref(), Some("0A1B2C3D"));
    assert_eq!(
        inbound.recipients,
        ["support@acme.example", "eva.mala@example.org"]
    );
    // The HTML alternative is the same text, not an attachment.
    assert!(inbound.attachments.is_empty());
    assert_eq!(inbound.kind, Kind::Personal);
}

#[test]
fn an_html_only_outlook_reply_becomes_text_without_styles_or_history() {
    let inbound = read("outlook-html-only.eml");
    assert_eq!(inbound.from.address, "m.schmidt@contoso.example");
    assert_eq!(inbound.from.name.as_deref(), Some("Schmidt, Martin"));
    assert_eq!(
        inbound.text,
        "Hallo Frau Nováková,\n\nvielen Dank – der Zugang funktioniert jetzt.\n\
         Die Rechnung über 120 € für \"Premium\" ist aber noch offen & unbezahlt.\n\n\
         Mit freundlichen Grüßen\nMartin Schmidt"
    );
    for markup in ["margin", "<div", "&nbsp;", "shapedefaults", "Guten Tag"] {
        assert!(!inbound.text.contains(markup), "{markup}");
    }
    let quoted = inbound.quoted.as_deref().unwrap();
    assert!(quoted.starts_with("Von: ACME Help Desk <support@acme.example>\nGesendet:"));
    assert!(quoted.contains("bitte versuchen Sie es noch einmal."));
    assert_eq!(inbound.reference().as_deref(), Some("5E6F7A8B"));
    assert_eq!(
        inbound.thread_ids().next(),
        Some("01936c11bb227c3d9e1f2a3b4c5d6e81@acme.example")
    );
}

#[test]
fn iso_8859_2_quoted_printable_is_decoded() {
    let inbound = read("iso-8859-2-qp.eml");
    assert_eq!(inbound.subject, "Nefunguje mi tlačiareň");
    assert_eq!(inbound.from.name.as_deref(), Some("Dušan Kráľ"));
    assert!(
        inbound
            .text
            .starts_with("Dobrý deň, nefunguje mi tlačiareň v kancelárii 214.")
    );
    assert!(inbound.text.ends_with("S pozdravom\nDušan Kráľ"));
}

#[test]
fn windows_1250_subject_name_and_8bit_body_are_decoded() {
    let inbound = read("windows-1250-subject.eml");
    assert_eq!(inbound.subject, "Žiadosť o prístup do systému č. 2");
    assert_eq!(inbound.from.name.as_deref(), Some("Ľubomír Šťastný"));
    assert!(
        inbound
            .text
            .contains("prosím o prístup do systému účtovníctva pre kolegyňu Ľudmilu Šťastnú.")
    );
    assert!(!inbound.text.contains('\u{fffd}'));
    assert_eq!(inbound.recipients, ["podpora@acme.example"]);
}

#[test]
fn koi8_r_base64_is_decoded() {
    let inbound = read("koi8-r-base64.eml");
    assert_eq!(inbound.subject, "Не работает VPN");
    assert_eq!(inbound.from.name.as_deref(), Some("Иван Петров"));
    assert!(
        inbound
            .text
            .contains("С утра не подключается VPN, ошибка 809.")
    );
}

#[test]
fn shift_jis_base64_is_decoded() {
    let inbound = read("shift-jis-base64.eml");
    assert_eq!(inbound.subject, "プリンターが動きません");
    assert_eq!(inbound.from.name.as_deref(), Some("田中 由紀"));
    assert!(inbound.text.contains("3階のプリンターが動きません。"));
}

#[test]
fn a_pdf_with_an_rfc_2231_name_is_attached_and_a_nameless_part_gets_a_safe_name() {
    let inbound = read("pdf-rfc2231-filename.eml");
    // format=flowed lines are joined back into the paragraph.
    assert!(inbound.text.contains("Prosím o storno jednej z nich."));
    let [pdf, opaque] = inbound.attachments.as_slice() else {
        panic!("{:?}", inbound.attachments);
    };
    assert_eq!(pdf.file_name, "Faktúra č. 2026-0114 – duplikát.pdf");
    assert_eq!(pdf.content_type, "application/pdf");
    assert!(pdf.bytes.starts_with(b"%PDF-1.4\n"));
    assert!(pdf.bytes.ends_with(b"%%EOF\n"));
    assert_eq!(pdf.bytes.len(), 350);
    assert!(!pdf.inline);
    assert_eq!(opaque.file_name, "attachment-2.bin");
    assert_eq!(opaque.content_type, "application/octet-stream");
    assert_eq!(opaque.bytes.len(), 64);
}

#[test]
fn inline_images_of_an_html_body_are_attachments_marked_inline() {
    let inbound = read("related-inline-image.eml");
    assert_eq!(
        inbound.text,
        "The export stops with this error:\n\nRegards, Tom"
    );
    let [screenshot, logo] = inbound.attachments.as_slice() else {
        panic!("{:?}", inbound.attachments);
    };
    assert_eq!(screenshot.file_name, "screenshot.png");
    assert_eq!(screenshot.content_type, "image/png");
    assert!(screenshot.bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(screenshot.inline);
    assert_eq!(
        screenshot.content_id.as_deref(),
        Some("F1E2D3C4-screenshot@example.org")
    );
    // Outlook's signature logos come without a Content-Disposition, only a Content-ID.
    assert_eq!(logo.file_name, "image001.jpg");
    assert_eq!(logo.content_type, "image/jpeg");
    assert!(logo.bytes.starts_with(b"\xff\xd8") && logo.bytes.ends_with(b"\xff\xd9"));
    assert!(logo.inline);
}

#[test]
fn an_inline_forward_is_content_not_quoted_history() {
    let inbound = read("forwarded-inline.eml");
    assert_eq!(inbound.quoted, None);
    assert!(inbound.text.starts_with("Could you please look at this?"));
    assert!(
        inbound
            .text
            .contains("---------- Forwarded message ---------")
    );
    assert!(
        inbound
            .text
            .contains("the badge reader at entrance B rejects every card")
    );
    // Even the quote inside the forwarded message is what the sender wants us to read.
    assert!(
        inbound
            .text
            .contains("> Is the badge reader working for you?")
    );
    assert!(inbound.may_open_item());
}

#[test]
fn a_message_forwarded_as_an_attachment_is_kept_as_an_eml() {
    let inbound = read("forwarded-attached-rfc822.eml");
    assert_eq!(
        inbound.text,
        "Forwarding the supplier's message: the amount on the invoice is wrong, we ordered 10 licences, not 12."
    );
    let [eml] = inbound.attachments.as_slice() else {
        panic!("{:?}", inbound.attachments);
    };
    assert_eq!(eml.file_name, "Invoice 2026-114.eml");
    assert_eq!(eml.content_type, "message/rfc822");
    assert!(
        eml.bytes
            .starts_with(b"Return-Path: <billing@supplier.example>\r\n")
    );
    // The attachment is the whole original, readable on its own.
    let original = parse(&eml.bytes).unwrap();
    assert_eq!(
        original.message_id.as_deref(),
        Some("inv-2026-114@supplier.example")
    );
    assert!(original.text.contains("1 250,00 € for 12 licences"));
}

#[test]
fn a_reply_with_quoted_lines_folds_the_attribution_and_the_quote() {
    let inbound = read("reply-quoted-gt.eml");
    assert_eq!(
        inbound.text,
        "Dobrý deň,\n\náno, po reinštalácii klienta to funguje. Môžete požiadavku uzavrieť.\n\nJán"
    );
    let quoted = inbound.quoted.as_deref().unwrap();
    assert!(quoted.starts_with(
        "On Mon, 23 Nov 2026 at 10:02, Help Desk <support@acme.example> wrote:\n> Dobrý deň,"
    ));
    assert!(quoted.ends_with("> ACME Help Desk"));
    assert_eq!(
        inbound.thread_ids().collect::<Vec<_>>(),
        [
            "01936d01cc337c3d9e1f2a3b4c5d6e82@acme.example",
            "CAF1st.request@example.sk"
        ]
    );
    assert_eq!(inbound.from.name.as_deref(), Some("Ján Novák"));
}

#[test]
fn an_outlook_reply_without_threading_headers_finds_its_item_by_the_subject_token() {
    let inbound = read("outlook-original-message.eml");
    assert_eq!(inbound.thread_ids().count(), 0);
    assert_eq!(inbound.reference().as_deref(), Some("7A8B9C0D"));
    assert_eq!(
        inbound.text,
        "Ďakujem, už to ide.\n\nPeter Kováč\nIT oddelenie"
    );
    let quoted = inbound.quoted.as_deref().unwrap();
    assert!(quoted.starts_with("-----Original Message-----\nFrom: ACME Help Desk"));
    assert!(quoted.contains("heslo sme vám resetovali"));
}

#[test]
fn an_out_of_office_answer_is_automatic() {
    let inbound = read("out-of-office.eml");
    assert_eq!(automatic_reason(&inbound), "Auto-Submitted: auto-replied");
    assert!(!inbound.may_auto_reply());
    assert!(!inbound.may_open_item());
    assert!(inbound.auto_reply_suppressed);
    assert_eq!(
        inbound.subject,
        "Automatická odpoveď: Heslo do SAP [#7A8B9C0D]"
    );
    // It can still be recorded on the item it answers.
    assert_eq!(
        inbound.thread_ids().next(),
        Some("01936e11dd447c3d9e1f2a3b4c5d6e83@acme.example")
    );
    assert!(inbound.text.contains("som na dovolenke"));
}

#[test]
fn an_autoresponder_with_only_x_autoreply_is_automatic() {
    let inbound = read("autoreply-x-autoreply.eml");
    assert_eq!(automatic_reason(&inbound), "X-Autoreply: yes");
    assert!(!inbound.may_auto_reply() && !inbound.may_open_item());
    assert_eq!(inbound.from.name, None);
}

#[test]
fn another_help_desks_acknowledgement_does_not_start_a_loop() {
    let inbound = read("autoresponder-loop.eml");
    assert_eq!(automatic_reason(&inbound), "Auto-Submitted: auto-generated");
    assert!(!inbound.may_auto_reply());
    assert!(!inbound.may_open_item());
    assert_eq!(inbound.reference().as_deref(), Some("9D8C7B6A"));
    assert!(inbound.text.ends_with("Please do not reply."));
    assert!(
        inbound
            .quoted
            .unwrap()
            .starts_with("> Thank you, we received your request")
    );
}

#[test]
fn a_newsletter_is_automatic() {
    let inbound = read("newsletter-bulk.eml");
    assert_eq!(automatic_reason(&inbound), "Precedence: bulk");
    assert!(!inbound.may_open_item() && !inbound.may_auto_reply());
    assert_eq!(
        inbound.reply_to.as_ref().map(|m| m.address.as_str()),
        Some("no-reply@contoso-cloud.example")
    );
    assert!(
        inbound
            .text
            .contains("5 new features are live in your workspace")
    );
}

#[test]
fn a_standard_delivery_report_is_recorded_against_the_original_message() {
    let inbound = read("dsn-bounce.eml");
    let report = report(&inbound);
    assert_eq!(
        report.original_message_id.as_deref(),
        Some("01936b30aa117c3d9e1f2a3b4c5d6e80@acme.example")
    );
    assert_eq!(report.failed_recipients, ["jan.novak@example.sk"]);
    assert_eq!(report.status.as_deref(), Some("5.1.1"));
    assert_eq!(
        report.diagnostic.as_deref(),
        Some(
            "550 5.1.1 <jan.novak@example.sk>: Recipient address rejected: User unknown in virtual mailbox table"
        )
    );
    assert!(report.permanent);
    assert_eq!(inbound.return_path, ReturnPath::Null);
    assert!(!inbound.may_auto_reply() && !inbound.may_open_item());
    assert!(inbound.text.starts_with("** Address not found **"));
    let names: Vec<&str> = inbound
        .attachments
        .iter()
        .map(|a| a.file_name.as_str())
        .collect();
    assert_eq!(
        names,
        ["icon.png", "delivery-status.txt", "returned-headers.txt"]
    );
}

#[test]
fn a_postfix_bounce_returns_the_original_message() {
    let inbound = read("postfix-bounce.eml");
    let report = report(&inbound);
    assert_eq!(
        report.original_message_id.as_deref(),
        Some("01937001ff667c3d9e1f2a3b4c5d6e85@acme.example")
    );
    assert_eq!(report.failed_recipients, ["maria.horvathova@example.org"]);
    assert_eq!(report.status.as_deref(), Some("5.2.2"));
    assert_eq!(
        report.diagnostic.as_deref(),
        Some("552 5.2.2 <maria.horvathova@example.org>: Mailbox full")
    );
    assert!(report.permanent);
    assert_eq!(inbound.from.address, "mailer-daemon@mx.acme.example");
    let returned = inbound
        .attachments
        .iter()
        .find(|a| a.content_type == "message/rfc822")
        .unwrap();
    assert_eq!(
        returned.file_name,
        "We received your request [#2B3C4D5E].eml"
    );
    assert_eq!(
        parse(&returned.bytes).unwrap().message_id.as_deref(),
        Some("01937001ff667c3d9e1f2a3b4c5d6e85@acme.example")
    );
}

#[test]
fn a_plain_text_qmail_bounce_is_still_a_report() {
    let inbound = read("qmail-bounce.eml");
    let report = report(&inbound);
    assert_eq!(
        report.original_message_id.as_deref(),
        Some("01937102aa777c3d9e1f2a3b4c5d6e86@acme.example")
    );
    assert_eq!(report.failed_recipients, ["tomas.blazek@example.net"]);
    assert_eq!(report.status.as_deref(), Some("5.1.1"));
    assert!(report.permanent);
    assert!(
        inbound
            .text
            .ends_with("Sorry, no mailbox here by that name. (#5.1.1)")
    );
    assert!(
        inbound
            .quoted
            .unwrap()
            .starts_with("--- Below this line is a copy of the message.")
    );
}

#[test]
fn a_delay_warning_is_a_report_that_is_not_permanent() {
    let inbound = read("delay-warning.eml");
    let report = report(&inbound);
    assert!(!report.permanent);
    assert_eq!(report.status.as_deref(), Some("4.4.1"));
    assert_eq!(report.failed_recipients, ["it@example.com"]);
    assert_eq!(
        report.original_message_id.as_deref(),
        Some("01937203bb887c3d9e1f2a3b4c5d6e87@acme.example")
    );
    assert!(!inbound.may_open_item());
}

#[test]
fn a_null_return_path_without_a_report_is_automatic() {
    let inbound = read("null-return-path.eml");
    assert_eq!(inbound.return_path, ReturnPath::Null);
    assert!(automatic_reason(&inbound).contains("null return path"));
    assert!(!inbound.may_open_item() && !inbound.may_auto_reply());
}

#[test]
fn a_read_receipt_is_automatic() {
    let inbound = read("read-receipt.eml");
    assert_eq!(
        automatic_reason(&inbound),
        "a report (disposition-notification)"
    );
    assert!(!inbound.may_open_item());
}

#[test]
fn a_truncated_message_keeps_its_text_and_what_remains_of_the_attachment() {
    let inbound = read("truncated-multipart.eml");
    assert_eq!(inbound.text, "Posielam sken zmluvy, prosím o kontrolu.");
    let [pdf] = inbound.attachments.as_slice() else {
        panic!("{:?}", inbound.attachments);
    };
    assert_eq!(pdf.file_name, "zmluva.pdf");
    assert!(pdf.bytes.starts_with(b"%PDF-1.4"));
}

#[test]
fn malformed_messages_are_set_aside_with_a_reason() {
    for (name, reason) in [
        ("malformed-no-from.eml", "no From address"),
        (
            "malformed-binary.eml",
            "not an RFC 5322 message: no header section",
        ),
        ("malformed-empty.eml", "empty message"),
    ] {
        let malformed = parse(&raw(name)).unwrap_err();
        assert_eq!(malformed.reason, reason, "{name}");
        assert_eq!(malformed.to_string(), reason);
    }
}
