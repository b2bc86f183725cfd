//! Saved payment methods per client.
use crate::domain::saved_method::SavedMethod;
use chrono::Utc;
use entities::payment_methods;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
};

/// Records a method, or refreshes it (a re-attached card may have a new expiry).
pub async fn upsert<C: ConnectionTrait>(
    db: &C,
    client: &str,
    provider: &str,
    method: &SavedMethod,
) -> Result<(), DbErr> {
    use payment_methods::Column as C;
    let row = payment_methods::ActiveModel {
        id: Set(method.id.as_str().to_owned()),
        client_id: Set(client.to_owned()),
        provider: Set(provider.to_owned()),
        customer_id: Set(method.customer.clone()),
        kind: Set(method.kind.clone()),
        brand: Set(method.brand.clone()),
        last4: Set(method.last4.clone()),
        exp_month: Set(method.exp_month),
        exp_year: Set(method.exp_year),
        wallet: Set(method.wallet.clone()),
        created_at: Set(Utc::now()),
    };
    let refresh =
        OnConflict::column(C::Id).update_columns([C::Brand, C::Last4, C::ExpMonth, C::ExpYear, C::Wallet]).to_owned();
    payment_methods::Entity::insert(row).on_conflict(refresh).exec_without_returning(db).await.map(|_| ())
}

pub async fn list(db: &DatabaseConnection, client: &str) -> Result<Vec<payment_methods::Model>, DbErr> {
    payment_methods::Entity::find()
        .filter(payment_methods::Column::ClientId.eq(client))
        .order_by_asc(payment_methods::Column::CreatedAt)
        .all(db)
        .await
}

pub async fn find(db: &DatabaseConnection, client: &str, id: &str) -> Result<Option<payment_methods::Model>, DbErr> {
    payment_methods::Entity::find_by_id(id.to_owned())
        .filter(payment_methods::Column::ClientId.eq(client))
        .one(db)
        .await
}

pub async fn forget<C: ConnectionTrait>(db: &C, id: &str) -> Result<(), DbErr> {
    payment_methods::Entity::delete_by_id(id.to_owned()).exec(db).await.map(|_| ())
}
