//! HTML bodies as plain text, for messages that come without a plain-text part (Outlook's
//! and many web forms' habit).
//!
//! A small, forgiving converter rather than a browser engine: it only has to keep the words
//! and the line structure. Two things matter beyond that. Block elements become line breaks,
//! because mail clients mark lines with `<div>` and `<p>` rather than newlines. And
//! `<blockquote>` becomes `> ` quoting, so that the history of an HTML reply is folded by the
//! same rules as a plain-text one.

use mail_parser::decoders::html::add_html_token;

pub(crate) fn to_text(html: &str) -> String {
    let mut out = Writer::default();
    let mut rest = html;
    let mut link: Option<(String, usize, usize)> = None;
    while !rest.is_empty() {
        let Some(open) = rest.find('<') else {
            out.text(rest);
            break;
        };
        out.text(&rest[..open]);
        rest = &rest[open..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            rest = rest.find('>').map_or("", |end| &rest[end + 1..]);
            continue;
        }
        let Some(tag) = Tag::parse(rest) else {
            // A lone '<', as in "a < b".
            out.text("<");
            rest = &rest[1..];
            continue;
        };
        rest = &rest[tag.len..];
        let name = tag.name.as_str();
        if !tag.closing && matches!(name, "head" | "style" | "script" | "title" | "template") {
            // Their content is not text. Without a closing tag, only the tag itself goes.
            if let Some(end) = find_closing(rest, name) {
                rest = &rest[end..];
            }
            continue;
        }
        match name {
            "br" => out.line_break(),
            "blockquote" => {
                out.block_break();
                out.depth = if tag.closing {
                    out.depth.saturating_sub(1)
                } else {
                    out.depth + 1
                };
            }
            "li" if !tag.closing => {
                out.block_break();
                out.text("- ");
            }
            "td" | "th" if tag.closing => out.text(" "),
            "a" if !tag.closing => {
                link = tag
                    .href
                    .map(|href| (href, out.lines.len(), out.current.len()));
            }
            "a" => {
                if let Some((href, line, at)) = link.take()
                    && line == out.lines.len()
                {
                    let label = out.current.get(at..).unwrap_or_default().trim();
                    let plain = href.trim_end_matches('/');
                    let shown = label.trim_end_matches('/');
                    if (href.starts_with("http://") || href.starts_with("https://"))
                        && !shown.eq_ignore_ascii_case(plain)
                        && !label.is_empty()
                    {
                        out.text(&format!(" <{href}>"));
                    }
                }
            }
            _ if is_block(name) => out.block_break(),
            _ => {}
        }
    }
    out.finish()
}

fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "div"
            | "tr"
            | "table"
            | "ul"
            | "ol"
            | "dl"
            | "dt"
            | "dd"
            | "li"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "hr"
            | "pre"
            | "section"
            | "article"
            | "header"
            | "footer"
            | "address"
            | "center"
            | "form"
            | "fieldset"
            | "figure"
            | "main"
            | "nav"
            | "aside"
            | "caption"
            | "body"
            | "html"
    )
}

/// Where the matching `</name …>` ends, case-insensitively. Compares bytes in place: a
/// lower-cased copy of the rest for every tag would make a long message quadratic.
fn find_closing(rest: &str, name: &str) -> Option<usize> {
    let bytes = rest.as_bytes();
    let mut from = 0;
    while let Some(found) = rest[from..].find("</") {
        let start = from + found + 2;
        let end = start + name.len();
        let named = bytes
            .get(start..end)
            .is_some_and(|candidate| candidate.eq_ignore_ascii_case(name.as_bytes()));
        // `name` is ASCII, so a match ends on a character boundary.
        if named && matches!(bytes.get(end), Some(c) if *c == b'>' || c.is_ascii_whitespace()) {
            return Some(
                rest[end..]
                    .find('>')
                    .map_or(rest.len(), |close| end + close + 1),
            );
        }
        from = start;
    }
    None
}

struct Tag {
    name: String,
    closing: bool,
    href: Option<String>,
    /// Bytes the tag takes up, '<' to '>'.
    len: usize,
}

impl Tag {
    /// `rest` starts with '<'. None when what follows is not a tag name.
    fn parse(rest: &str) -> Option<Tag> {
        let inner = &rest[1..];
        let (closing, inner) = match inner.strip_prefix('/') {
            Some(after) => (true, after),
            None => (false, inner),
        };
        let name_len = inner
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == ':' || c == '-'))
            .unwrap_or(inner.len());
        if name_len == 0 || !inner.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return None;
        }
        let name = inner[..name_len].to_ascii_lowercase();
        // Attributes, up to the '>' that is not inside quotes.
        let attributes_start = rest.len() - inner.len() + name_len;
        let mut quote: Option<char> = None;
        let mut end = rest.len();
        for (i, c) in rest[attributes_start..].char_indices() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '>') => {
                    end = attributes_start + i + 1;
                    break;
                }
                _ => {}
            }
        }
        let attributes = &rest[attributes_start..end];
        let href = (name == "a")
            .then(|| attribute(attributes, "href"))
            .flatten();
        Some(Tag {
            name,
            closing,
            href,
            len: end,
        })
    }
}

