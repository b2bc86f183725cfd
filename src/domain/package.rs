//! The credit packages for sale, read from `config.toml`: what a client can buy and what it costs.
use super::money::{Credits, Currency, Money};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PackageId(String);

impl PackageId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!("`{raw}` is not a package id (lower-case letters, digits and dashes)"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub id: PackageId,
    pub name: String,
    pub price: Money,
    pub credits: Credits,
}

/// The package entry as written in `config.toml`; validated into a [`Package`].
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct PackageConfig {
    pub id: String,
    pub name: String,
    pub amount: i64,
    pub currency: String,
    pub credits: i64,
}

#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    packages: Vec<Package>,
}

impl Catalogue {
    pub fn from_config(entries: &[PackageConfig]) -> Result<Self, String> {
        let mut packages: Vec<Package> = Vec::with_capacity(entries.len());
        for entry in entries {
            let id = PackageId::parse(&entry.id)?;
            if packages.iter().any(|p| p.id == id) {
                return Err(format!("package `{}` is listed twice", entry.id));
            }
            let currency = Currency::parse(&entry.currency).map_err(|e| format!("package `{}`: {e}", entry.id))?;
            let price = Money::new(entry.amount, currency).map_err(|e| format!("package `{}`: {e}", entry.id))?;
            if entry.credits <= 0 {
                return Err(format!("package `{}` must grant a positive number of credits", entry.id));
            }
            packages.push(Package { id, name: entry.name.clone(), price, credits: Credits(entry.credits) });
        }
        Ok(Self { packages })
    }

    pub fn get(&self, id: &PackageId) -> Option<&Package> {
        self.packages.iter().find(|p| &p.id == id)
    }

    pub fn all(&self) -> &[Package] {
        &self.packages
    }
}
