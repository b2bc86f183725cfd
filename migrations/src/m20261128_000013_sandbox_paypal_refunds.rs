//! The sandbox remembers the refund it made for a PayPal capture too: a repeated refund answers the same one (as
//! PayPal's `PayPal-Request-Id` does), and the chaos harness checks PayPal refunds against the provider's record.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(SandboxPaypalOrders::Table)
                .add_column(string_null(SandboxPaypalOrders::RefundId))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter().table(SandboxPaypalOrders::Table).drop_column(SandboxPaypalOrders::RefundId).to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum SandboxPaypalOrders {
    Table,
    RefundId,
}
