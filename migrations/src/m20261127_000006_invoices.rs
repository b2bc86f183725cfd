//! Invoices and the counter that numbers them without gaps.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Invoices::Table)
                .col(big_integer(Invoices::Number).primary_key())
                .col(uuid(Invoices::PurchaseId).unique_key())
                .col(string(Invoices::ClientId))
                .col(timestamp_with_time_zone(Invoices::IssuedAt))
                .col(json(Invoices::Document))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(InvoiceCounters::Table)
                .col(string(InvoiceCounters::Name).primary_key())
                .col(big_integer(InvoiceCounters::Next))
                .to_owned(),
        )
        .await?;
        let seed = Query::insert()
            .into_table(InvoiceCounters::Table)
            .columns([InvoiceCounters::Name, InvoiceCounters::Next])
            .values_panic(["invoice".into(), 1.into()])
            .to_owned();
        m.exec_stmt(seed).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(InvoiceCounters::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(Invoices::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Invoices {
    Table,
    Number,
    PurchaseId,
    ClientId,
    IssuedAt,
    Document,
}

#[derive(DeriveIden)]
enum InvoiceCounters {
    Table,
    Name,
    Next,
}
