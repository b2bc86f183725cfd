//! The outbox's unsent messages by due time: the mailer's poll and `/metrics`' depth read them without scanning every
//! message ever sent.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

// Partial indexes are spelled the same on SQLite and PostgreSQL.
const CREATE: &str = "CREATE INDEX idx_outbox_pending ON outbox (available_at) WHERE sent_at IS NULL";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection().execute_unprepared(CREATE).await.map(|_| ())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection().execute_unprepared("DROP INDEX idx_outbox_pending").await.map(|_| ())
    }
}
