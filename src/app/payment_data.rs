//! A client's saved payment data, forgotten once its provider has confirmed the removal (the caller's job, first), so
//! nothing is forgotten here that the provider still holds. Each removal is a writer step of its own.
use crate::store::writer::Writer;
use crate::store::{customers, payment_methods};
use sea_orm::DbErr;

pub async fn forget_method(writer: &Writer, id: &str) -> Result<(), DbErr> {
    let id = id.to_owned();
    writer.write(move |txn| Box::pin(async move { payment_methods::forget(txn, &id).await })).await
}

pub async fn forget_customer(writer: &Writer, client: &str, provider: &'static str) -> Result<(), DbErr> {
    let client = client.to_owned();
    writer.write(move |txn| Box::pin(async move { customers::forget(txn, &client, provider).await })).await
}
