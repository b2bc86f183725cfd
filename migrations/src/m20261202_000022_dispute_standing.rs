//! Disputes answered and settled: `status` becomes one standing for both providers (`needs_response`,
//! `under_review`, `won`, `lost`), with the provider's own status beside it, the evidence due date, and the credits a
//! lost dispute took back. The sandbox's intents gain the dispute Stripe's test card `pm_card_createDispute` opens.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        for column in [
            ColumnDef::new(Disputes::ProviderStatus).string().not_null().default("").to_owned(),
            timestamp_with_time_zone_null(Disputes::EvidenceDueBy),
            ColumnDef::new(Disputes::CreditsDebited).big_integer().not_null().default(0).to_owned(),
        ] {
            m.alter_table(Table::alter().table(Disputes::Table).add_column(column).to_owned()).await?;
        }
        // The sandbox plays Stripe's test disputes on the intents it made.
        for column in [SandboxPaymentIntents::DisputeId, SandboxPaymentIntents::DisputeStatus] {
            crate::nullable_column::add(m, SandboxPaymentIntents::Table, column).await?;
        }
        let db = m.get_connection();
        db.execute_unprepared("UPDATE disputes SET provider_status = status").await?;
        db.execute_unprepared(
            "UPDATE disputes SET status = CASE \
               WHEN status IN ('warning_needs_response', 'needs_response', 'OPEN', 'WAITING_FOR_SELLER_RESPONSE') \
                 THEN 'needs_response' \
               WHEN status IN ('won', 'warning_closed', 'prevented', 'RESOLVED') THEN 'won' \
               WHEN status = 'lost' THEN 'lost' \
               ELSE 'under_review' END",
        )
        .await
        .map(|_| ())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [SandboxPaymentIntents::DisputeId, SandboxPaymentIntents::DisputeStatus] {
            crate::nullable_column::drop(m, SandboxPaymentIntents::Table, column).await?;
        }
        m.get_connection().execute_unprepared("UPDATE disputes SET status = provider_status").await?;
        for column in [Disputes::ProviderStatus, Disputes::EvidenceDueBy, Disputes::CreditsDebited] {
            m.alter_table(Table::alter().table(Disputes::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Disputes {
    Table,
    ProviderStatus,
    EvidenceDueBy,
    CreditsDebited,
}

#[derive(DeriveIden)]
enum SandboxPaymentIntents {
    Table,
    DisputeId,
    DisputeStatus,
}
