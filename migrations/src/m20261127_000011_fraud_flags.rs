//! Accounts flagged for confirmed fraud.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(FraudFlags::Table)
                .col(string(FraudFlags::ClientId).primary_key())
                .col(string(FraudFlags::Reason))
                .col(string(FraudFlags::FlaggedBy))
                .col(timestamp_with_time_zone(FraudFlags::FlaggedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(FraudFlags::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum FraudFlags {
    Table,
    ClientId,
    Reason,
    FlaggedBy,
    FlaggedAt,
}
