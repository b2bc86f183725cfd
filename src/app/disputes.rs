//! Disputes end to end (AC9.2.5, AC9.6.2): a provider's report from a webhook, and an admin's answer sent to the
//! provider, each applied as the dispute's step (`actors::disputes`): the dispute, the purchase's history, the alert,
//! and for a lost one the credits taken back and the account flagged, with the inbox mark or the admin's audit line.
use crate::actors::Context;
use crate::actors::disputes::{DisputeError, apply, at_provider};
use crate::domain::dispute::{Answer, Report, Standing};
use crate::store::disputes::{self, Applied, Source};
use entities::disputes as rows;
use sea_orm::DbErr;

/// A dispute's news from a stored webhook (`row`), marked processed in the same step.
pub async fn reported(ctx: &Context, report: Report, row: i64) -> Result<Applied, DbErr> {
    apply(ctx, report, Source::Webhook(row)).await
}

/// An admin answers dispute `id` at its provider; what the provider says back is applied with the audit line.
pub async fn answer(ctx: &Context, id: &str, answer: Answer, admin: &str) -> Result<rows::Model, DisputeError> {
    let dispute = disputes::find(&ctx.reads, id).await?.ok_or(DisputeError::NotFound)?;
    if Standing::parse(&dispute.status).is_some_and(Standing::is_closed) {
        return Err(DisputeError::Closed(dispute.status));
    }
    let report = at_provider(ctx, &dispute.provider, id, Some(&answer)).await?;
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
    disputes::find(&ctx.reads, id).await?.ok_or(DisputeError::NotFound)
}
