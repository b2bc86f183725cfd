//! What Purser keeps of a client for its payments, each change a writer step: saved methods and the provider's
//! customer, forgotten once the provider has confirmed the removal, so nothing is forgotten here that the provider
//! still holds; and the billing profile its invoices carry.
use crate::actors::Context;
use crate::domain::ids::ClientId;
use crate::domain::invoice::BillingProfile;
use crate::domain::purchase::Rail;
use crate::providers::ProviderError;
use crate::store::writer::Writer;
use crate::store::{billing_profiles, customers, payment_methods};
use sea_orm::DbErr;

#[derive(Debug, thiserror::Error)]
pub enum RemovalError {
    /// The provider did not confirm the removal: nothing was forgotten here, and the request can be made again.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// What a removal of all of a client's payment data did.
pub struct Removed {
    pub methods: usize,
    pub customer: bool,
}

/// Detaches saved method `id` at the provider, then forgets it.
pub async fn remove_method(ctx: &Context, id: &str) -> Result<(), RemovalError> {
    ctx.provider_call(Rail::Card, "detach_method", ctx.gateways.card.detach_method(id)).await?;
    let id = id.to_owned();
    ctx.writer.write(move |txn| Box::pin(async move { payment_methods::forget(txn, &id).await })).await?;
    Ok(())
}

/// Every saved method of `client` detached and forgotten, then its customer deleted and forgotten, each after the
/// provider confirms it: cut short, it leaves only what the provider still holds, and a retry finishes it.
pub async fn remove_all(ctx: &Context, client: &ClientId) -> Result<Removed, RemovalError> {
    let methods = payment_methods::list(&ctx.db, client.as_str()).await?;
    for method in &methods {
        remove_method(ctx, &method.id).await?;
    }
    let provider = ctx.gateways.card.name();
    let customer = customers::find(&ctx.db, client.as_str(), provider).await?;
    if let Some(customer) = &customer {
        ctx.provider_call(Rail::Card, "delete_customer", ctx.gateways.card.delete_customer(customer)).await?;
        let client = client.as_str().to_owned();
        ctx.writer.write(move |txn| Box::pin(async move { customers::forget(txn, &client, provider).await })).await?;
    }
    Ok(Removed { methods: methods.len(), customer: customer.is_some() })
}

pub async fn save_billing_profile(writer: &Writer, client: &ClientId, profile: BillingProfile) -> Result<(), DbErr> {
    let client = client.as_str().to_owned();
    writer.write(move |txn| Box::pin(async move { billing_profiles::save(txn, &client, &profile).await })).await
}
