//! The emails clients get: the purchase receipt (AC9.1.3, AC9.4.1) and the refund notices (AC9.5.3, AC9.5.4,
//! AC9.5.6, AC9.5.7), each with text and HTML parts.
use crate::domain::ids::{RefundRequestId, TransactionId};
use crate::domain::purchase::{Purchase, Rail};
use crate::domain::refund::Refund;
use crate::html::escape;

pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn method(purchase: &Purchase) -> String {
    match (purchase.rail, &purchase.funding_source, &purchase.payment_method) {
        (Rail::Paypal, Some(source), _) => format!("PayPal ({source})"),
        (Rail::Paypal, None, _) => "PayPal".to_owned(),
        (Rail::Card, _, Some(method)) => format!("card ({})", method.as_str()),
        (Rail::Card, _, None) => "card".to_owned(),
    }
}

/// Plain text as a minimal HTML document, paragraph by paragraph.
fn html_of(text: &str) -> String {
    let paragraphs: String =
        text.split("\n\n").map(|p| format!("<p>{}</p>", escape(p).replace('\n', "<br>"))).collect();
    format!("<!doctype html><html lang=\"en\"><body>{paragraphs}</body></html>")
}

pub fn receipt(purchase: &Purchase, balance: i64) -> Email {
    let amount = format!("{} {}", purchase.price.decimal(), purchase.price.currency.code());
    let method = method(purchase);
    let date = purchase.updated_at.format("%Y-%m-%d %H:%M UTC");
    let subject = format!("Your receipt: {} credits ({amount})", purchase.credits.0);
    let text = format!(
        "Thank you for your purchase.\n\n\
         Package:      {package}\n\
         Credits:      {credits}\n\
         Amount paid:  {amount}\n\
         Paid with:    {method}\n\
         Date:         {date}\n\
         Transaction:  {id}\n\n\
         Your balance is now {balance} credits.\n",
        package = purchase.package.as_str(),
        credits = purchase.credits.0,
        id = TransactionId(purchase.id),
    );
    let row = |label: &str, value: &str| {
        format!("<tr><th scope=\"row\" align=\"left\">{label}</th><td>{}</td></tr>", escape(value))
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><body><h1>Thank you for your purchase</h1><table>{}{}{}{}{}{}</table>\
         <p>Your balance is now <strong>{balance} credits</strong>.</p></body></html>",
        row("Package", purchase.package.as_str()),
        row("Credits", &purchase.credits.0.to_string()),
        row("Amount paid", &amount),
        row("Paid with", &method),
        row("Date", &date.to_string()),
        row("Transaction", &TransactionId(purchase.id).to_string()),
    );
    Email { subject, text, html }
}

/// What happened to a refund request, for the client.
pub fn refund_notice(refund: &Refund, purchase: &Purchase, notice: &str) -> Email {
    let amount = format!("{} {}", refund.amount.decimal(), refund.amount.currency.code());
    let (subject, text) = match notice {
        "approved" => (
            format!("Your refund of {amount} was approved"),
            format!(
                "Your refund request was approved.\n\n{} credits were taken back from your balance, and {amount} is on its \
                 way back to your {}.\n\nRefund request: {}",
                refund.credits.0,
                method(purchase),
                RefundRequestId(refund.id)
            ),
        ),
        "refunded" => (
            format!("Refund receipt: {amount}"),
            format!(
                "Your refund has been sent.\n\nAmount refunded: {amount}\nCredits returned: {}\nRefunded to: {}\n\
                 Provider reference: {}\n\nBanks usually show it within 5-10 business days.\n\nRefund request: {}",
                refund.credits.0,
                method(purchase),
                refund.provider_refund.as_deref().unwrap_or("-"),
                RefundRequestId(refund.id)
            ),
        ),
        "denied" => (
            "Your refund request was not approved".to_owned(),
            format!(
                "Your refund request for transaction {} was not approved.\n\nReason: {}\n\nIf you disagree, you can appeal \
                 once from your billing page, or with POST /api/v1/payments/refunds/{}/appeal.",
                TransactionId(refund.purchase_id),
                refund.denial_reason.as_deref().unwrap_or("-"),
                RefundRequestId(refund.id)
            ),
        ),
        _ => (
            "We need another way to refund you".to_owned(),
            format!(
                "Your refund of {amount} was approved, but your {} can no longer receive it (the card may have expired or \
                 been closed). The {} credits taken back for it are on your balance again.\n\nReply to this email with \
                 another way to pay you back, and we will send the refund there.\n\nRefund request: {}",
                method(purchase),
                refund.credits.0,
                RefundRequestId(refund.id)
            ),
        ),
    };
    Email { subject, html: html_of(&text), text }
}
