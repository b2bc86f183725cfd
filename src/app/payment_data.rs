//! What Purser keeps of a client for its payments, each change a writer step: saved methods and the provider's
//! customer, forgotten once the provider has confirmed the removal (the caller's job, first), so nothing is forgotten
//! here that the provider still holds; and the billing profile its invoices carry.
use crate::domain::ids::ClientId;
use crate::domain::invoice::BillingProfile;
use crate::store::writer::Writer;
use crate::store::{billing_profiles, customers, payment_methods};
use sea_orm::DbErr;

pub async fn forget_method(writer: &Writer, id: &str) -> Result<(), DbErr> {
    let id = id.to_owned();
    writer.write(move |txn| Box::pin(async move { payment_methods::forget(txn, &id).await })).await
}

pub async fn forget_customer(writer: &Writer, client: &str, provider: &'static str) -> Result<(), DbErr> {
    let client = client.to_owned();
    writer.write(move |txn| Box::pin(async move { customers::forget(txn, &client, provider).await })).await
}

pub async fn save_billing_profile(writer: &Writer, client: &ClientId, profile: BillingProfile) -> Result<(), DbErr> {
    let client = client.as_str().to_owned();
    writer.write(move |txn| Box::pin(async move { billing_profiles::save(txn, &client, &profile).await })).await
}
