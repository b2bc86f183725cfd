//! Escaping text for HTML, for the pages and the emails alike.

/// `text` made safe to place in HTML text or a quoted attribute.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}
