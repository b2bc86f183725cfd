//! Pauses and the admin audit trail.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(PlatformControls::Table)
                .col(string(PlatformControls::Scope).primary_key())
                .col(boolean(PlatformControls::Paused))
                .col(string(PlatformControls::Reason))
                .col(string(PlatformControls::ChangedBy))
                .col(timestamp_with_time_zone(PlatformControls::ChangedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(AdminActions::Table)
                .col(big_pk_auto(AdminActions::Id))
                .col(string(AdminActions::Admin))
                .col(string(AdminActions::Action))
                .col(string(AdminActions::Target))
                .col(string(AdminActions::Reason))
                .col(timestamp_with_time_zone(AdminActions::At))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(AdminActions::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(PlatformControls::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum PlatformControls {
    Table,
    Scope,
    Paused,
    Reason,
    ChangedBy,
    ChangedAt,
}

#[derive(DeriveIden)]
enum AdminActions {
    Table,
    Id,
    Admin,
    Action,
    Target,
    Reason,
    At,
}
