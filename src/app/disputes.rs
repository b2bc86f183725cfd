//! Disputes end to end (AC9.2.5, AC9.6.2): a provider's report, from a webhook or from the answer to an admin's
//! evidence or concession, applied as one step through the writer: the dispute, the purchase's history, the alert, and
//! for a lost one the credits taken back and the account flagged, with the inbox mark or the admin's audit line.
use crate::actors::Context;
use crate::domain::dispute::{Answer, Report};
use crate::domain::purchase::Purchase;
use crate::providers::ProviderError;
use crate::store::disputes::{self, Applied, Source};
use crate::store::purchases;
use entities::disputes as rows;
use sea_orm::DbErr;

#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("No such dispute.")]
    NotFound,
    #[error("This dispute is closed ({0}): there is nothing left to answer.")]
    Closed(String),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The purchase a report is about, found by the payment the provider names (Stripe's intent, PayPal's capture).
async fn purchase_of(ctx: &Context, report: &Report) -> Result<Option<Purchase>, DbErr> {
    let Some(payment) = &report.payment else { return Ok(None) };
    let found = match report.provider {
        "paypal" => purchases::find_by_charge(&ctx.reads, payment).await?,
        _ => purchases::find_by_intent(&ctx.reads, payment).await?,
    };
    Ok(found.map(|stored| stored.purchase))
}

async fn apply(ctx: &Context, report: Report, source: Source) -> Result<Applied, DbErr> {
    let purchase = purchase_of(ctx, &report).await?;
    let step = ctx.writer.write(move |txn| {
        Box::pin(async move { disputes::apply(txn, &report, purchase.as_ref(), source).await })
    });
    step.await
}

/// A dispute's news from a stored webhook (`row`), marked processed in the same step.
pub async fn reported(ctx: &Context, report: Report, row: i64) -> Result<Applied, DbErr> {
    apply(ctx, report, Source::Webhook(row)).await
}

/// Reads an open dispute back from its provider, for news whose webhook never came (the reconciler's round).
pub async fn sync(ctx: &Context, dispute: &rows::Model) -> Result<Applied, AnswerError> {
    let report = ctx.gateways.dispute(&dispute.provider, &dispute.id, None).await?;
    Ok(apply(ctx, report, Source::Sync).await?)
}

/// An admin answers dispute `id` at its provider; what the provider says back is applied with the audit line.
pub async fn answer(ctx: &Context, id: &str, answer: Answer, admin: &str) -> Result<rows::Model, AnswerError> {
    let dispute = disputes::find(&ctx.reads, id).await?.ok_or(AnswerError::NotFound)?;
    if matches!(dispute.status.as_str(), "won" | "lost") {
        return Err(AnswerError::Closed(dispute.status));
    }
    let report = ctx.gateways.dispute(&dispute.provider, id, Some(&answer)).await?;
    let record = match &answer {
        Answer::Evidence { text, file } => format!(
            "evidence submitted ({} characters{})",
            text.chars().count(),
            file.as_ref().map(|f| format!(", file {} of {} bytes", f.name, f.bytes.len())).unwrap_or_default()
        ),
        Answer::Accept { note } => format!("accepted: {note}"),
    };
    let source = Source::Admin { admin: admin.to_owned(), action: answer.action(), record };
    apply(ctx, report, source).await?;
    disputes::find(&ctx.reads, id).await?.ok_or(AnswerError::NotFound)
}
