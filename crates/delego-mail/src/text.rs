//! Plain-text bodies: line endings, `format=flowed`, and splitting the quoted history off
//! the new text.
//!
//! The split is conservative. Agents must see everything a requester wrote, so only a
//! trailing block of history is folded: a reply written between quoted lines keeps its
//! quotes, and nothing below a "Forwarded message" line is ever folded, since what someone
//! forwards is what they want us to read.

/// CRLF and lone CR to LF.
pub(crate) fn normalize_newlines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// At most one blank line in a row: clients pad with empty lines where images or layout
/// were, which says nothing in text.
pub(crate) fn collapse_blank_lines(text: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for line in text.lines() {
        let blank = line.trim().is_empty();
        if blank && out.last().is_some_and(|last| last.is_empty()) {
            continue;
        }
        out.push(if blank { "" } else { line });
    }
    out.join("\n")
}

/// Undoes `format=flowed` (RFC 3676): joins the lines a client wrapped with a trailing
/// space back into paragraphs, and removes space-stuffing.
pub(crate) fn unflow(text: &str, delsp: bool) -> String {
    let mut lines: Vec<(usize, String)> = Vec::new();
    let mut open = false; // the last line ended with a soft break
    for line in text.split('\n') {
        let depth = line.chars().take_while(|&c| c == '>').count();
        let content = &line[depth..];
        let content = content.strip_prefix(' ').unwrap_or(content);
        let soft = content.ends_with(' ') && content != "-- ";
        let content = if soft && delsp {
            &content[..content.len() - 1]
        } else {
            content
        };
        match lines.last_mut() {
            Some((last_depth, last)) if open && *last_depth == depth => last.push_str(content),
            _ => lines.push((depth, content.to_string())),
        }
        open = soft;
    }
    lines
        .into_iter()
        .map(|(depth, line)| match (depth, line.is_empty()) {
            (0, _) => line,
            (depth, true) => ">".repeat(depth),
            (depth, false) => format!("{} {line}", ">".repeat(depth)),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether a subject says the message is a forward (`Fwd:`, `FW:`, `WG:`, …) rather than a
/// reply. A forward's quoted-looking text is the content the sender means.
pub(crate) fn is_forward_subject(subject: &str) -> bool {
    let Some((prefix, _)) = subject.trim_start().split_once(':') else {
        return false;
    };
    let prefix = prefix.trim().to_lowercase();
    // Outlook writes "FW", Gmail "Fwd", German clients "WG", French "TR", Spanish "RV",
    // Slovak and Czech Outlook "PD" and "PŘ".
    ["fw", "fwd", "wg", "tr", "rv", "pd", "př", "doorst"].contains(&prefix.as_str())
}

/// Splits text into what the sender wrote now and the quoted history at its end.
pub(crate) fn split_quoted(text: &str) -> (String, Option<String>) {
    let lines: Vec<&str> = text.lines().collect();
    let forward = lines
        .iter()
        .position(|line| !is_quoted(line) && is_forward_marker(line))
        .unwrap_or(lines.len());
    let cut = marker_cut(&lines[..forward]).or_else(|| trailing_quote_cut(&lines, forward));
    let Some(mut cut) = cut else {
        return (text.trim_end().to_string(), None);
    };
    // The separator lines and blank lines just above belong to the history.
    while cut > 0 && (lines[cut - 1].trim().is_empty() || is_separator(lines[cut - 1])) {
        cut -= 1;
    }
    let new = lines[..cut].join("\n").trim_end().to_string();
    let quoted = lines[cut..].join("\n").trim().to_string();
    (new, (!quoted.is_empty()).then_some(quoted))
}

/// The first line that starts the history in the top-posting style: everything below an
/// "-----Original Message-----" line, an Outlook header block, or an attribution line
/// followed by quoted (or entirely unquoted) text.
fn marker_cut(lines: &[&str]) -> Option<usize> {
    for (i, line) in lines.iter().enumerate() {
        if is_quoted(line) {
            continue;
        }
        if is_original_message(line) || is_returned_copy(line) || is_header_block(&lines[i..]) {
            return Some(i);
        }
        if let Some(start) = attribution_start(lines, i) {
            let rest: Vec<&&str> = lines[i + 1..]
                .iter()
                .filter(|l| !l.trim().is_empty())
                .collect();
            let quoted = rest.iter().filter(|l| is_quoted(l)).count();
            // All quoted: the usual reply. None quoted: a client that does not mark quotes.
            // Some: answers written between quotes, which must stay visible.
            if quoted == rest.len() || quoted == 0 {
                return Some(start);
            }
        }
    }
    None
}

/// The start of the trailing block of quoted (and blank) lines, with the attribution line
/// just above it; nothing when the block lies in forwarded content.
fn trailing_quote_cut(lines: &[&str], forward: usize) -> Option<usize> {
    let mut start = lines.len();
    while start > 0 && (lines[start - 1].trim().is_empty() || is_quoted(lines[start - 1])) {
        start -= 1;
    }
    if forward < lines.len() {
        // The block lies in the forwarded part (the marker line is never quoted).
        return None;
    }
    if !lines[start..].iter().any(|l| is_quoted(l)) {
        return None;
    }
    let mut above = start;
    while above > 0 && lines[above - 1].trim().is_empty() {
        above -= 1;
    }
    if above > 0
        && let Some(attribution) = attribution_start(lines, above - 1)
    {
        return Some(attribution);
    }
    Some(start)
}

fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

fn is_separator(line: &str) -> bool {
    let line = line.trim();
    line.len() >= 8 && line.chars().all(|c| c == '_' || c == '-')
}

fn is_forward_marker(line: &str) -> bool {
    let lower = line.trim().to_lowercase();
    let dashed = lower.starts_with("---") || lower.starts_with("———");
    let keywords = [
        "forwarded message",
        "weitergeleitete nachricht",
        "preposlaná správa",
        "přeposlaná zpráva",
        "message transféré",
        "mensaje reenviado",
        "messaggio inoltrato",
        "doorgestuurd bericht",
    ];
    (dashed && keywords.iter().any(|k| lower.contains(k)))
        || lower.starts_with("begin forwarded message")
        || lower.starts_with("anfang der weitergeleiteten nachricht")
}

fn is_original_message(line: &str) -> bool {
    let trimmed = line.trim();
    if !(trimmed.starts_with("---") && trimmed.ends_with("---")) {
        return false;
    }
    let inner = trimmed.trim_matches('-').trim().to_lowercase();
    [
        "original message",
        "ursprüngliche nachricht",
        "pôvodná správa",
        "původní zpráva",
        "message d'origine",
        "mensaje original",
        "messaggio originale",
        "oorspronkelijk bericht",
        "wiadomość oryginalna",
        "oryginalna wiadomość",
    ]
    .contains(&inner.as_str())
}

/// The line above the copy of our message that a plain-text bounce returns (qmail's and
/// Exim's wording).
pub(crate) fn is_returned_copy(line: &str) -> bool {
    let lower = line.trim().to_lowercase();
    lower.starts_with("--- below this line is a copy of the message")
        || (lower.starts_with("------ this is a copy of the message"))
}

/// An Outlook-style header block: a `From:` line followed closely by `Sent:`/`Date:` and
/// `Subject:` lines (in the languages our requesters' clients use).
fn is_header_block(lines: &[&str]) -> bool {
    const FROM: &[&str] = &["from", "von", "od", "de", "da", "van", "fra", "от"];
    const SENT: &[&str] = &[
        "sent",
        "date",
        "gesendet",
        "datum",
        "odoslané",
        "odesláno",
        "envoyé",
        "enviado",
        "inviato",
        "verzonden",
        "wysłano",
        "data",
        "отправлено",
    ];
    const SUBJECT: &[&str] = &[
        "subject",
        "betreff",
        "predmet",
        "předmět",
        "objet",
        "asunto",
        "oggetto",
        "onderwerp",
        "temat",
        "assunto",
        "emne",
        "тема",
    ];
    if !lines.first().is_some_and(|l| has_field(l, FROM)) {
        return false;
    }
    let window = &lines[1..lines.len().min(8)];
    window.iter().any(|l| has_field(l, SENT)) && window.iter().any(|l| has_field(l, SUBJECT))
}

/// `Name: value`, allowing the `*Name:*` that bold turns into in plain-text conversions.
fn has_field(line: &str, names: &[&str]) -> bool {
    let line = line.trim().trim_start_matches('*');
    let Some((name, _)) = line.split_once(':') else {
        return false;
    };
    let name = name.trim_end_matches('*').trim().to_lowercase();
    names.contains(&name.as_str())
}

/// When line `end` ends an attribution ("On Mon, 23 Nov 2026 at 10:02, Help Desk <…>
/// wrote:"), the line it starts on: the same one, or the one before when a client wrapped it.
fn attribution_start(lines: &[&str], end: usize) -> Option<usize> {
    const ENDINGS: &[&str] = &[
        "wrote:",
        "schrieb:",
        "napísal:",
        "napísal(a):",
        "napsal:",
        "napsal(a):",
        "a écrit :",
        "a écrit:",
        "escribió:",
        "ha scritto:",
        "schreef:",
        "napisał:",
        "napisał(a):",
        "escreveu:",
        "skrev:",
        "kirjoitti:",
        "írta:",
        "написал:",
        "написал(а):",
    ];
    const OPENINGS: &[&str] = &[
        "on ", "am ", "dňa ", "dne ", "le ", "el ", "il ", "op ", "w dniu ", "em ", "den ", "в ",
    ];
    let line = lines[end].trim();
    let lower = line.to_lowercase();
    let verb_last = ENDINGS.iter().any(|e| lower.ends_with(e));
    // German clients put the verb before the name: "Am …, schrieb Help Desk <…>:".
    let verb_inside = lower.ends_with(':')
        && ENDINGS
            .iter()
            .any(|e| lower.contains(&format!(" {} ", e.trim_end_matches(':').trim_end())));
    if is_quoted(line) || line.len() > 400 || !(verb_last || verb_inside) {
        return None;
    }
    let opens = |l: &str| {
        let l = l.trim().to_lowercase();
        OPENINGS.iter().any(|o| l.starts_with(o))
    };
    if opens(line) {
        return Some(end);
    }
    if end > 0
        && !lines[end - 1].trim().is_empty()
        && !is_quoted(lines[end - 1])
        && opens(lines[end - 1])
    {
        return Some(end - 1);
    }
    // "Help Desk wrote:" alone, as older clients write it, when quoted lines follow.
    let next = lines[end + 1..].iter().find(|l| !l.trim().is_empty());
    (verb_last && line.len() < 120 && next.is_some_and(|l| is_quoted(l))).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> (String, Option<String>) {
        split_quoted(text)
    }

    #[test]
    fn a_reply_above_quoted_lines_folds_the_attribution_and_the_quote() {
        let (new, quoted) = split(
            "Thanks, it works now.\n\nOn Mon, 23 Nov 2026 at 10:02, Help Desk <help@acme.example> wrote:\n> Please restart it.\n>\n> Help Desk\n",
        );
        assert_eq!(new, "Thanks, it works now.");
        let quoted = quoted.unwrap();
        assert!(quoted.starts_with("On Mon, 23 Nov 2026"));
        assert!(quoted.ends_with("> Help Desk"));
    }

    #[test]
    fn a_wrapped_attribution_is_folded_whole() {
        let (new, quoted) = split(
            "Still broken.\n\nOn Mon, 23 Nov 2026 at 10:02, Help Desk <\nhelp@acme.example> wrote:\n\n> Please restart it.\n",
        );
        assert_eq!(new, "Still broken.");
        assert!(quoted.unwrap().starts_with("On Mon, 23 Nov"));
    }

    #[test]
    fn localized_attributions_are_recognised() {
        for attribution in [
            "Am Mo., 23. Nov. 2026 um 10:02 Uhr schrieb Help Desk <help@acme.example>:",
            "Dňa po 23. 11. 2026 o 10:02 Help Desk <help@acme.example> napísal(a):",
            "Le lun. 23 nov. 2026 à 10:02, Help Desk <help@acme.example> a écrit :",
        ] {
            let text = format!("Díky.\n\n{attribution}\n> Dobrý deň\n");
            let (new, quoted) = split(&text);
            assert_eq!(new, "Díky.", "{attribution}");
            assert!(quoted.unwrap().starts_with(attribution));
        }
    }

    #[test]
    fn answers_between_quotes_stay_in_the_new_text() {
        let text = "On Mon, 23 Nov 2026, Help Desk wrote:\n> Which floor?\nThe third.\n> Which model?\nHP 4250.\n\n> Regards\n> Help Desk\n";
        let (new, quoted) = split(text);
        assert!(new.contains("> Which floor?\nThe third."));
        assert!(new.contains("HP 4250."));
        assert_eq!(quoted.as_deref(), Some("> Regards\n> Help Desk"));
    }

    #[test]
    fn outlook_original_message_and_everything_below_is_history() {
        let (new, quoted) = split(
            "Thank you, solved.\n\nJan\n\n-----Original Message-----\nFrom: Help Desk <help@acme.example>\nSent: Monday, November 23, 2026 10:02 AM\nTo: Jan <jan@example.org>\nSubject: RE: VPN\n\nPlease reinstall the client.\n",
        );
        assert_eq!(new, "Thank you, solved.\n\nJan");
        assert!(quoted.unwrap().starts_with("-----Original Message-----"));
    }

    #[test]
    fn an_outlook_header_block_under_a_rule_is_history() {
        let (new, quoted) = split(
            "Works, thanks.\n\n________________________________\nFrom: Help Desk <help@acme.example>\nSent: Monday, 23 November 2026 10:02\nTo: Jan\nSubject: VPN [#0A1B2C3D]\n\nHello,\n",
        );
        assert_eq!(new, "Works, thanks.");
        assert!(
            quoted
                .unwrap()
                .starts_with("________________________________\nFrom: Help Desk")
        );
    }

    #[test]
    fn a_forwarded_message_is_content_not_history() {
        let text = "Please see below.\n\n---------- Forwarded message ---------\nFrom: Eva <eva@example.org>\nDate: Mon, 23 Nov 2026 at 09:00\nSubject: Broken printer\nTo: Jan <jan@example.org>\n\nThe printer is broken.\n\nOn Sun, 22 Nov 2026, Jan wrote:\n> Is it?\n";
        let (new, quoted) = split(text);
        assert_eq!(quoted, None);
        assert!(new.contains("The printer is broken."));
        assert!(new.contains("> Is it?"));
    }

    #[test]
    fn text_without_history_is_left_alone() {
        assert_eq!(
            split("Hello,\n\nthe printer is broken.\n"),
            ("Hello,\n\nthe printer is broken.".into(), None)
        );
        assert_eq!(split(""), (String::new(), None));
        // A "From:" line on its own is not a header block.
        assert_eq!(split("From: the accounting team\nWe need access.").1, None);
    }

    #[test]
    fn forward_subjects_are_recognised() {
        assert!(is_forward_subject("Fwd: Invoice"));
        assert!(is_forward_subject("FW: Invoice"));
        assert!(is_forward_subject("WG: Rechnung"));
        assert!(!is_forward_subject("Re: Fwd: Invoice"));
        assert!(!is_forward_subject("Invoice: overdue"));
    }

    proptest::proptest! {
        #[test]
        fn text_functions_do_not_panic(text in "([>\n \t:_*-]|On |wrote:|From: |Sent: |Subject: |-----Original Message-----|---------- Forwarded message|é|a)*") {
            let (new, quoted) = split_quoted(&text);
            // Nothing is lost: the parts are made of the input's lines.
            proptest::prop_assert!(new.len() + quoted.map_or(0, |q| q.len()) <= text.len());
            let _ = unflow(&text, true);
            let _ = unflow(&text, false);
            let _ = collapse_blank_lines(&text);
        }

        #[test]
        fn arbitrary_text_does_not_panic(text in ".*") {
            let _ = split_quoted(&text);
            let _ = unflow(&text, true);
            let _ = is_forward_subject(&text);
        }
    }

    #[test]
    fn flowed_text_is_joined_back_into_paragraphs() {
        let flowed =
            "This is a long line that the \nclient wrapped.\n> quoted and \n> wrapped\n-- \nJan";
        assert_eq!(
            unflow(flowed, false),
            "This is a long line that the client wrapped.\n> quoted and wrapped\n-- \nJan"
        );
        assert_eq!(unflow("del \nsp", true), "delsp");
        assert_eq!(unflow(" >not a quote", false), ">not a quote");
    }
}
