//! Checkout counts per client and per network per minute, kept in the database when several nodes share it, so a
//! client's limit holds whichever node its requests reach.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(RateWindows::Table)
                .col(string(RateWindows::Key))
                .col(big_integer(RateWindows::WindowStart))
                .col(integer(RateWindows::Hits))
                .primary_key(Index::create().col(RateWindows::Key).col(RateWindows::WindowStart))
                .to_owned(),
        )
        .await?;
        let mut by_age = Index::create();
        by_age.name("idx_rate_windows_start").table(RateWindows::Table).col(RateWindows::WindowStart);
        m.create_index(by_age).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(RateWindows::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum RateWindows {
    Table,
    Key,
    WindowStart,
    Hits,
}
