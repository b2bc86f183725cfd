//! A purchase's disputes found by its id: the step that grants a purchase's credits looks for a dispute lost before
//! the grant, and would otherwise read every dispute.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const NAME: &str = "idx_disputes_purchase";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(Index::create().name(NAME).table(Disputes::Table).col(Disputes::PurchaseId).to_owned()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name(NAME).table(Disputes::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Disputes {
    Table,
    PurchaseId,
}
