//! Saved payment methods, and what the sandbox needs to save them as Stripe does (`setup_future_usage`).
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(PaymentMethods::Table)
                .col(string(PaymentMethods::Id).primary_key())
                .col(string(PaymentMethods::ClientId))
                .col(string(PaymentMethods::Provider))
                .col(string(PaymentMethods::CustomerId))
                .col(string(PaymentMethods::Kind))
                .col(string_null(PaymentMethods::Brand))
                .col(string_null(PaymentMethods::Last4))
                .col(integer_null(PaymentMethods::ExpMonth))
                .col(integer_null(PaymentMethods::ExpYear))
                .col(string_null(PaymentMethods::Wallet))
                .col(timestamp_with_time_zone(PaymentMethods::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_payment_methods_client")
                .table(PaymentMethods::Table)
                .col(PaymentMethods::ClientId)
                .to_owned(),
        )
        .await?;
        // SQLite adds one column per ALTER TABLE.
        m.alter_table(
            Table::alter()
                .table(SandboxPaymentIntents::Table)
                .add_column(string_null(SandboxPaymentIntents::CustomerId))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(SandboxPaymentIntents::Table)
                .add_column(boolean(SandboxPaymentIntents::SetupFutureUsage).default(false))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [SandboxPaymentIntents::SetupFutureUsage, SandboxPaymentIntents::CustomerId] {
            m.alter_table(Table::alter().table(SandboxPaymentIntents::Table).drop_column(column).to_owned()).await?;
        }
        m.drop_table(Table::drop().table(PaymentMethods::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum PaymentMethods {
    Table,
    Id,
    ClientId,
    Provider,
    CustomerId,
    Kind,
    Brand,
    Last4,
    ExpMonth,
    ExpYear,
    Wallet,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SandboxPaymentIntents {
    Table,
    CustomerId,
    SetupFutureUsage,
}