fn attribute(attributes: &str, name: &str) -> Option<String> {
    let lower = attributes.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find(name) {
        let start = from + found;
        from = start + name.len();
        let boundary = start == 0 || lower.as_bytes()[start - 1].is_ascii_whitespace();
        let rest = lower[from..].trim_start();
        if !boundary || !rest.starts_with('=') {
            continue;
        }
        let value_start = attributes.len() - rest.len() + 1;
        let value = attributes[value_start..].trim_start();
        let value = match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or_default(),
            _ => value
                .split(|c: char| c.is_ascii_whitespace() || c == '>')
                .next()
                .unwrap_or_default(),
        };
        return Some(decode_entities(value));
    }
    None
}

fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        // An entity is short and ends with ';'; anything else is a literal '&'.
        match rest[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
            .filter(|&end| end > 0 && end <= 32 && rest[1 + end..].starts_with(';'))
        {
            Some(end) => {
                add_html_token(&mut out, &rest.as_bytes()[..end + 2], false);
                rest = &rest[end + 2..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Collects text into lines, collapsing whitespace the way a browser does.
#[derive(Default)]
struct Writer {
    /// Finished lines with the quote depth they started at.
    lines: Vec<(usize, String)>,
    current: String,
    current_depth: usize,
    depth: usize,
    pending_space: bool,
}

impl Writer {
    fn text(&mut self, raw: &str) {
        for c in decode_entities(raw).chars() {
            if c.is_whitespace() && c != '\u{a0}' {
                self.pending_space = !self.current.is_empty();
                continue;
            }
            if self.current.is_empty() {
                self.current_depth = self.depth;
            } else if self.pending_space {
                self.current.push(' ');
            }
            self.pending_space = false;
            // A non-breaking space is kept (it is how Outlook writes an empty paragraph),
            // but as a plain one.
            self.current.push(if c == '\u{a0}' { ' ' } else { c });
        }
    }

    fn line_break(&mut self) {
        if self.current.is_empty() {
            self.current_depth = self.depth;
        }
        let line = std::mem::take(&mut self.current);
        self.lines.push((self.current_depth, line));
        self.pending_space = false;
    }

    fn block_break(&mut self) {
        if !self.current.is_empty() {
            self.line_break();
        }
    }

    fn finish(mut self) -> String {
        self.block_break();
        let mut text = String::new();
        let mut blank_run = 0;
        for (depth, line) in &self.lines {
            let line = line.trim_end();
            let quoted = match (depth, line.is_empty()) {
                (0, _) => line.to_string(),
                (d, true) => ">".repeat(*d),
                (d, false) => format!("{} {line}", ">".repeat(*d)),
            };
            if quoted.is_empty() {
                blank_run += 1;
                if blank_run > 1 || text.is_empty() {
                    continue;
                }
            } else {
                blank_run = 0;
            }
            text.push_str(&quoted);
            text.push('\n');
        }
        text.trim_end().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_and_breaks_become_lines() {
        assert_eq!(
            to_text("<div>Hello,</div><div><br></div><div>the printer<br>is broken.</div>"),
            "Hello,\n\nthe printer\nis broken."
        );
        assert_eq!(to_text("<p>One</p><p>Two</p>"), "One\nTwo");
    }

    #[test]
    fn head_style_script_and_comments_are_not_text() {
        let html = "<html><head><title>T</title><style>p { color: red; }</style></head><body><!-- c --><script>var a = 1 < 2;</script><p>Body</p></body></html>";
        assert_eq!(to_text(html), "Body");
        assert_eq!(to_text("<STYLE type=\"text/css\">x{}</STYLE>Text"), "Text");
    }

    #[test]
    fn entities_are_decoded_and_whitespace_collapsed() {
        assert_eq!(
            to_text("Price:&nbsp;10&#8364; &amp; more &lt;b&gt; caf&eacute;\n   x &bogus y & z"),
            "Price: 10€ & more <b> café x &bogus y & z"
        );
    }

    #[test]
    fn blockquotes_become_quoted_lines() {
        let html = "<div>Thanks</div><div class=\"gmail_quote\"><div>On Mon, X wrote:<br></div><blockquote class=\"gmail_quote\"><div>Restart it.</div><div><br></div><div>Help Desk</div></blockquote></div>";
        assert_eq!(
            to_text(html),
            "Thanks\nOn Mon, X wrote:\n> Restart it.\n>\n> Help Desk"
        );
    }

    #[test]
    fn links_keep_their_address_when_the_text_differs() {
        assert_eq!(
            to_text("See <a href=\"https://acme.example/kb/42\">this article</a>."),
            "See this article <https://acme.example/kb/42>."
        );
        assert_eq!(
            to_text("<a href='https://acme.example/'>https://acme.example</a>"),
            "https://acme.example"
        );
        assert_eq!(to_text("<a href=\"mailto:a@b.example\">write</a>"), "write");
    }

    proptest::proptest! {
        #[test]
        fn markup_soup_does_not_panic(html in "([<>&;#/\"'= !\n-]|a|br|div|blockquote|style|href|amp|x1F6|é|€)*") {
            let _ = to_text(&html);
        }

        #[test]
        fn arbitrary_text_does_not_panic(html in ".*") {
            let _ = to_text(&html);
        }
    }

    #[test]
    fn broken_markup_does_not_lose_text() {
        assert_eq!(to_text("a < b and <3"), "a < b and <3");
        assert_eq!(to_text("<style>unclosed"), "unclosed");
        assert_eq!(to_text("text <div"), "text");
        assert_eq!(to_text("<a href=\"x>y</a>"), "");
    }
}
