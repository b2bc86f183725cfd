//! PayPal: the sandbox's orders, disputes from every provider, and the charge or capture that paid each purchase.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(SandboxPaypalOrders::Table)
                .col(string(SandboxPaypalOrders::Id).primary_key())
                .col(uuid(SandboxPaypalOrders::PurchaseId).unique_key())
                .col(big_integer(SandboxPaypalOrders::Amount))
                .col(string_len(SandboxPaypalOrders::Currency, 3))
                .col(string(SandboxPaypalOrders::Status))
                .col(string_null(SandboxPaypalOrders::FundingSource))
                .col(string_null(SandboxPaypalOrders::CaptureId))
                .col(string_null(SandboxPaypalOrders::CaptureStatus))
                .col(timestamp_with_time_zone(SandboxPaypalOrders::CreatedAt))
                .col(timestamp_with_time_zone(SandboxPaypalOrders::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Disputes::Table)
                .col(string(Disputes::Id).primary_key())
                .col(string(Disputes::Provider))
                .col(uuid_null(Disputes::PurchaseId))
                .col(string_null(Disputes::ClientId))
                .col(string(Disputes::Reason))
                .col(string(Disputes::Status))
                .col(big_integer_null(Disputes::Amount))
                .col(string_len_null(Disputes::Currency, 3))
                .col(json(Disputes::Details))
                .col(timestamp_with_time_zone(Disputes::CreatedAt))
                .col(timestamp_with_time_zone(Disputes::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.alter_table(Table::alter().table(Purchases::Table).add_column(string_null(Purchases::ChargeRef)).to_owned())
            .await?;
        m.create_index(
            Index::create()
                .name("idx_purchases_charge_ref")
                .table(Purchases::Table)
                .col(Purchases::ChargeRef)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("idx_purchases_charge_ref").table(Purchases::Table).to_owned()).await?;
        m.alter_table(Table::alter().table(Purchases::Table).drop_column(Purchases::ChargeRef).to_owned()).await?;
        m.drop_table(Table::drop().table(Disputes::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(SandboxPaypalOrders::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum SandboxPaypalOrders {
    Table,
    Id,
    PurchaseId,
    Amount,
    Currency,
    Status,
    FundingSource,
    CaptureId,
    CaptureStatus,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Disputes {
    Table,
    Id,
    Provider,
    PurchaseId,
    ClientId,
    Reason,
    Status,
    Amount,
    Currency,
    Details,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Purchases {
    Table,
    ChargeRef,
}
