//! The sandbox remembers the refund it made for an intent, so a repeated refund answers the same one (as Stripe's
//! idempotency keys do) and the chaos harness can check every refund against the provider's own record.
use crate::nullable_column;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        nullable_column::add(m, SandboxPaymentIntents::Table, SandboxPaymentIntents::RefundId).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        nullable_column::drop(m, SandboxPaymentIntents::Table, SandboxPaymentIntents::RefundId).await
    }
}

#[derive(DeriveIden)]
enum SandboxPaymentIntents {
    Table,
    RefundId,
}
