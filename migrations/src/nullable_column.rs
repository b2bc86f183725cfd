//! Adding one nullable text column to a table, and taking it away again: what the sandbox's refund records needed.
use sea_orm_migration::{prelude::*, schema::*};

pub async fn add(m: &SchemaManager<'_>, table: impl IntoIden, column: impl IntoIden) -> Result<(), DbErr> {
    m.alter_table(Table::alter().table(table).add_column(string_null(column)).to_owned()).await
}

pub async fn drop(m: &SchemaManager<'_>, table: impl IntoIden, column: impl IntoIden) -> Result<(), DbErr> {
    m.alter_table(Table::alter().table(table).drop_column(column).to_owned()).await
}
