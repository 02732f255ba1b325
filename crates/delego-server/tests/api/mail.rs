//! The e-mail channel end to end, on both backends: a corpus of real-world-shaped messages
//! (the `delego-mail` crate's, some with their ids set to the mail this test makes) fed
//! through an engagement's maildir and the inbound endpoint; the items and replies they
//! become; the acknowledgements and replies that go out to a local SMTP sink, threaded;
//! automatic mail that is never answered; a bounce recorded on its item; an
//! autoresponder loop cut off; and a relay's failures retried or given up.

use std::path::Path;
use std::time::Duration;

use delego_core::identity::Role;
use delego_mail::{Captured, Failure, SmtpSink};
use delego_server::Config;
use delego_server::mail::MailConfig;
use delego_store::testing::Harness;
use jiff::SignedDuration;
use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::harness::{Session, TestServer};

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_mail_survives_a_restart_and_goes_out_from_the_next_node() {
        super::queued_mail_survives_a_restart_and_goes_out_from_the_next_node(
            delego_store::testing::Harness::sqlite().await,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mail_becomes_items_and_replies_and_replies_go_out_threaded() {
        super::mail_becomes_items_and_replies_and_replies_go_out_threaded(
            delego_store::testing::Harness::sqlite().await,
        )
        .await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_mail_survives_a_restart_and_goes_out_from_the_next_node() {
        let Some(db) = delego_store::testing::Harness::postgres().await else {
            return;
        };
        super::queued_mail_survives_a_restart_and_goes_out_from_the_next_node(db).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mail_becomes_items_and_replies_and_replies_go_out_threaded() {
        let Some(db) = delego_store::testing::Harness::postgres().await else {
            return;
        };
        super::mail_becomes_items_and_replies_and_replies_go_out_threaded(db).await;
    }
}

const ADDRESS: &str = "support@acme.example";

fn corpus(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../delego-mail/tests/corpus")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A corpus message with some of its text replaced (its ids set to this test's mail).
fn corpus_with(name: &str, replacements: &[(&str, &str)]) -> Vec<u8> {
    let mut raw = corpus(name);
    for (from, to) in replacements {
        let text = String::from_utf8_lossy(&raw).into_owned();
        assert!(text.contains(from), "{name} has no {from}");
        raw = replace_bytes(&raw, from.as_bytes(), to.as_bytes());
    }
    raw
}

fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

async fn post_mail(manager: &Session, raw: Vec<u8>) -> Json {
    let response = manager
        .request(Method::POST, "/api/v1/mail/inbound")
        .header("content-type", "message/rfc822")
        .body(raw)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Json = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// A header's value in a captured mail, unfolded.
fn header(mail: &Captured, name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(&mail.raw).replace("\r\n ", " ");
    let head = text.split("\r\n\r\n").next().unwrap_or_default().to_owned();
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

fn id_of(header_value: &str) -> String {
    header_value
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

/// The decoded mail as the requester's client reads it.
fn read(mail: &Captured) -> delego_mail::Inbound {
    delego_mail::parse(&mail.raw).expect("our own mail parses")
}

/// Mail sent so far to `to`.
/// The mail sent to `to` once there are `n` of them: the background runtime may be the
/// one sending, a moment later than this test's own call.
async fn sent_n_to(sink: &SmtpSink, to: &str, n: usize) -> Vec<Captured> {
    for _ in 0..100 {
        let sent = sent_to(sink, to);
        if sent.len() >= n {
            return sent;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sent_to(sink, to)
}

/// The status of the item's latest mail once it is no longer `queued`.
async fn settled_status(manager: &Session, item: &str) -> Json {
    for _ in 0..100 {
        let (_, mail) = manager.get(&format!("/api/v1/items/{item}/mail")).await;
        let status = mail.as_array().unwrap().last().unwrap()["status"].clone();
        if status != "queued" {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Json::from("queued")
}

fn sent_to(sink: &SmtpSink, to: &str) -> Vec<Captured> {
    sink.messages()
        .into_iter()
        .filter(|mail| mail.to.iter().any(|t| t.eq_ignore_ascii_case(to)))
        .collect()
}

/// Runs the delivery the runtime runs each second: notices and replies queued as mail,
/// then sent.
async fn deliver(server: &TestServer) {
    delego_server::runtime::deliver_outgoing(&server.state)
        .await
        .unwrap();
    delego_server::mail::send_due(&server.state).await.unwrap();
}

async fn items_of(manager: &Session, engagement: &str) -> Vec<Json> {
    let (status, list) = manager
        .get(&format!(
            "/api/v1/items?engagement_id={engagement}&limit=200"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["items"].as_array().unwrap().clone()
}

fn with_subject<'a>(items: &'a [Json], subject: &str) -> &'a Json {
    items
        .iter()
        .find(|item| item["data"]["subject"] == subject)
        .unwrap_or_else(|| panic!("no item \"{subject}\" among {items:#?}"))
}

async fn thread(manager: &Session, item: &str) -> Vec<Json> {
    let (status, messages) = manager.get(&format!("/api/v1/items/{item}/messages")).await;
    assert_eq!(status, StatusCode::OK, "{messages}");
    messages.as_array().unwrap().clone()
}

async fn mail_becomes_items_and_replies_and_replies_go_out_threaded(db: Harness) {
    let sink = SmtpSink::start().await;
    let maildirs = tempfile::tempdir().unwrap();
    let config = Config {
        mail: MailConfig {
            smtp: Some(sink.smtp()),
            maildir_root: Some(maildirs.path().to_path_buf()),
            domain: "desk.example".into(),
        },
        ..Config::default()
    };
    let server = TestServer::start_with(db, config).await;
    let manager = server.sign_in(Role::Manager, None, None).await;
    let acme = server.client("Acme").await;
    let engagement = server.engagement(acme).await;
    let other = server.engagement(server.client("Other").await).await;

    // The engagement's mail settings are checked: fields of the intake form that hold
    // text, and an address no other engagement has.
    let settings = |mail: Json| json!({"mail": mail});
    let (status, refused) = manager
        .call(
            Method::PUT,
            &format!("/api/v1/engagements/{engagement}/settings"),
            Some(settings(
                json!({"address": ADDRESS, "body_field": "channel"}),
            )),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["errors"][0]["field"], "settings.mail.body_field");
    let mail_settings = json!({
        "address": ADDRESS, "from_name": "ACME Support", "signature": "ACME Support\nhttps://acme.example/help",
        "open_from_unknown": true, "hourly_limit": 5,
    });
    let (status, set) = manager
        .call(
            Method::PUT,
            &format!("/api/v1/engagements/{engagement}/settings"),
            Some(settings(mail_settings.clone())),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    let (status, taken) = manager
        .call(
            Method::PUT,
            &format!("/api/v1/engagements/{other}/settings"),
            Some(settings(json!({"address": "Support@ACME.example"}))),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{taken}");
    assert_eq!(taken["errors"][0]["code"], "taken");
    // An address names its maildir: it must not lead out of it.
    let (status, escaping) = manager
        .call(
            Method::PUT,
            &format!("/api/v1/engagements/{other}/settings"),
            Some(settings(json!({"address": "x/../support@acme.example"}))),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{escaping}");
    assert_eq!(escaping["errors"][0]["field"], "settings.mail.address");

    // Through the maildir: every message is taken in or kept aside, none is left behind.
    let maildir = delego_mail::Maildir::open(maildirs.path().join(ADDRESS)).unwrap();
    let dropped = [
        "phone-plain-utf8.eml",
        "iso-8859-2-qp.eml",
        "windows-1250-subject.eml",
        "koi8-r-base64.eml",
        "shift-jis-base64.eml",
        "related-inline-image.eml",
        "pdf-rfc2231-filename.eml",
        "forwarded-inline.eml",
        "forwarded-attached-rfc822.eml",
        "outlook-html-only.eml",
        "newsletter-bulk.eml",
        "autoresponder-loop.eml",
        "null-return-path.eml",
        "malformed-no-from.eml",
        "malformed-binary.eml",
        "malformed-empty.eml",
    ];
    for name in dropped {
        maildir.deliver(&corpus(name)).unwrap();
    }
    delego_server::mail::read_maildirs(&server.state)
        .await
        .unwrap();
    assert!(maildir.new_messages().unwrap().is_empty());
    let seen = std::fs::read_dir(maildirs.path().join(ADDRESS).join("cur")).unwrap();
    assert_eq!(seen.count(), dropped.len());

    let items = items_of(&manager, &engagement).await;
    assert_eq!(items.len(), 10, "the ten messages people wrote: {items:#?}");
    let phone = with_subject(&items, "Nefunguje mi e-mail v mobile 😞");
    assert_eq!(phone["data"]["requester_email"], "jana.kovacova@example.sk");
    assert_eq!(phone["data"]["channel"], "email");
    assert!(
        phone["data"]["description"]
            .as_str()
            .unwrap()
            .contains("reštart 🙏")
    );
    let printer = with_subject(&items, "Nefunguje mi tlačiareň");
    assert!(
        printer["data"]["description"]
            .as_str()
            .unwrap()
            .ends_with("S pozdravom\nDušan Kráľ")
    );
    with_subject(&items, "Žiadosť o prístup do systému č. 2");
    with_subject(&items, "Не работает VPN");
    with_subject(&items, "プリンターが動きません");
    // Attachments are stored like any other, the inline images too; a part of a type
    // Delego does not keep is named in a note instead of vanishing.
    let files = |item: &Json| {
        let item = item["id"].as_str().unwrap().to_owned();
        let manager = &manager;
        async move {
            let (_, files) = manager
                .get(&format!("/api/v1/items/{item}/attachments"))
                .await;
            files
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    (
                        f["filename"].as_str().unwrap().to_owned(),
                        f["content_type"].as_str().unwrap().to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let screenshot = items
        .iter()
        .find(|item| {
            item["data"]["description"]
                .as_str()
                .unwrap_or_default()
                .contains("screenshot")
        })
        .or_else(|| {
            items.iter().find(|item| {
                item["data"]["attachments"]
                    .as_array()
                    .is_some_and(|a| a.len() == 2)
            })
        })
        .expect("the message with inline images");
    let names = files(screenshot).await;
    assert!(
        names.contains(&("screenshot.png".to_owned(), "image/png".to_owned())),
        "{names:?}"
    );
    let invoice = items
        .iter()
        .find(|item| {
            item["data"]["description"]
                .as_str()
                .unwrap_or_default()
                .contains("storno")
        })
        .expect("the message with the invoice");
    let names = files(invoice).await;
    assert!(
        names.contains(&(
            "Faktúra č. 2026-0114 – duplikát.pdf".to_owned(),
            "application/pdf".to_owned()
        )),
        "{names:?}"
    );
    assert_eq!(
        invoice["data"]["attachments"].as_array().map(Vec::len),
        Some(1),
        "{invoice}"
    );
    let notes = thread(&manager, invoice["id"].as_str().unwrap()).await;
    assert!(
        notes.iter().any(|m| m["visibility"] == "internal"
            && m["body"].as_str().unwrap().contains("attachment-2.bin")),
        "{notes:#?}"
    );
    // A forward keeps the forwarded text; one forwarded as an attachment keeps it as .eml.
    let forwarded = items
        .iter()
        .find(|item| {
            item["data"]["description"]
                .as_str()
                .unwrap_or_default()
                .contains("Forwarded message")
        })
        .expect("the inline forward");
    assert!(forwarded["data"]["description"].as_str().unwrap().len() > 100);

    // A new item's mail quoted history: kept beside it, folded.
    let outlook = items
        .iter()
        .find(|item| item["data"]["requester_email"] == "m.schmidt@contoso.example")
        .expect("the Outlook message");
    let notes = thread(&manager, outlook["id"].as_str().unwrap()).await;
    assert!(
        notes.iter().any(|m| m["quoted"]
            .as_str()
            .is_some_and(|q| q.starts_with("Von: ACME Help Desk"))),
        "{notes:#?}"
    );
    assert!(
        !outlook["data"]["description"]
            .as_str()
            .unwrap()
            .contains("Gesendet:")
    );

    // Kept aside, each with its reason: the unreadable, and automatic mail about no item.
    let (status, aside) = manager.get("/api/v1/mail/kept-aside").await;
    assert_eq!(status, StatusCode::OK, "{aside}");
    let reasons: Vec<&str> = aside
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 6, "{reasons:#?}");
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.starts_with("unreadable"))
            .count(),
        3,
        "{reasons:#?}"
    );
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.starts_with("an automatic message"))
            .count(),
        3,
        "{reasons:#?}"
    );
    let binary = aside
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["size"].as_u64() == Some(corpus("malformed-binary.eml").len() as u64))
        .unwrap();
    let response = manager
        .request(
            Method::GET,
            &format!("/api/v1/mail/kept-aside/{}", binary["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        corpus("malformed-binary.eml").as_slice()
    );
    // The admin area lists them too, for managers and admins only.
    let html = manager.page_ok("/admin/mail").await;
    assert_eq!(html.matches("<td class=\"reason\">").count(), 6, "{html}");
    assert!(html.contains("unreadable: "), "{html}");
    let agent = server
        .sign_in(Role::Agent, None, Some(server.worker(&[acme]).await))
        .await;
    assert_eq!(agent.page("/admin/mail").await.0, StatusCode::NOT_FOUND);

    // Each new item is acknowledged by mail, threaded on the requester's message and
    // marked automatic; nothing at all goes to the senders of automatic mail.
    deliver(&server).await;
    let acknowledgements = sink.wait_for(10, Duration::from_secs(10)).await;
    assert_eq!(acknowledgements.len(), 10);
    let to_jana = sent_n_to(&sink, "jana.kovacova@example.sk", 1).await;
    assert_eq!(to_jana.len(), 1);
    let acknowledgement = &to_jana[0];
    let reference = phone["reference"].as_str().unwrap();
    assert_eq!(
        header(acknowledgement, "Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    let asked = delego_mail::parse(&corpus("phone-plain-utf8.eml"))
        .unwrap()
        .message_id;
    assert_eq!(
        header(acknowledgement, "In-Reply-To").map(|v| id_of(&v)),
        asked
    );
    let read_ack = read(acknowledgement);
    assert_eq!(read_ack.from.address, ADDRESS);
    assert_eq!(read_ack.from.name.as_deref(), Some("ACME Support"));
    assert!(
        read_ack.subject.contains(&format!("[#{reference}]")),
        "{}",
        read_ack.subject
    );
    assert!(read_ack.text.contains(reference));
    assert!(
        read_ack
            .text
            .contains("\n-- \nACME Support\nhttps://acme.example/help"),
        "{}",
        read_ack.text
    );
    for sender in ["newsletter@", "otrs", "monitoring"] {
        assert!(
            sink.messages()
                .iter()
                .all(|m| m.to.iter().all(|t| !t.contains(sender))),
            "mail went to {sender}"
        );
    }

    // An agent's public reply goes out as a person's mail, threaded on the whole
    // conversation, with the file the agent attached.
    let phone_id = phone["id"].as_str().unwrap().to_owned();
    let steps = "1. Nastavenia\n2. Mail\n3. Účty → Odstrániť účet\n";
    let response = manager
        .request(
            Method::POST,
            &format!("/api/v1/items/{phone_id}/attachments?filename=postup.txt"),
        )
        .header("content-type", "text/plain")
        .body(steps)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let file: Json = response.json().await.unwrap();
    let (status, replied) = manager
        .post(
            &format!("/api/v1/items/{phone_id}/messages"),
            json!({"visibility": "public", "body": "Skúste prosím vymazať a znovu pridať účet.",
                   "attachments": [file["id"]]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{replied}");
    deliver(&server).await;
    let to_jana = sent_n_to(&sink, "jana.kovacova@example.sk", 2).await;
    assert_eq!(to_jana.len(), 2);
    let reply = &to_jana[1];
    let read_reply = read(reply);
    assert_eq!(header(reply, "Auto-Submitted"), None);
    assert!(read_reply.text.starts_with("Skúste prosím vymazať"));
    let sent_files: Vec<(&str, &[u8])> = read_reply
        .attachments
        .iter()
        .map(|a| (a.file_name.as_str(), a.bytes.as_slice()))
        .collect();
    assert_eq!(sent_files, [("postup.txt", steps.as_bytes())]);
    assert_eq!(
        read_reply.references.len(),
        2,
        "her message and our acknowledgement"
    );
    assert_eq!(
        read_reply.subject,
        format!("Re: Nefunguje mi e-mail v mobile 😞 [#{reference}]")
    );
    let reply_id = read_reply.message_id.clone().unwrap();

    // Her answer threads by In-Reply-To; the quoted history is kept, folded.
    let answer = corpus_with(
        "reply-quoted-gt.eml",
        &[
            ("01936d01cc337c3d9e1f2a3b4c5d6e82@acme.example", &reply_id),
            ("jan.novak@example.sk", "jana.kovacova@example.sk"),
        ],
    );
    let taken = post_mail(&manager, answer.clone()).await;
    assert_eq!(
        (taken["outcome"].as_str(), taken["item_id"].as_str()),
        (Some("replied"), Some(phone_id.as_str()))
    );
    let again = post_mail(&manager, answer).await;
    assert_eq!(again["outcome"], "duplicate");
    let messages = thread(&manager, &phone_id).await;
    let hers = messages.last().unwrap();
    assert_eq!(hers["visibility"], "public");
    assert_eq!(hers["author"]["type"], "requester", "{hers}");
    assert!(!hers["body"].as_str().unwrap().contains("> "), "{hers}");
    assert!(
        hers["quoted"].as_str().unwrap().contains("wrote:"),
        "{hers}"
    );

    // Threading headers lost (an Outlook reply): the subject's reference finds the item,
    // but only for its own requester; anyone else opens a new item.
    let by_token = |from: &str, id: &str| {
        corpus_with(
            "outlook-original-message.eml",
            &[
                ("[#7A8B9C0D]", &format!("[#{reference}]")),
                ("peter.kovac@example.sk", from),
                ("VI1PR0301MB2345F6A7B8C9D0E1F2A3B4C5D6E7@", id),
            ],
        )
    };
    let taken = post_mail(&manager, by_token("Jana.Kovacova@example.sk", "first@")).await;
    assert_eq!(
        (taken["outcome"].as_str(), taken["item_id"].as_str()),
        (Some("replied"), Some(phone_id.as_str()))
    );
    let stranger = post_mail(&manager, by_token("mallory@example.net", "second@")).await;
    assert_eq!(stranger["outcome"], "opened", "{stranger}");
    assert_ne!(stranger["item_id"].as_str(), Some(phone_id.as_str()));

    // Her out-of-office reply to our reply is noted on the item and never answered.
    deliver(&server).await;
    let before = sink.messages().len();
    let away = corpus_with(
        "out-of-office.eml",
        &[("01936e11dd447c3d9e1f2a3b4c5d6e83@acme.example", &reply_id)],
    );
    let taken = post_mail(&manager, away).await;
    assert_eq!(
        (taken["outcome"].as_str(), taken["item_id"].as_str()),
        (Some("automatic"), Some(phone_id.as_str()))
    );
    let messages = thread(&manager, &phone_id).await;
    assert!(
        messages.iter().any(|m| m["visibility"] == "internal"
            && m["body"]
                .as_str()
                .unwrap()
                .starts_with("An automatic reply")),
        "{messages:#?}"
    );

    // A bounce of our reply is recorded on the item and on the mail.
    let bounce = corpus_with(
        "dsn-bounce.eml",
        &[("01936b30aa117c3d9e1f2a3b4c5d6e80@acme.example", &reply_id)],
    );
    let taken = post_mail(&manager, bounce).await;
    assert_eq!(
        (taken["outcome"].as_str(), taken["item_id"].as_str()),
        (Some("bounce"), Some(phone_id.as_str()))
    );
    let (status, sent) = manager.get(&format!("/api/v1/items/{phone_id}/mail")).await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    let bounced = sent
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["message_id"] == reply_id.as_str())
        .unwrap();
    assert_eq!(bounced["status"], "bounced", "{bounced}");
    assert!(
        bounced["last_error"].as_str().unwrap().contains("5.1.1"),
        "{bounced}"
    );
    // The client sees that it bounced, not the relay's words.
    let client_user = server.sign_in(Role::ClientUser, Some(acme), None).await;
    let (status, seen) = client_user
        .get(&format!("/api/v1/items/{phone_id}/mail"))
        .await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    let theirs = seen
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["message_id"] == reply_id.as_str())
        .unwrap();
    assert_eq!(
        (theirs["status"].as_str(), &theirs["last_error"]),
        (Some("bounced"), &Json::Null)
    );
    deliver(&server).await;
    assert_eq!(
        sink.messages().len(),
        before,
        "no mail answers automatic mail or a bounce"
    );

    // A sender who asks for no automatic replies gets no acknowledgement by mail (it is
    // on the item's thread all the same), and still gets the agent's answer.
    let quiet = format!(
        "From: Quiet <quiet@example.org>\r\nTo: {ADDRESS}\r\nSubject: Please do not auto-reply\r\n\
         Message-ID: <quiet-1@example.org>\r\nX-Auto-Response-Suppress: OOF, AutoReply\r\n\r\nJust fix it.\r\n"
    );
    let taken = post_mail(&manager, quiet.into_bytes()).await;
    assert_eq!(taken["outcome"], "opened", "{taken}");
    let quiet_item = taken["item_id"].as_str().unwrap().to_owned();
    deliver(&server).await;
    let told = thread(&manager, &quiet_item).await;
    assert!(
        told.iter().any(|m| m["visibility"] == "public"),
        "{told:#?}"
    );
    manager
        .post(
            &format!("/api/v1/items/{quiet_item}/messages"),
            json!({"visibility": "public", "body": "Fixed."}),
        )
        .await;
    deliver(&server).await;
    let to_quiet = sent_n_to(&sink, "quiet@example.org", 1).await;
    assert_eq!(to_quiet.len(), 1, "the answer only");
    assert_eq!(header(&to_quiet[0], "Auto-Submitted"), None);

    // A misconfigured autoresponder that looks like a person: five of its messages open
    // items (each acknowledged), the sixth is kept aside, and so is every one after it
    // while it keeps answering (what was kept aside still counts).
    for n in 1..=8 {
        if n == 8 {
            server.db.advance(SignedDuration::from_mins(45));
        }
        let raw = format!(
            "From: Robot <robot@vendor.example>\r\nTo: {ADDRESS}\r\nSubject: Re: We have received your request\r\n\
             Message-ID: <loop-{n}@vendor.example>\r\nDate: Mon, 02 Mar 2026 08:0{n}:00 +0000\r\n\r\nThank you for your message!\r\n"
        );
        let taken = post_mail(&manager, raw.into_bytes()).await;
        let expected = if n <= 5 { "opened" } else { "kept_aside" };
        assert_eq!(taken["outcome"], expected, "message {n}: {taken}");
    }

    // The relay refuses for now: the mail is tried again later, then goes out; refused
    // for good, it fails and the item says so.
    deliver(&server).await;
    sink.fail_next(1, Failure::Transient);
    manager
        .post(
            &format!("/api/v1/items/{phone_id}/messages"),
            json!({"visibility": "public", "body": "Ešte jedna vec."}),
        )
        .await;
    let count = sent_to(&sink, "jana.kovacova@example.sk").len();
    deliver(&server).await;
    assert_eq!(sent_to(&sink, "jana.kovacova@example.sk").len(), count);
    let (_, queued) = manager.get(&format!("/api/v1/items/{phone_id}/mail")).await;
    let last = queued.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["status"].as_str(), last["attempts"].as_u64()),
        (Some("queued"), Some(1)),
        "{last}"
    );
    server.db.advance(SignedDuration::from_mins(1));
    deliver(&server).await;
    let sent = sent_n_to(&sink, "jana.kovacova@example.sk", count + 1).await;
    assert_eq!(sent.len(), count + 1);

    sink.fail_next(1, Failure::Permanent);
    manager
        .post(
            &format!("/api/v1/items/{phone_id}/messages"),
            json!({"visibility": "public", "body": "A posledná."}),
        )
        .await;
    deliver(&server).await;
    assert_eq!(settled_status(&manager, &phone_id).await, "failed");
    let messages = thread(&manager, &phone_id).await;
    assert!(
        messages.iter().any(|m| m["visibility"] == "internal"
            && m["body"].as_str().unwrap().contains("could not be sent")),
        "{messages:#?}"
    );
}

fn mail_config(smtp: Option<delego_mail::Smtp>, maildirs: &Path) -> Config {
    Config {
        mail: MailConfig {
            smtp,
            maildir_root: Some(maildirs.to_path_buf()),
            domain: "desk.example".into(),
        },
        ..Config::default()
    }
}

async fn queued_mail_survives_a_restart_and_goes_out_from_the_next_node(db: Harness) {
    // The first node's relay is down: a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = delego_mail::Smtp::plain("127.0.0.1", closed.local_addr().unwrap().port());
    drop(closed);
    let maildirs = tempfile::tempdir().unwrap();
    let first = TestServer::start_with(db, mail_config(Some(down), maildirs.path())).await;
    let manager = first.sign_in(Role::Manager, None, None).await;
    let engagement = first.engagement(first.client("Acme").await).await;
    let (status, set) = manager
        .call(
            Method::PUT,
            &format!("/api/v1/engagements/{engagement}/settings"),
            Some(json!({"mail": {"address": ADDRESS, "open_from_unknown": true}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    let taken = post_mail(&manager, corpus("phone-plain-utf8.eml")).await;
    let item = taken["item_id"].as_str().unwrap().to_owned();
    deliver(&first).await;
    let (_, mail) = manager.get(&format!("/api/v1/items/{item}/mail")).await;
    let acknowledgement = &mail[0];
    assert_eq!(acknowledgement["status"], "queued", "{mail}");
    assert!(acknowledgement["attempts"].as_u64().unwrap() >= 1, "{mail}");
    assert!(acknowledgement["last_error"].is_string(), "{mail}");

    // The node is gone; the next one, with a working relay, sends the mail when it is due.
    let sink = SmtpSink::start().await;
    let next = first
        .another_node(
            first.store().clone(),
            mail_config(Some(sink.smtp()), maildirs.path()),
        )
        .await;
    drop(first);
    // The stopped node may still be finishing a last attempt: the mail's next retry is
    // then later, so time moves on until the new node has sent it.
    for _ in 0..5 {
        next.db.advance(SignedDuration::from_mins(10));
        delego_server::mail::send_due(&next.state).await.unwrap();
        if !sink.messages().is_empty() {
            break;
        }
    }
    let sent = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(
        read(&sent[0]).message_id.as_deref(),
        acknowledgement["message_id"].as_str()
    );
    let manager = next.sign_in(Role::Manager, None, None).await;
    let (_, mail) = manager.get(&format!("/api/v1/items/{item}/mail")).await;
    assert_eq!(mail[0]["status"], "sent", "{mail}");
}
