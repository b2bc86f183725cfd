//! The invoice as a one-page PDF (AC9.4.2), written with pdf-writer in Helvetica, one of the fonts every viewer
//! carries, so nothing is embedded and the text stays extractable.
use crate::domain::invoice::InvoiceDocument;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

/// Helvetica's standard encoding covers ASCII; anything else is shown as `?` rather than garbled.
fn ascii(text: &str) -> Vec<u8> {
    text.chars().map(|c| if c.is_ascii() && !c.is_ascii_control() { c as u8 } else { b'?' }).collect()
}

pub fn render(invoice: &InvoiceDocument) -> Vec<u8> {
    let (catalog, tree, page, font, bold, contents) =
        (Ref::new(1), Ref::new(2), Ref::new(3), Ref::new(4), Ref::new(5), Ref::new(6));
    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids([page]).count(1);
    let mut p = pdf.page(page);
    p.media_box(Rect::new(0.0, 0.0, 595.0, 842.0)).parent(tree).contents(contents);
    let mut resources = p.resources();
    resources.fonts().pair(Name(b"F1"), font).pair(Name(b"F2"), bold);
    resources.finish();
    p.finish();
    pdf.type1_font(font).base_font(Name(b"Helvetica"));
    pdf.type1_font(bold).base_font(Name(b"Helvetica-Bold"));

    let mut lines: Vec<(bool, f32, String)> = vec![
        (true, 20.0, format!("Invoice {:06}", invoice.number)),
        (false, 11.0, format!("Issued: {}", invoice.issued_at.format("%Y-%m-%d"))),
        (false, 11.0, String::new()),
        (true, 11.0, "Seller".into()),
        (false, 11.0, invoice.seller.name.clone()),
        (false, 11.0, invoice.seller.address.clone()),
    ];
    if let Some(tax_id) = &invoice.seller.tax_id {
        lines.push((false, 11.0, format!("Tax id: {tax_id}")));
    }
    lines.extend([
        (false, 11.0, String::new()),
        (true, 11.0, "Buyer".into()),
        (false, 11.0, format!("Account: {}", invoice.buyer_id)),
        (false, 11.0, invoice.buyer_email.clone().unwrap_or_default()),
    ]);
    if let Some(business) = &invoice.business {
        lines.push((false, 11.0, business.company_name.clone()));
        lines.push((false, 11.0, format!("{}, {}", business.address, business.country)));
        if let Some(tax_id) = &business.tax_id {
            lines.push((false, 11.0, format!("Tax id: {tax_id}")));
        }
    }
    lines.extend([
        (false, 11.0, String::new()),
        (true, 11.0, "Item".into()),
        (false, 11.0, invoice.description.clone()),
        (false, 11.0, format!("Credits: {}", invoice.credits)),
        (false, 11.0, String::new()),
    ]);
    if let Some(tax) = &invoice.tax {
        let currency = crate::domain::money::Currency::parse(&invoice.currency);
        let money = |minor: i64| match currency {
            Ok(currency) => format!("{} {}", currency.decimal(minor), invoice.currency),
            Err(_) => format!("{minor} minor units of {}", invoice.currency),
        };
        let rate = format!("{}.{:02}%", tax.rate_bp / 100, tax.rate_bp % 100);
        lines.extend([
            (true, 11.0, format!("Tax breakdown ({})", tax.jurisdiction)),
            (false, 11.0, format!("Net: {}", money(tax.net))),
            (false, 11.0, format!("{} {rate}: {}", tax.tax_name, money(tax.tax))),
            (false, 11.0, format!("Gross: {}", money(tax.gross))),
        ]);
        if tax.reverse_charge {
            lines.push((false, 11.0, "Reverse charge: the recipient accounts for the tax.".into()));
        }
        lines.push((false, 11.0, String::new()));
    }
    lines.extend([
        (true, 13.0, format!("Total: {} {}", invoice.amount, invoice.currency)),
        (false, 11.0, format!("Paid with: {}", invoice.method)),
        (false, 11.0, format!("Transaction: {}", invoice.transaction_id)),
    ]);
    let mut content = Content::new();
    let mut y = 790.0;
    for (heading, size, text) in lines {
        content.begin_text();
        content.set_font(Name(if heading { b"F2" } else { b"F1" }), size);
        content.next_line(56.0, y);
        content.show(Str(&ascii(&text)));
        content.end_text();
        y -= size + 8.0;
    }
    pdf.stream(contents, &content.finish());
    pdf.finish()
}
