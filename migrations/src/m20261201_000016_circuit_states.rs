//! The circuit breakers' open circuits, so a restarted breaker does not forget a provider it found sick.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(CircuitStates::Table)
                .col(string(CircuitStates::Rail).primary_key())
                .col(timestamp_with_time_zone_null(CircuitStates::OpenUntil))
                .col(timestamp_with_time_zone(CircuitStates::ChangedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(CircuitStates::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum CircuitStates {
    Table,
    Rail,
    OpenUntil,
    ChangedAt,
}
