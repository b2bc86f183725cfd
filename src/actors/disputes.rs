//! A dispute's step: a provider's report (from a webhook, the answer to an admin's evidence or concession, or the
//! reconciler's read) applied through the writer in one transaction, with the dispute's row as the owner (its
//! advisory lock serializes two nodes' reports). There is no actor per dispute: a dispute waits on people for days
//! and holds no timer, so its row is all its state.
use super::Context;
use crate::domain::dispute::{Answer, Report};
use crate::domain::purchase::Rail;
use crate::providers::ProviderError;
use crate::store::disputes::{self, Applied, Source};
use crate::store::{purchases, writer};
use entities::disputes as rows;
use sea_orm::DbErr;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum DisputeError {
    #[error("No such dispute.")]
    NotFound,
    #[error("This dispute is closed ({0}): there is nothing left to answer.")]
    Closed(String),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The purchase a report is about, found by the payment the provider names (Stripe's intent, PayPal's capture): its
/// id, which never changes. The step reads the purchase itself, in its transaction: read here, a grant committed
/// meanwhile would be missed, and the lost dispute would take nothing back while the grant, not seeing the dispute
/// yet, kept the credits (a PostgreSQL chaos run caught it).
async fn purchase_of(ctx: &Context, report: &Report) -> Result<Option<Uuid>, DbErr> {
    let Some(payment) = &report.payment else { return Ok(None) };
    let found = match report.provider {
        "paypal" => purchases::find_by_charge(&ctx.reads, payment).await?,
        _ => purchases::find_by_intent(&ctx.reads, payment).await?,
    };
    Ok(found.map(|stored| stored.purchase.id))
}

pub async fn apply(ctx: &Context, report: Report, source: Source) -> Result<Applied, DbErr> {
    let purchase = purchase_of(ctx, &report).await?;
    let step = || {
        let (report, source) = (report.clone(), source.clone());
        writer::step(move |txn| Box::pin(async move { disputes::apply(txn, &report, purchase, source).await }))
    };
    ctx.writer.write_when_free(step).await
}

/// Reads dispute `id` at its provider, or sends it an admin's `answer`, as a provider call (budget, circuit, timings).
pub async fn at_provider(
    ctx: &Context,
    provider: &str,
    id: &str,
    answer: Option<&Answer>,
) -> Result<Report, ProviderError> {
    let rail = if provider == "paypal" { Rail::Paypal } else { Rail::Card };
    let operation = if answer.is_some() { "answer_dispute" } else { "read_dispute" };
    ctx.provider_call(rail, operation, ctx.gateways.dispute(provider, id, answer)).await
}

/// Reads an open dispute back from its provider, for news whose webhook never came (the reconciler's round).
pub async fn sync(ctx: &Context, dispute: &rows::Model) -> Result<Applied, DisputeError> {
    let report = at_provider(ctx, &dispute.provider, &dispute.id, None).await?;
    Ok(apply(ctx, report, Source::Sync).await?)
}
