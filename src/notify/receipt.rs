//! The receipt email (AC9.1.3, AC9.4.1): what was bought, for how much, how it was paid, with text and HTML parts.
use crate::api::pages::escape;
use crate::domain::purchase::{Purchase, Rail};

pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub fn receipt(purchase: &Purchase, balance: i64) -> Email {
    let amount = format!("{} {}", purchase.price.decimal(), purchase.price.currency.code());
    let method = match (purchase.rail, &purchase.funding_source, &purchase.payment_method) {
        (Rail::Paypal, Some(source), _) => format!("PayPal ({source})"),
        (Rail::Paypal, None, _) => "PayPal".to_owned(),
        (Rail::Card, _, Some(method)) => format!("card ({})", method.as_str()),
        (Rail::Card, _, None) => "card".to_owned(),
    };
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
        id = purchase.id,
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
        row("Transaction", &purchase.id.to_string()),
    );
    Email { subject, text, html }
}
