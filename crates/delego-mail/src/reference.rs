//! Item references in subjects: `[#ABCD1234]`, the 8 upper-case hex digits of
//! `WorkItemId::reference`. Threading headers are the first way a reply finds its item, but
//! some clients and gateways drop them; the subject survives nearly everything.

/// The first item reference in a subject, upper-cased. Case-insensitive, because people
/// retype subjects; exact about the shape, so `[#ABCD12345]` (9 digits) is no reference.
pub fn reference_in_subject(subject: &str) -> Option<String> {
    tokens(subject).next().map(|(_, reference)| reference)
}

/// A subject carrying the item's reference at its end: `Printer broken [#ABCD1234]`.
///
/// Any reference tokens already in the subject are removed first, so the token appears
/// once and is the right one. A run of reply prefixes (`Re: RE: Aw:`) becomes a single
/// `Re: `; a subject that was not a reply gets none (see [`reply_subject`]).
pub fn subject_with_reference(subject: &str, reference: &str) -> String {
    let subject = without_tokens(subject);
    let (was_reply, rest) = strip_reply_prefixes(&subject);
    let token = format!("[#{}]", reference.trim().to_ascii_uppercase());
    let prefix = if was_reply { "Re: " } else { "" };
    if rest.is_empty() {
        format!("{prefix}{token}")
    } else {
        format!("{prefix}{rest} {token}")
    }
}

/// The subject of our reply on an item: exactly one `Re: ` and the reference once, as in
/// `Re: Printer broken [#ABCD1234]`.
pub fn reply_subject(subject: &str, reference: &str) -> String {
    let (_, rest) = strip_reply_prefixes(subject);
    subject_with_reference(&format!("Re: {rest}"), reference)
}

/// Every `[#XXXXXXXX]` token: its byte range and the reference, upper-cased.
fn tokens(subject: &str) -> impl Iterator<Item = (std::ops::Range<usize>, String)> + '_ {
    let bytes = subject.as_bytes();
    (0..bytes.len()).filter_map(move |start| {
        let token = bytes.get(start..start + 11)?;
        let is_token = token[0] == b'['
            && token[1] == b'#'
            && token[2..10].iter().all(u8::is_ascii_hexdigit)
            && token[10] == b']';
        is_token.then(|| {
            let reference = subject[start + 2..start + 10].to_ascii_uppercase();
            (start..start + 11, reference)
        })
    })
}

