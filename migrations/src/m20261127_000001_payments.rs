//! The first slice: purchases and their audit trail, the credit ledger, the webhook inbox, idempotency keys, the
//! outbox and the sandbox provider's intents.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Purchases::Table)
                .col(uuid(Purchases::Id).primary_key())
                .col(string(Purchases::ClientId))
                .col(string(Purchases::PackageId))
                .col(big_integer(Purchases::Amount))
                .col(string_len(Purchases::Currency, 3))
                .col(big_integer(Purchases::Credits))
                .col(string(Purchases::Provider))
                .col(string_null(Purchases::ProviderRef).unique_key())
                .col(string_null(Purchases::PaymentMethod))
                .col(string(Purchases::Status))
                .col(string_null(Purchases::FailureCode))
                .col(json(Purchases::State))
                .col(big_integer(Purchases::Version))
                .col(timestamp_with_time_zone(Purchases::CreatedAt))
                .col(timestamp_with_time_zone(Purchases::UpdatedAt))
                .to_owned(),
        )
        .await?;
        index(m, "idx_purchases_client", Purchases::Table, &[Purchases::ClientId, Purchases::CreatedAt], false).await?;
        index(m, "idx_purchases_status", Purchases::Table, &[Purchases::Status], false).await?;

        m.create_table(
            Table::create()
                .table(PurchaseEvents::Table)
                .col(big_pk_auto(PurchaseEvents::Id))
                .col(uuid(PurchaseEvents::PurchaseId))
                .col(string(PurchaseEvents::Kind))
                .col(string(PurchaseEvents::FromStatus))
                .col(string(PurchaseEvents::ToStatus))
                .col(json(PurchaseEvents::Detail))
                .col(timestamp_with_time_zone(PurchaseEvents::CreatedAt))
                .to_owned(),
        )
        .await?;
        index(m, "idx_purchase_events_purchase", PurchaseEvents::Table, &[PurchaseEvents::PurchaseId], false).await?;

        m.create_table(
            Table::create()
                .table(CreditLedger::Table)
                .col(big_pk_auto(CreditLedger::Id))
                .col(string(CreditLedger::ClientId))
                .col(string(CreditLedger::Source))
                .col(string(CreditLedger::Kind))
                .col(big_integer(CreditLedger::Credits))
                .col(timestamp_with_time_zone(CreditLedger::CreatedAt))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "uq_credit_ledger_source_kind",
            CreditLedger::Table,
            &[CreditLedger::Source, CreditLedger::Kind],
            true,
        )
        .await?;
        index(m, "idx_credit_ledger_client", CreditLedger::Table, &[CreditLedger::ClientId], false).await?;

        m.create_table(
            Table::create()
                .table(WebhookEvents::Table)
                .col(big_pk_auto(WebhookEvents::Id))
                .col(string(WebhookEvents::Provider))
                .col(string(WebhookEvents::EventId))
                .col(string(WebhookEvents::EventType))
                .col(text(WebhookEvents::Payload))
                .col(string(WebhookEvents::Status))
                .col(uuid_null(WebhookEvents::PurchaseId))
                .col(text_null(WebhookEvents::Error))
                .col(timestamp_with_time_zone(WebhookEvents::ReceivedAt))
                .col(timestamp_with_time_zone_null(WebhookEvents::ProcessedAt))
                .to_owned(),
        )
        .await?;
        let inbox_key = [WebhookEvents::Provider, WebhookEvents::EventId];
        index(m, "uq_webhook_events_provider_event", WebhookEvents::Table, &inbox_key, true).await?;

        m.create_table(
            Table::create()
                .table(IdempotencyKeys::Table)
                .col(string(IdempotencyKeys::ClientId))
                .col(string(IdempotencyKeys::Key))
                .col(string(IdempotencyKeys::RequestHash))
                .col(integer_null(IdempotencyKeys::ResponseStatus))
                .col(text_null(IdempotencyKeys::ResponseBody))
                .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                .primary_key(Index::create().col(IdempotencyKeys::ClientId).col(IdempotencyKeys::Key))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Outbox::Table)
                .col(big_pk_auto(Outbox::Id))
                .col(string(Outbox::Kind))
                .col(string(Outbox::DedupeKey).unique_key())
                .col(json(Outbox::Payload))
                .col(integer(Outbox::Attempts))
                .col(text_null(Outbox::LastError))
                .col(timestamp_with_time_zone(Outbox::CreatedAt))
                .col(timestamp_with_time_zone(Outbox::AvailableAt))
                .col(timestamp_with_time_zone_null(Outbox::SentAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(SandboxPaymentIntents::Table)
                .col(string(SandboxPaymentIntents::Id).primary_key())
                .col(string(SandboxPaymentIntents::ClientSecret))
                .col(uuid(SandboxPaymentIntents::PurchaseId))
                .col(big_integer(SandboxPaymentIntents::Amount))
                .col(string_len(SandboxPaymentIntents::Currency, 3))
                .col(string_null(SandboxPaymentIntents::PaymentMethod))
                .col(string(SandboxPaymentIntents::Status))
                .col(integer(SandboxPaymentIntents::Confirmations))
                .col(string_null(SandboxPaymentIntents::LastError))
                .col(string_null(SandboxPaymentIntents::LatestCharge))
                .col(timestamp_with_time_zone(SandboxPaymentIntents::CreatedAt))
                .col(timestamp_with_time_zone(SandboxPaymentIntents::UpdatedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SandboxPaymentIntents::Table.into_iden(),
            Outbox::Table.into_iden(),
            IdempotencyKeys::Table.into_iden(),
            WebhookEvents::Table.into_iden(),
            CreditLedger::Table.into_iden(),
            PurchaseEvents::Table.into_iden(),
            Purchases::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

/// Creates an index (unique when `unique`) on `cols` of `table`.
async fn index<T: Iden + Clone + 'static, C: Iden + Clone + 'static>(
    m: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: &[C],
    unique: bool,
) -> Result<(), DbErr> {
    let mut stmt = Index::create().name(name).table(table).to_owned();
    if unique {
        stmt.unique();
    }
    for col in cols {
        stmt.col(col.clone());
    }
    m.create_index(stmt).await
}

#[derive(DeriveIden, Clone)]
enum Purchases {
    Table,
    Id,
    ClientId,
    PackageId,
    Amount,
    Currency,
    Credits,
    Provider,
    ProviderRef,
    PaymentMethod,
    Status,
    FailureCode,
    State,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone)]
enum PurchaseEvents {
    Table,
    Id,
    PurchaseId,
    Kind,
    FromStatus,
    ToStatus,
    Detail,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum CreditLedger {
    Table,
    Id,
    ClientId,
    Source,
    Kind,
    Credits,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum WebhookEvents {
    Table,
    Id,
    Provider,
    EventId,
    EventType,
    Payload,
    Status,
    PurchaseId,
    Error,
    ReceivedAt,
    ProcessedAt,
}

#[derive(DeriveIden, Clone)]
enum IdempotencyKeys {
    Table,
    ClientId,
    Key,
    RequestHash,
    ResponseStatus,
    ResponseBody,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum Outbox {
    Table,
    Id,
    Kind,
    DedupeKey,
    Payload,
    Attempts,
    LastError,
    CreatedAt,
    AvailableAt,
    SentAt,
}

#[derive(DeriveIden, Clone)]
enum SandboxPaymentIntents {
    Table,
    Id,
    ClientSecret,
    PurchaseId,
    Amount,
    Currency,
    PaymentMethod,
    Status,
    Confirmations,
    LastError,
    LatestCharge,
    CreatedAt,
    UpdatedAt,
}
