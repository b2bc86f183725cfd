//! Credits spent on the platform's service (issue 18): one row per spend, with what it bought, and when it was given
//! back; its ledger rows are `spend:{id}` (`spend`, and `spend_reversal` once).
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Spends::Table)
                .col(uuid(Spends::Id).primary_key())
                .col(string(Spends::ClientId))
                .col(big_integer(Spends::Credits))
                .col(string(Spends::Reference))
                .col(string(Spends::Description))
                .col(string(Spends::SpentBy))
                .col(timestamp_with_time_zone(Spends::CreatedAt))
                .col(timestamp_with_time_zone_null(Spends::ReversedAt))
                .col(string_null(Spends::ReversalReason))
                .to_owned(),
        )
        .await?;
        let mut by_client = Index::create();
        by_client.name("idx_spends_client").table(Spends::Table).col(Spends::ClientId);
        m.create_index(by_client).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Spends::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Spends {
    Table,
    Id,
    ClientId,
    Credits,
    Reference,
    Description,
    SpentBy,
    CreatedAt,
    ReversedAt,
    ReversalReason,
}