fn without_tokens(subject: &str) -> String {
    let mut subject = subject.to_string();
    // Again until none is left: removing one can join the text around it into another.
    while tokens(&subject).next().is_some() {
        let mut out = String::with_capacity(subject.len());
        let mut at = 0;
        for (range, _) in tokens(&subject) {
            out.push_str(&subject[at..range.start]);
            at = range.end;
        }
        out.push_str(&subject[at..]);
        subject = out;
    }
    subject.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Removes leading reply prefixes, in the languages mail clients write them: `Re:`, `RE:`,
/// `Aw:` (German), `Odp:` (Polish), `Sv:` (Nordic), `Vs:` (Finnish), `Antw:` (Dutch),
/// `Ref:`/`Rif:`, `Re[2]:`. Forward prefixes stay: they are part of what the subject says.
fn strip_reply_prefixes(subject: &str) -> (bool, &str) {
    let mut rest = subject.trim();
    let mut stripped = false;
    while let Some((prefix, after)) = rest.split_once(':') {
        let word = prefix.trim();
        // "Re[2]" and "Re(2)", as some clients count replies.
        let word = word
            .split_once(['[', '('])
            .filter(|(_, count)| {
                count
                    .trim_end_matches([']', ')'])
                    .chars()
                    .all(|c| c.is_ascii_digit())
            })
            .map_or(word, |(word, _)| word);
        let is_reply = ["re", "aw", "odp", "sv", "vs", "antw", "ref", "rif", "réf"]
            .iter()
            .any(|p| word.eq_ignore_ascii_case(p));
        if !is_reply {
            break;
        }
        rest = after.trim_start();
        stripped = true;
    }
    (stripped, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_case_insensitively_and_upper_cased() {
        assert_eq!(
            reference_in_subject("Re: Printer broken [#0a1b2c3d]").as_deref(),
            Some("0A1B2C3D")
        );
        assert_eq!(
            reference_in_subject("[#DEADBEEF] first [#00000001]").as_deref(),
            Some("DEADBEEF")
        );
    }

    #[test]
    fn lookalikes_are_not_references() {
        for subject in [
            "Order [#ABCD12345]",
            "Order [#ABCD123]",
            "Order #ABCD1234",
            "Order [ABCD1234]",
            "Order [#ABCG1234]",
            "[#]",
            "",
            "Žiadosť [#ľščťžýáí]",
        ] {
            assert_eq!(reference_in_subject(subject), None, "{subject}");
        }
    }

    #[test]
    fn the_token_is_added_once() {
        assert_eq!(
            subject_with_reference("Printer broken", "0a1b2c3d"),
            "Printer broken [#0A1B2C3D]"
        );
        assert_eq!(
            subject_with_reference("Printer broken [#0A1B2C3D]", "0A1B2C3D"),
            "Printer broken [#0A1B2C3D]"
        );
        assert_eq!(
            subject_with_reference("[#0a1b2c3d] Printer broken", "0A1B2C3D"),
            "Printer broken [#0A1B2C3D]"
        );
        // Another item's token would send replies to the wrong item.
        assert_eq!(
            subject_with_reference("Printer [#11111111] broken", "0A1B2C3D"),
            "Printer broken [#0A1B2C3D]"
        );
        assert_eq!(subject_with_reference("", "0A1B2C3D"), "[#0A1B2C3D]");
    }

    #[test]
    fn reply_prefixes_collapse_to_one() {
        assert_eq!(
            subject_with_reference("RE: Aw: re: Printer broken", "0A1B2C3D"),
            "Re: Printer broken [#0A1B2C3D]"
        );
        assert_eq!(
            reply_subject("Printer broken", "0A1B2C3D"),
            "Re: Printer broken [#0A1B2C3D]"
        );
        assert_eq!(
            reply_subject("Re[2]: Re: Printer broken [#0A1B2C3D]", "0A1B2C3D"),
            "Re: Printer broken [#0A1B2C3D]"
        );
        assert_eq!(
            reply_subject("Fwd: Invoice", "0A1B2C3D"),
            "Re: Fwd: Invoice [#0A1B2C3D]"
        );
        assert_eq!(
            reply_subject("Request: access", "0A1B2C3D"),
            "Re: Request: access [#0A1B2C3D]"
        );
        assert_eq!(
            reply_subject("[#11111111] RE: Printer", "0A1B2C3D"),
            "Re: Printer [#0A1B2C3D]"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_subject_carries_exactly_our_reference(subject in "(Re: |RE: |Fwd: |\\[#[0-9A-Fa-f]{8}\\]|\\[#|[0-9a-f]{4}|\\]| |[a-zé:])*") {
            let with = subject_with_reference(&subject, "0a1b2c3d");
            proptest::prop_assert_eq!(reference_in_subject(&with), Some("0A1B2C3D".to_string()));
            proptest::prop_assert_eq!(tokens(&with).count(), 1);
            let reply = reply_subject(&subject, "0A1B2C3D");
            proptest::prop_assert_eq!(reply_subject(&reply, "0A1B2C3D"), reply.clone());
            proptest::prop_assert!(reply.starts_with("Re: "));
        }

        #[test]
        fn arbitrary_subjects_do_not_panic(subject in ".*") {
            let _ = reference_in_subject(&subject);
            let _ = reply_subject(&subject, "0A1B2C3D");
        }
    }
}
