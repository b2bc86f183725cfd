//! Bearer tokens: HS256 JWTs with `sub`, `role`, `email` and `exp`. The API only verifies them; `purser token` mints
//! them for development and tests with the same secret.
use crate::domain::ids::ClientId;
use crate::settings::Settings;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Used only with the development tools (development mode, no `auth.jwt_secret`, a loopback host); anywhere else
/// Purser refuses to start without a secret of its own.
pub const DEVELOPMENT_SECRET: &str = "purser-development-secret-not-for-production";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Client,
    Admin,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub exp: u64,
}

/// The verified caller of a request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub id: ClientId,
    pub role: Role,
    pub email: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing bearer token: send `Authorization: Bearer <token>`")]
    Missing,
    #[error("the bearer token is malformed")]
    Malformed,
    #[error("the bearer token's signature is invalid")]
    Forged,
    #[error("the bearer token has expired")]
    Expired,
}

#[derive(Clone)]
pub struct Authenticator {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Authenticator {
    pub fn from_settings(settings: &Settings) -> Result<Self, String> {
        let secret = match &settings.auth.jwt_secret {
            Some(secret) if !secret.is_empty() => secret.expose().to_owned(),
            _ if settings.development_tools() => {
                tracing::warn!(
                    "auth.jwt_secret is not set: using the built-in development secret (development mode only)"
                );
                DEVELOPMENT_SECRET.to_owned()
            }
            _ => {
                return Err(
                    "auth.jwt_secret (PURSER_AUTH__JWT_SECRET) is required: the built-in development secret is \
                            only for development on a loopback server.host"
                        .into(),
                );
            }
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        })
    }

    pub fn mint(&self, user: &ClientId, role: Role, email: Option<String>, ttl: Duration) -> Result<String, String> {
        let exp = jsonwebtoken::get_current_timestamp() + ttl.as_secs();
        let claims = Claims { sub: user.as_str().to_owned(), role, email, exp };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(|e| e.to_string())
    }

    pub fn verify_header(&self, header: Option<&str>) -> Result<Caller, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let token = header.strip_prefix("Bearer ").ok_or(AuthError::Malformed)?.trim();
        use jsonwebtoken::errors::ErrorKind;
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidSignature => AuthError::Forged,
                _ => AuthError::Malformed,
            })?;
        let id = ClientId::parse(&data.claims.sub).map_err(|_| AuthError::Malformed)?;
        Ok(Caller { id, role: data.claims.role, email: data.claims.email })
    }
}
