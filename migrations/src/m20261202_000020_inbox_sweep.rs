//! When each unapplied webhook event is due for the inbox sweep of any node: shortly after it arrives (the node that
//! stored it routes it at once; should that node die first, another takes it), or after a failure.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "CREATE INDEX idx_webhook_events_sweep ON webhook_events (sweep_at) WHERE sweep_at IS NOT NULL";
const BACKFILL: &str = "UPDATE webhook_events SET sweep_at = received_at WHERE status IN ('received', 'failed')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let due = timestamp_with_time_zone_null(WebhookEvents::SweepAt);
        m.alter_table(Table::alter().table(WebhookEvents::Table).add_column(due).to_owned()).await?;
        let db = m.get_connection();
        db.execute_unprepared(INDEX).await?;
        db.execute_unprepared(BACKFILL).await.map(|_| ())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection().execute_unprepared("DROP INDEX idx_webhook_events_sweep").await?;
        m.alter_table(Table::alter().table(WebhookEvents::Table).drop_column(WebhookEvents::SweepAt).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum WebhookEvents {
    Table,
    SweepAt,
}
