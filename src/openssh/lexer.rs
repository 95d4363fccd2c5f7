//! One line of an ssh_config file into its keyword and arguments, quoted
//! and split as ssh's `argv_split` does.

/// Splits a config line into its lowercased keyword and its arguments, the
/// way ssh does: `Keyword value`, `Keyword=value` or `Keyword = value`;
/// double or single quotes group words, and backslashes escape as in
/// ssh's `argv_split` (see below); `#` at the start of a word begins a
/// comment. Returns `None` for blank and comment lines, and the text after
/// the keyword (for `ProxyJump` and `ProxyCommand`, which take it whole).
pub(crate) fn split_line(line: &str) -> Result<Option<(String, Vec<String>, String)>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let keyword = line[..end].to_ascii_lowercase();
    let mut rest = line[end..].trim_start();
    if let Some(after) = rest.strip_prefix('=') {
        rest = after.trim_start();
    }
    let raw = rest.to_string();

    // ssh's `argv_split`: words are separated by spaces and tabs; a
    // backslash escapes a quote or a backslash anywhere, and a space only
    // outside quotes (inside them `\ ` stays as written, as does a
    // backslash before anything else).
    let blank = |c: &char| *c == ' ' || *c == '\t';
    let mut args = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.next_if(blank).is_some() {}
        match chars.peek() {
            None | Some('#') => break,
            Some(_) => {}
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (c, quote) {
                ('\\', _)
                    if matches!(chars.peek(), Some('"' | '\'' | '\\'))
                        || (quote.is_none() && chars.peek() == Some(&' ')) =>
                {
                    word.extend(chars.next());
                }
                (c, None) if blank(&c) => break,
                ('"' | '\'', None) => quote = Some(c),
                (c, Some(q)) if c == q => quote = None,
                (c, _) => word.push(c),
            }
        }
        if let Some(q) = quote {
            return Err(format!("unterminated quote `{q}`"));
        }
        args.push(word);
    }
    Ok(Some((keyword, args, raw)))
}
