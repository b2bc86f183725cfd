//! Bearer tokens: JWTs with `sub`, `role`, `email` and `exp`, and `iss`/`aud` when configured. HS256 with a shared
//! secret, or EdDSA with the platform's public key (the platform signs; Purser only verifies). `purser token` mints
//! HS256 tokens for development and tests with the same secret.
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
    /// The platform's backend (issue 18): reads balances and ledgers, spends and gives back credits, nothing else.
    Service,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
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
    #[error("the bearer token was issued by someone else, or for another service")]
    WrongAudience,
}

#[derive(Clone)]
pub struct Authenticator {
    /// `None` with a public key: the platform signs, Purser cannot.
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    validation: Validation,
    issuer: Option<String>,
    audience: Option<String>,
}

impl Authenticator {
    pub fn from_settings(settings: &Settings) -> Result<Self, String> {
        let auth = &settings.auth;
        let (algorithm, encoding, decoding) = if let Some(key) = &auth.ed25519_public_key {
            let key = hex::decode(key.trim())
                .ok()
                .filter(|k| k.len() == 32)
                .ok_or("auth.ed25519_public_key must be the 32-byte public key as 64 hex characters")?;
            (Algorithm::EdDSA, None, DecodingKey::from_ed_der(&key))
        } else {
            let secret = match &auth.jwt_secret {
                Some(secret) if !secret.is_empty() => secret.expose().to_owned(),
                _ if settings.development_tools() => {
                    tracing::warn!(
                        "auth.jwt_secret is not set: using the built-in development secret (development mode only)"
                    );
                    DEVELOPMENT_SECRET.to_owned()
                }
                _ => {
                    return Err("auth.jwt_secret (PURSER_AUTH__JWT_SECRET) is required: the built-in development \
                                secret is only for development on a loopback server.host"
                        .into());
                }
            };
            let encoding = EncodingKey::from_secret(secret.as_bytes());
            (Algorithm::HS256, Some(encoding), DecodingKey::from_secret(secret.as_bytes()))
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = 0;
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &auth.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &auth.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Ok(Self { encoding, decoding, validation, issuer: auth.issuer.clone(), audience: auth.audience.clone() })
    }

    pub fn mint(&self, user: &ClientId, role: Role, email: Option<String>, ttl: Duration) -> Result<String, String> {
        let encoding = self.encoding.as_ref().ok_or(
            "tokens are signed by the platform's private key (auth.ed25519_public_key): Purser cannot mint them",
        )?;
        let exp = jsonwebtoken::get_current_timestamp() + ttl.as_secs();
        let claims = Claims {
            sub: user.as_str().to_owned(),
            role,
            email,
            exp,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, encoding).map_err(|e| e.to_string())
    }

    pub fn verify_header(&self, header: Option<&str>) -> Result<Caller, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let token = header.strip_prefix("Bearer ").ok_or(AuthError::Malformed)?.trim();
        use jsonwebtoken::errors::ErrorKind;
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => AuthError::Forged,
                ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => AuthError::WrongAudience,
                _ => AuthError::Malformed,
            })?;
        let id = ClientId::parse(&data.claims.sub).map_err(|_| AuthError::Malformed)?;
        Ok(Caller { id, role: data.claims.role, email: data.claims.email })
    }
}
