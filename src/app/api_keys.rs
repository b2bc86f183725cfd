//! The platform backend's API keys (issue 18): made and revoked by an admin (or `purser api-key create`), each in a
//! writer step with its audit line; checked on every request that presents one.
use crate::domain::api_key::{NewKey, PresentedKey};
use crate::domain::ids::ClientId;
use crate::store::api_keys::{self, Revoked};
use crate::store::writer::Writer;
use entities::api_keys::Model as ApiKey;
use sea_orm::{DatabaseConnection, DbErr};

/// Makes a key acting as `name` (the service's id in spends and the audit trail); returns it with the key itself,
/// which is never stored and cannot be shown again.
pub async fn create(writer: &Writer, admin: &ClientId, name: &ClientId) -> Result<(ApiKey, String), DbErr> {
    let made = NewKey::generate();
    let (id, hash, by, name) = (made.id, made.hash, admin.as_str().to_owned(), name.as_str().to_owned());
    let key = writer.write(move |txn| Box::pin(async move { api_keys::create(txn, id, &name, hash, &by).await }));
    Ok((key.await?, made.key))
}

pub async fn revoke(writer: &Writer, admin: &ClientId, id: String, reason: String) -> Result<Revoked, DbErr> {
    let by = admin.as_str().to_owned();
    writer.write(move |txn| Box::pin(async move { api_keys::revoke(txn, &id, &by, &reason).await })).await
}

/// Who a presented key acts as, when it is a live key whose secret matches: `None` otherwise.
pub async fn authenticate(db: &DatabaseConnection, presented: &PresentedKey) -> Result<Option<ClientId>, DbErr> {
    let Some(key) = api_keys::find(db, &presented.id).await? else { return Ok(None) };
    if key.revoked_at.is_some() || !presented.matches(&key.secret_hash) {
        return Ok(None);
    }
    Ok(ClientId::parse(&key.name).ok())
}
