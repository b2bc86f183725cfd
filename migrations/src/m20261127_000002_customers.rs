//! Provider customers (Stripe Customers) per client.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Customers::Table)
                .col(string(Customers::ClientId))
                .col(string(Customers::Provider))
                .col(string(Customers::CustomerId))
                .col(timestamp_with_time_zone(Customers::CreatedAt))
                .primary_key(Index::create().col(Customers::ClientId).col(Customers::Provider))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Customers::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Customers {
    Table,
    ClientId,
    Provider,
    CustomerId,
    CreatedAt,
}
