//! How long reading one inbound message takes: each shape of the corpus (plain, HTML,
//! other charsets, attachments, bounces), and HTML-only messages of growing size full of
//! `<style>` blocks, whose time must grow with their size and no faster (a node reads a
//! maildir's messages one after another).
//!
//! Run with `cargo bench -p delego-mail --bench parse`; divan prints the median per message.

use std::path::Path;

fn main() {
    divan::main();
}

const SHAPES: [&str; 8] = [
    "phone-plain-utf8.eml",
    "gmail-alternative-reply.eml",
    "outlook-html-only.eml",
    "iso-8859-2-qp.eml",
    "shift-jis-base64.eml",
    "pdf-rfc2231-filename.eml",
    "related-inline-image.eml",
    "dsn-bounce.eml",
];

fn corpus(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[divan::bench(args = SHAPES)]
fn corpus_message(bencher: divan::Bencher, name: &str) {
    let raw = corpus(name);
    bencher.bench(|| delego_mail::parse(divan::black_box(&raw)));
}

/// An HTML-only message of about `kib` KiB: paragraphs, each after its own `<style>` block.
fn large_html(kib: usize) -> Vec<u8> {
    let mut html = String::from("<html><body>");
    while html.len() < kib * 1024 {
        html.push_str(
            "<style>p { color: #333; }</style><p>The printer on the third floor jams again.</p>\n",
        );
    }
    html.push_str("</body></html>");
    format!(
        "From: Ann <ann@example.com>\r\nTo: support@acme.example\r\nSubject: Printer\r\n\
         Message-ID: <large@example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n"
    )
    .into_bytes()
}

#[divan::bench(args = [64, 256, 1024])]
fn html_kib(bencher: divan::Bencher, kib: usize) {
    let raw = large_html(kib);
    bencher.bench(|| delego_mail::parse(divan::black_box(&raw)));
}
