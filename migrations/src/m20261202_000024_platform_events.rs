//! Events to the platform (issue 18): `platform_events` holds each change once, written in the transaction of its
//! cause (`cause` unique, so a change caused twice is one event); `event_deliveries` holds one row per event and
//! configured endpoint, claimed and retried by the event sender until the endpoint answers 2xx or three days pass.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

// Partial indexes are spelled the same on SQLite and PostgreSQL.
const UNFANNED: &str = "CREATE INDEX idx_platform_events_unfanned ON platform_events (seq) WHERE fanned_out = false";
const PENDING: &str =
    "CREATE INDEX idx_event_deliveries_pending ON event_deliveries (available_at) WHERE status = 'pending'";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(PlatformEvents::Table)
                .col(big_pk_auto(PlatformEvents::Seq))
                .col(string_uniq(PlatformEvents::Id))
                .col(string(PlatformEvents::Type))
                .col(string_uniq(PlatformEvents::Cause))
                .col(string_null(PlatformEvents::ClientId))
                .col(json(PlatformEvents::Payload))
                .col(timestamp_with_time_zone(PlatformEvents::CreatedAt))
                .col(boolean(PlatformEvents::FannedOut))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(EventDeliveries::Table)
                .col(big_pk_auto(EventDeliveries::Id))
                .col(string(EventDeliveries::EventId))
                .col(string(EventDeliveries::Endpoint))
                .col(string(EventDeliveries::Status))
                .col(integer(EventDeliveries::Attempts))
                .col(integer_null(EventDeliveries::LastStatus))
                .col(string_null(EventDeliveries::LastError))
                .col(timestamp_with_time_zone(EventDeliveries::CreatedAt))
                .col(timestamp_with_time_zone(EventDeliveries::AvailableAt))
                .col(timestamp_with_time_zone_null(EventDeliveries::DeliveredAt))
                .to_owned(),
        )
        .await?;
        let mut once = Index::create();
        once.name("idx_event_deliveries_once")
            .table(EventDeliveries::Table)
            .col(EventDeliveries::EventId)
            .col(EventDeliveries::Endpoint)
            .unique();
        m.create_index(once).await?;
        let mut by_endpoint = Index::create();
        by_endpoint.name("idx_event_deliveries_endpoint").table(EventDeliveries::Table).col(EventDeliveries::Endpoint);
        m.create_index(by_endpoint).await?;
        m.get_connection().execute_unprepared(UNFANNED).await?;
        m.get_connection().execute_unprepared(PENDING).await.map(|_| ())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(EventDeliveries::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(PlatformEvents::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum PlatformEvents {
    Table,
    Seq,
    Id,
    Type,
    Cause,
    ClientId,
    Payload,
    CreatedAt,
    FannedOut,
}

#[derive(DeriveIden)]
enum EventDeliveries {
    Table,
    Id,
    EventId,
    Endpoint,
    Status,
    Attempts,
    LastStatus,
    LastError,
    CreatedAt,
    AvailableAt,
    DeliveredAt,
}
