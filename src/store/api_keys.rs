//! API keys: made and revoked in the writer's steps, each with its audit line; read on every request that presents
//! one, so a revocation holds on every node at once.
use entities::api_keys as keys;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryOrder,
};

/// Records a new key (its hash) and audits who made it.
pub async fn create<C: ConnectionTrait>(
    txn: &C,
    id: String,
    name: &str,
    hash: String,
    by: &str,
) -> Result<keys::Model, DbErr> {
    let row = keys::ActiveModel {
        id: Set(id),
        name: Set(name.to_owned()),
        role: Set("service".to_owned()),
        secret_hash: Set(hash),
        created_by: Set(by.to_owned()),
        created_at: Set(chrono::Utc::now()),
        revoked_by: Set(None),
        revoked_at: Set(None),
    };
    let key = row.insert(txn).await?;
    super::controls::audit(txn, by, "create_api_key", &format!("api_key:{}", key.id), &key.name).await?;
    Ok(key)
}

pub enum Revoked {
    Done(keys::Model),
    Already(keys::Model),
    NotFound,
}

/// Revokes a key for good, and audits who did and why.
pub async fn revoke<C: ConnectionTrait>(txn: &C, id: &str, by: &str, reason: &str) -> Result<Revoked, DbErr> {
    let Some(found) = keys::Entity::find_by_id(id.to_owned()).one(txn).await? else { return Ok(Revoked::NotFound) };
    if found.revoked_at.is_some() {
        return Ok(Revoked::Already(found));
    }
    let mut row: keys::ActiveModel = found.into();
    row.revoked_by = Set(Some(by.to_owned()));
    row.revoked_at = Set(Some(chrono::Utc::now()));
    let key = row.update(txn).await?;
    super::controls::audit(txn, by, "revoke_api_key", &format!("api_key:{id}"), reason).await?;
    Ok(Revoked::Done(key))
}

pub async fn find(db: &DatabaseConnection, id: &str) -> Result<Option<keys::Model>, DbErr> {
    keys::Entity::find_by_id(id.to_owned()).one(db).await
}

pub async fn list(db: &DatabaseConnection) -> Result<Vec<keys::Model>, DbErr> {
    keys::Entity::find().order_by_desc(keys::Column::CreatedAt).all(db).await
}
