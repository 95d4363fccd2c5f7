//! ssh's patterns (`match.c`): `*` and `?` wildcards, and comma lists
//! with `!` negation.

/// Matches `text` against an ssh pattern: `*` is any run of characters,
/// `?` exactly one; everything else matches itself, case-sensitively.
pub(crate) fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and how much of the text it has swallowed.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// OpenSSH's `match_pattern_list`: a comma-separated list of patterns,
/// each possibly negated with `!`; a matching negated pattern vetoes, and
/// otherwise one positive match is needed. With `lower`, the patterns are
/// lowercased (the text must already be).
pub(crate) fn match_pattern_list(text: &str, list: &str, lower: bool) -> bool {
    let mut matched = false;
    for item in list.split(',') {
        let (negated, pattern) = match item.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, item),
        };
        let pattern = if lower {
            pattern.to_ascii_lowercase()
        } else {
            pattern.to_string()
        };
        if wildcard_match(&pattern, text) {
            if negated {
                return false;
            }
            matched = true;
        }
    }
    matched
}
