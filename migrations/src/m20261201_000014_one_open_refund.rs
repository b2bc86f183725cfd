//! At most one open refund request per purchase, enforced by the database: a check in code followed by an insert
//! let two concurrent requests both through.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

// Partial indexes are spelled the same on SQLite and PostgreSQL.
const CREATE: &str = "CREATE UNIQUE INDEX idx_refund_requests_one_open ON refund_requests (purchase_id) \
    WHERE status IN ('pending_review', 'appealed', 'processing')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection().execute_unprepared(CREATE).await.map(|_| ())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection().execute_unprepared("DROP INDEX idx_refund_requests_one_open").await.map(|_| ())
    }
}
