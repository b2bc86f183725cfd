//! The few HTML pages the payment flow itself needs (PayPal's return and cancel landings, the sandbox's approval
//! page): plain, accessible, no scripts.
use crate::html::escape;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// A page; `body` is trusted markup built by the caller from escaped parts.
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    page_with(status, title, body, "")
}

/// `page`, with one of the service's own scripts (by `src`, with its data attributes): the only script these pages
/// may run.
pub fn page_with(status: StatusCode, title: &str, body: &str, script: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width,initial-scale=1\"><title>{title} · Purser</title><style>body{{font:16px/1.5 \
         system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#1a1a1a}}a.button,button{{display:inline-block;\
         padding:.6rem 1.2rem;border-radius:.4rem;border:0;background:#0b5cad;color:#fff;font:inherit;text-decoration:none;\
         cursor:pointer}}fieldset{{border:1px solid #999;border-radius:.4rem}}.sandbox{{background:#fff3cd;padding:.5rem;\
         border-radius:.4rem}}</style></head><body><main><h1>{title}</h1>{body}</main>{script}</body></html>",
        title = escape(title),
    );
    // No frames, no other origins, no inline scripts: the inline style, forms posting back here and the service's own
    // script are all these pages use.
    let policy = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; script-src 'self'; \
                  connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
    (status, [(axum::http::header::CONTENT_SECURITY_POLICY, policy)], Html(html)).into_response()
}
