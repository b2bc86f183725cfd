//! Business billing profiles.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(BillingProfiles::Table)
                .col(string(BillingProfiles::ClientId).primary_key())
                .col(string(BillingProfiles::CompanyName))
                .col(string(BillingProfiles::Address))
                .col(string_len(BillingProfiles::Country, 2))
                .col(string_null(BillingProfiles::TaxId))
                .col(timestamp_with_time_zone(BillingProfiles::UpdatedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(BillingProfiles::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum BillingProfiles {
    Table,
    ClientId,
    CompanyName,
    Address,
    Country,
    TaxId,
    UpdatedAt,
}
