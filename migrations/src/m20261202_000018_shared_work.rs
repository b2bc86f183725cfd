//! Several nodes on one database: a purchase's next deadline as a column any node can claim, at most one sandbox
//! intent and order per purchase, and one sandbox webhook secret for every node.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

// Partial and unique indexes are spelled the same on SQLite and PostgreSQL.
const INDEXES: [&str; 3] = [
    "CREATE INDEX idx_purchases_next_due ON purchases (next_due_at) WHERE next_due_at IS NOT NULL",
    "CREATE UNIQUE INDEX idx_sandbox_intents_purchase ON sandbox_payment_intents (purchase_id)",
    "CREATE UNIQUE INDEX idx_sandbox_orders_purchase ON sandbox_paypal_orders (purchase_id)",
];

// Unfinished purchases made before this migration are due at once: the first sweep reads each one's real deadlines.
const BACKFILL: &str =
    "UPDATE purchases SET next_due_at = updated_at WHERE status NOT IN ('succeeded', 'expired', 'reversed')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let due = timestamp_with_time_zone_null(Purchases::NextDueAt);
        m.alter_table(Table::alter().table(Purchases::Table).add_column(due).to_owned()).await?;
        m.create_table(
            Table::create()
                .table(SandboxKeys::Table)
                .col(string(SandboxKeys::Name).primary_key())
                .col(string(SandboxKeys::Value))
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        for index in INDEXES {
            db.execute_unprepared(index).await?;
        }
        db.execute_unprepared(BACKFILL).await.map(|_| ())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        for index in ["idx_purchases_next_due", "idx_sandbox_intents_purchase", "idx_sandbox_orders_purchase"] {
            db.execute_unprepared(&format!("DROP INDEX {index}")).await?;
        }
        m.drop_table(Table::drop().table(SandboxKeys::Table).to_owned()).await?;
        m.alter_table(Table::alter().table(Purchases::Table).drop_column(Purchases::NextDueAt).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Purchases {
    Table,
    NextDueAt,
}

#[derive(DeriveIden)]
enum SandboxKeys {
    Table,
    Name,
    Value,
}
