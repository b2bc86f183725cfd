//! The fraud monitor's counts read from their indexes alone: each index carries the kind after its key, so counting a
//! network's or a card's checkouts of the hour walks index entries and never fetches the rows to check their kind.
//! The indexes they replace were (key, at); nodes still running the old code read the new ones as well.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const KEYS: [(&str, &str, FraudScreenings); 3] = [
    ("idx_fraud_screenings_client", "idx_fraud_screenings_client_kind", FraudScreenings::ClientId),
    ("idx_fraud_screenings_ip", "idx_fraud_screenings_ip_kind", FraudScreenings::Ip),
    ("idx_fraud_screenings_card", "idx_fraud_screenings_card_kind", FraudScreenings::Card),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (old, new, column) in KEYS {
            let mut index = Index::create();
            index
                .name(new)
                .table(FraudScreenings::Table)
                .col(column)
                .col(FraudScreenings::Kind)
                .col(FraudScreenings::At);
            m.create_index(index).await?;
            m.drop_index(Index::drop().name(old).table(FraudScreenings::Table).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (old, new, column) in KEYS {
            let mut index = Index::create();
            index.name(old).table(FraudScreenings::Table).col(column).col(FraudScreenings::At);
            m.create_index(index).await?;
            m.drop_index(Index::drop().name(new).table(FraudScreenings::Table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, DeriveIden)]
enum FraudScreenings {
    Table,
    Kind,
    ClientId,
    Ip,
    Card,
    At,
}
