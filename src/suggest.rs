//! Did-you-mean: the known name closest to a mistyped one, for the `note:`
//! of an error about an unknown stage, package, key or section.
//!
//! Pure: it compares strings and never prints. It suggests only a likely
//! typo (the same letters in another case, or a small edit distance, with
//! a swap of two neighbours counted as one edit), never a guess: a wrong
//! suggestion at 3 a.m. is worse than none.

/// The candidate closest to `word`, if it is close enough to be a likely
/// typo of it: at most a third of the longer name's characters differ (at
/// least one may), case aside. `word` itself is never suggested, nor
/// anything for an empty `word`; among equally close candidates the first
/// one wins.
pub(crate) fn closest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let word_lower = word.to_lowercase();
    let word_len = word.chars().count();
    if word_len == 0 {
        return None;
    }
    candidates
        .into_iter()
        .filter(|c| *c != word)
        // a name three times as long cannot be within the threshold:
        // skip the quadratic distance for it (and for hostile input)
        .filter(|c| {
            let len = c.chars().count();
            len <= word_len.saturating_mul(3).max(3) && word_len <= len.saturating_mul(3).max(3)
        })
        .map(|c| (strsim::osa_distance(&word_lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.chars().count().max(word_len) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `did you mean `NAME`?` for a `note:` line, when a candidate is close
/// to `word` (see [`closest`]).
pub(crate) fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<String> {
    closest(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_close_words_are_suggested() {
        let cases: [(&str, &[&str], Option<&str>); 14] = [
            ("prdo", &["test", "hel", "prod"], Some("prod")),
            ("PROD", &["test", "hel", "prod"], Some("prod")),
            ("prod", &["test", "hel", "prod"], None),
            ("fastpth", &["ooni-api", "fastpath"], Some("fastpath")),
            ("fastpaht", &["ooni-api", "fastpath"], Some("fastpath")),
            ("analysys", &["analysis", "detector"], Some("analysis")),
            ("staging", &["test", "hel", "prod"], None),
            ("x", &["test", "hel", "prod"], None),
            ("hl", &["test", "hel", "prod"], Some("hel")),
            ("host", &["hosts", "critical"], Some("hosts")),
            ("critcal", &["hosts", "critical"], Some("critical")),
            ("users", &["hosts", "critical"], None),
            ("", &["a", "b"], None),
            ("tset", &["test", "tes"], Some("test")),
        ];
        for (word, names, want) in cases {
            assert_eq!(
                closest(word, names.iter().copied()),
                want,
                "closest({word:?}, {names:?})"
            );
        }
    }

    #[test]
    fn the_closest_wins_and_ties_go_to_the_first() {
        assert_eq!(closest("prod1", ["prod", "prod1x"]), Some("prod"));
        assert_eq!(closest("ab", ["ax", "xb"]), Some("ax"));
    }

    #[test]
    fn note_text_names_the_suggestion() {
        assert_eq!(
            did_you_mean("prdo", ["test", "prod"]).as_deref(),
            Some("did you mean `prod`?")
        );
        assert_eq!(did_you_mean("zzz", ["test", "prod"]), None);
    }

    #[test]
    fn huge_input_is_cheap_and_matches_nothing() {
        let word = "p".repeat(1_000_000);
        assert_eq!(closest(&word, ["prod", "test"]), None);
    }
}
