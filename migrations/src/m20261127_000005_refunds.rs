//! Refund requests.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(RefundRequests::Table)
                .col(uuid(RefundRequests::Id).primary_key())
                .col(uuid(RefundRequests::PurchaseId))
                .col(string(RefundRequests::ClientId))
                .col(string(RefundRequests::Status))
                .col(big_integer(RefundRequests::Credits))
                .col(big_integer(RefundRequests::Amount))
                .col(string_len(RefundRequests::Currency, 3))
                .col(json(RefundRequests::State))
                .col(big_integer(RefundRequests::Version))
                .col(timestamp_with_time_zone(RefundRequests::CreatedAt))
                .col(timestamp_with_time_zone(RefundRequests::UpdatedAt))
                .to_owned(),
        )
        .await?;
        for (name, column) in
            [("idx_refunds_purchase", RefundRequests::PurchaseId), ("idx_refunds_status", RefundRequests::Status)]
        {
            m.create_index(Index::create().name(name).table(RefundRequests::Table).col(column).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(RefundRequests::Table).to_owned()).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum RefundRequests {
    Table,
    Id,
    PurchaseId,
    ClientId,
    Status,
    Credits,
    Amount,
    Currency,
    State,
    Version,
    CreatedAt,
    UpdatedAt,
}
