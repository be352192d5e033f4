//! # tollgate-issue
//!
//! Issue Cloudflare Access JWTs in-process (work in progress).

pub mod apps;
pub mod duration;
pub mod error;
pub mod exchange;
pub mod issuer;
pub mod keys;
pub mod memory;
mod routes;
pub mod secret;
pub mod store;
pub mod tokens;

pub use apps::{AppSettings, Applications};
pub use error::{ManageError, ManageErrorKind};
pub use exchange::ExchangeLayer;
pub use issuer::{Issuer, IssuerBuilder, IssuerKeySource};
pub use memory::MemoryStore;
pub use secret::ClientSecret;
pub use store::{
    AppStore, ApplicationRecord, KeyStore, Revision, ServiceAuthPolicy, ServiceTokenRecord,
    SigningKeyRecord, StoreError, TokenDuration, TokenStore,
};
pub use tokens::{ExpiryWarning, ServiceTokens};
