//! Business billing profiles per client.
use crate::domain::invoice::BillingProfile;
use chrono::Utc;
use entities::billing_profiles as rows;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use std::collections::{BTreeSet, HashMap};

pub async fn find<C: ConnectionTrait>(db: &C, client: &str) -> Result<Option<BillingProfile>, DbErr> {
    Ok(rows::Entity::find_by_id(client.to_owned()).one(db).await?.map(profile))
}

/// The billing profiles of `clients` that have one, by client.
pub async fn of<C: ConnectionTrait>(
    db: &C,
    clients: impl Iterator<Item = &str>,
) -> Result<HashMap<String, BillingProfile>, DbErr> {
    let clients: BTreeSet<&str> = clients.collect();
    let rows = rows::Entity::find().filter(rows::Column::ClientId.is_in(clients)).all(db).await?;
    Ok(rows.into_iter().map(|r| (r.client_id.clone(), profile(r))).collect())
}

fn profile(row: rows::Model) -> BillingProfile {
    BillingProfile { company_name: row.company_name, address: row.address, country: row.country, tax_id: row.tax_id }
}

pub async fn save<C: ConnectionTrait>(db: &C, client: &str, profile: &BillingProfile) -> Result<(), DbErr> {
    use rows::Column as C;
    let row = rows::ActiveModel {
        client_id: Set(client.to_owned()),
        company_name: Set(profile.company_name.clone()),
        address: Set(profile.address.clone()),
        country: Set(profile.country.clone()),
        tax_id: Set(profile.tax_id.clone()),
        updated_at: Set(Utc::now()),
    };
    let replace = OnConflict::column(C::ClientId)
        .update_columns([C::CompanyName, C::Address, C::Country, C::TaxId, C::UpdatedAt])
        .to_owned();
    rows::Entity::insert(row).on_conflict(replace).exec_without_returning(db).await.map(|_| ())
}
