//! An index for the admin transaction list, which pages through all purchases by time.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let index = Index::create()
            .name("idx_purchases_created")
            .table(Purchases::Table)
            .col(Purchases::CreatedAt)
            .col(Purchases::Id)
            .to_owned();
        m.create_index(index).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("idx_purchases_created").table(Purchases::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Purchases {
    Table,
    Id,
    CreatedAt,
}
