//! What the fraud monitor counts, kept in the database: each checkout it let through and each decline, with the
//! client, the network and the card, so that every node counts every other's and a restart forgets nothing.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(FraudScreenings::Table)
                .col(big_integer(FraudScreenings::Id).auto_increment().primary_key())
                .col(string(FraudScreenings::Kind))
                .col(string(FraudScreenings::ClientId))
                .col(string_null(FraudScreenings::Ip))
                .col(string_null(FraudScreenings::Card))
                .col(timestamp_with_time_zone(FraudScreenings::At))
                .to_owned(),
        )
        .await?;
        for (name, column) in [
            ("idx_fraud_screenings_client", FraudScreenings::ClientId),
            ("idx_fraud_screenings_ip", FraudScreenings::Ip),
            ("idx_fraud_screenings_card", FraudScreenings::Card),
        ] {
            let mut index = Index::create();
            index.name(name).table(FraudScreenings::Table).col(column).col(FraudScreenings::At);
            m.create_index(index).await?;
        }
        let mut by_age = Index::create();
        by_age.name("idx_fraud_screenings_at").table(FraudScreenings::Table).col(FraudScreenings::At);
        m.create_index(by_age).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(FraudScreenings::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum FraudScreenings {
    Table,
    Id,
    Kind,
    ClientId,
    Ip,
    Card,
    At,
}
