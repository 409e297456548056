//! Escaping for HTML: every piece of text the dashboard and the reports
//! render goes through [`esc`]. Display names, chat and rule errors come from
//! the network and from scripts, so nothing is trusted.

use std::fmt;

/// Text made safe for HTML element content and quoted attribute values.
pub struct Escaped<'a>(&'a str);

/// Escapes `text` when formatted: `format!("<td>{}</td>", esc(name))`.
pub fn esc(text: &str) -> Escaped<'_> {
    Escaped(text)
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

/// `text` percent-encoded for one segment of a URL path.
pub fn path_segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_names_is_shown_not_run() {
        let name = r#"<script>alert("x")</script> & 'Bob'"#;
        assert_eq!(
            esc(name).to_string(),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;Bob&#39;"
        );
        assert_eq!(esc("Prof. Ada Lovelace").to_string(), "Prof. Ada Lovelace");
    }

    #[test]
    fn aliases_fit_in_a_path() {
        assert_eq!(path_segment("hall a@x.org/1?"), "hall%20a%40x.org%2F1%3F");
    }
}
