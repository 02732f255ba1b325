//! Sending through a real SMTP conversation with the local sink.

use std::time::Duration;

use delego_mail::{Failure, Kind, Mailbox, Outgoing, SendError, Smtp, SmtpSink, parse, send};

const WAIT: Duration = Duration::from_secs(10);

fn acknowledgement() -> Outgoing {
    Outgoing {
        from: Mailbox::new("support@acme.example", Some("ACME Help Desk".into())),
        to: Mailbox::new("jana.kovacova@example.sk", Some("Jana Kovačová".into())),
        subject: delego_mail::reply_subject("Nefunguje mi e-mail v mobile", "0A1B2C3D"),
        text: "Dobrý deň,\n\nprijali sme vašu požiadavku.\n.\n..a bodka na začiatku riadku.".into(),
        signature: Some("ACME Help Desk".into()),
        message_id: delego_mail::new_message_id("acme.example"),
        in_reply_to: Some("7C3A1F2E-5B4D-4E6F-8A9B-0C1D2E3F4A5B@example.sk".into()),
        references: vec![],
        automatic: true,
        attachments: Vec::new(),
    }
}

#[tokio::test]
async fn a_sent_message_arrives_whole_and_threads() {
    let sink = SmtpSink::start().await;
    let mail = acknowledgement();
    send(&sink.smtp(), &mail).await.unwrap();

    let captured = sink.wait_for(1, WAIT).await;
    assert_eq!(captured.len(), 1);
    assert_eq!(captured[0].from, "support@acme.example");
    assert_eq!(captured[0].to, ["jana.kovacova@example.sk"]);

    let received = parse(&captured[0].raw).unwrap();
    assert_eq!(
        received.message_id.as_deref(),
        Some(mail.message_id.as_str())
    );
    assert_eq!(received.in_reply_to, [mail.in_reply_to.clone().unwrap()]);
    assert_eq!(received.references, received.in_reply_to);
    assert_eq!(
        received.subject,
        "Re: Nefunguje mi e-mail v mobile [#0A1B2C3D]"
    );
    assert_eq!(received.reference().as_deref(), Some("0A1B2C3D"));
    assert_eq!(received.from.name.as_deref(), Some("ACME Help Desk"));
    // Dot-stuffed lines come back as written; the signature follows its separator.
    assert!(
        received
            .text
            .contains("prijali sme vašu požiadavku.\n.\n..a bodka")
    );
    assert!(
        received.text.ends_with("\n-- \nACME Help Desk"),
        "{:?}",
        received.text
    );
    // Our own acknowledgement, looped back, would never be answered.
    assert!(matches!(received.kind, Kind::Automatic { .. }));
}

#[tokio::test]
async fn a_451_is_transient_and_the_retry_goes_through() {
    let sink = SmtpSink::start().await;
    sink.fail_next(1, Failure::Transient);

    let error = send(&sink.smtp(), &acknowledgement()).await.unwrap_err();
    assert!(matches!(error, SendError::Transient(_)), "{error:?}");
    assert!(!error.is_permanent());
    assert!(error.to_string().contains("451"), "{error}");

    send(&sink.smtp(), &acknowledgement()).await.unwrap();
    assert_eq!(sink.wait_for(1, WAIT).await.len(), 1);
}

#[tokio::test]
async fn a_550_is_permanent() {
    let sink = SmtpSink::start().await;
    sink.fail_next(1, Failure::Permanent);

    let error = send(&sink.smtp(), &acknowledgement()).await.unwrap_err();
    assert!(matches!(error, SendError::Permanent(_)), "{error:?}");
    assert!(error.is_permanent());
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    // A port that was free a moment ago: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let error = send(&Smtp::plain("127.0.0.1", port), &acknowledgement())
        .await
        .unwrap_err();
    assert!(matches!(error, SendError::Transient(_)), "{error:?}");
}

#[tokio::test]
async fn a_message_that_cannot_be_composed_is_a_permanent_failure() {
    let sink = SmtpSink::start().await;
    let mail = Outgoing {
        to: Mailbox::new("jana at example", None),
        ..acknowledgement()
    };
    let error = send(&sink.smtp(), &mail).await.unwrap_err();
    assert!(matches!(error, SendError::Compose(_)), "{error:?}");
    assert!(error.is_permanent());
}

#[tokio::test]
async fn the_sink_collects_several_messages_in_order() {
    let sink = SmtpSink::start().await;
    for _ in 0..3 {
        send(&sink.smtp(), &acknowledgement()).await.unwrap();
    }
    let captured = sink.wait_for(3, WAIT).await;
    assert_eq!(captured.len(), 3);
    let ids: Vec<_> = captured
        .iter()
        .map(|c| parse(&c.raw).unwrap().message_id.unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] != w[1]));
    assert_ne!(sink.port(), 0);
}
