//! Provider customer ids per client.
use chrono::Utc;
use entities::customers;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait};

pub async fn find<C: ConnectionTrait>(db: &C, client: &str, provider: &str) -> Result<Option<String>, DbErr> {
    Ok(customers::Entity::find_by_id((client.to_owned(), provider.to_owned())).one(db).await?.map(|c| c.customer_id))
}

/// Records the customer unless one is already recorded (two first purchases racing); returns the one that stands.
pub async fn remember<C: ConnectionTrait>(
    db: &C,
    client: &str,
    provider: &str,
    customer_id: &str,
) -> Result<String, DbErr> {
    let row = customers::ActiveModel {
        client_id: Set(client.to_owned()),
        provider: Set(provider.to_owned()),
        customer_id: Set(customer_id.to_owned()),
        created_at: Set(Utc::now()),
    };
    let on_conflict =
        sea_orm::sea_query::OnConflict::columns([customers::Column::ClientId, customers::Column::Provider])
            .do_nothing()
            .to_owned();
    let inserted = customers::Entity::insert(row).on_conflict(on_conflict).exec_without_returning(db).await?;
    if inserted == 1 {
        return Ok(customer_id.to_owned());
    }
    find(db, client, provider).await?.ok_or_else(|| DbErr::RecordNotFound("customer just recorded".into()))
}

/// Whose customer this is, and at which provider.
pub async fn owner(db: &DatabaseConnection, customer_id: &str) -> Result<Option<(String, String)>, DbErr> {
    use sea_orm::{ColumnTrait, QueryFilter};
    let row = customers::Entity::find().filter(customers::Column::CustomerId.eq(customer_id)).one(db).await?;
    Ok(row.map(|c| (c.client_id, c.provider)))
}

pub async fn forget<C: ConnectionTrait>(db: &C, client: &str, provider: &str) -> Result<(), DbErr> {
    customers::Entity::delete_by_id((client.to_owned(), provider.to_owned())).exec(db).await.map(|_| ())
}
