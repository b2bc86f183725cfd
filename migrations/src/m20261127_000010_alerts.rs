//! Admin alerts.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alerts::Table)
                .col(string(Alerts::Key).primary_key())
                .col(string(Alerts::Kind))
                .col(json(Alerts::Details))
                .col(timestamp_with_time_zone(Alerts::CreatedAt))
                .col(string_null(Alerts::AcknowledgedBy))
                .col(timestamp_with_time_zone_null(Alerts::AcknowledgedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Alerts::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Alerts {
    Table,
    Key,
    Kind,
    Details,
    CreatedAt,
    AcknowledgedBy,
    AcknowledgedAt,
}
