//! The sandbox remembers the refund it made for an intent, so a repeated refund answers the same one (as Stripe's
//! idempotency keys do) and the chaos harness can check every refund against the provider's own record.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(SandboxPaymentIntents::Table)
                .add_column(string_null(SandboxPaymentIntents::RefundId))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter().table(SandboxPaymentIntents::Table).drop_column(SandboxPaymentIntents::RefundId).to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum SandboxPaymentIntents {
    Table,
    RefundId,
}
