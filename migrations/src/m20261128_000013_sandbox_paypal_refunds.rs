//! The sandbox remembers the refund it made for a PayPal capture too: a repeated refund answers the same one (as
//! PayPal's `PayPal-Request-Id` does), and the chaos harness checks PayPal refunds against the provider's record.
use crate::nullable_column;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        nullable_column::add(m, SandboxPaypalOrders::Table, SandboxPaypalOrders::RefundId).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        nullable_column::drop(m, SandboxPaypalOrders::Table, SandboxPaypalOrders::RefundId).await
    }
}

#[derive(DeriveIden)]
enum SandboxPaypalOrders {
    Table,
    RefundId,
}
