//! The reconciler's own schedule: when each purchase waiting on a provider was last synced and when it is due again,
//! so a bank debit waiting days is not polled every minute and the longest-unsynced go first.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ReconcileSchedule::Table)
                .col(uuid(ReconcileSchedule::PurchaseId).primary_key())
                .col(integer(ReconcileSchedule::Syncs))
                .col(timestamp_with_time_zone(ReconcileSchedule::LastSyncedAt))
                .col(timestamp_with_time_zone(ReconcileSchedule::NextAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ReconcileSchedule::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum ReconcileSchedule {
    Table,
    PurchaseId,
    Syncs,
    LastSyncedAt,
    NextAt,
}
