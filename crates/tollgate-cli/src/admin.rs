//! `tollgate serve --admin-addr ADDR`: the admin API (Cloudflare's v4 Access API) on a
//! listener of its own, never the public one.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;
use tollgate_admin::AdminApi;
use tollgate_issue::{ApiTokens, Issuer};
use tollgate_store::Store;

use crate::CliResult;
use crate::metrics::overlaps;

#[derive(Debug, Args)]
pub(crate) struct AdminArgs {
    /// Serve the admin API (Cloudflare's v4 Access API: service tokens, applications, keys) under
    /// /client/v4 on this address: an internal one, never the public --addr. Callers need an
    /// API token (`tollgate api-token create`). Off unless given.
    #[arg(long, env = "TOLLGATE_ADMIN_ADDR", value_name = "ADDR")]
    admin_addr: Option<SocketAddr>,
}

/// The admin listener, bound before anything else starts so a taken port fails early.
pub(crate) struct ServeAdmin {
    listener: Option<tokio::net::TcpListener>,
}

impl ServeAdmin {
    /// Binds the admin listener if one is asked for; refuses the public address.
    pub(crate) async fn bind(args: &AdminArgs, public: SocketAddr) -> CliResult<Self> {
        let listener = match args.admin_addr {
            None => None,
            Some(addr) if overlaps(addr, public) => {
                return Err(format!(
                    "--admin-addr {addr} is the public listener (--addr {public}); give the admin API an internal address of its own"
                )
                .into());
            }
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("cannot listen on --admin-addr {addr}: {e}"))?,
            ),
        };
        Ok(Self { listener })
    }

    /// Starts serving (if asked) and prints where, with the account ID the paths name.
    pub(crate) async fn start(self, issuer: &Issuer, store: Arc<Store>) -> CliResult {
        let Some(listener) = self.listener else {
            return Ok(());
        };
        let addr = listener.local_addr()?;
        let api_tokens = ApiTokens::new(store.clone(), issuer.clock().clone());
        let account = api_tokens.account_id().await?;
        let router = AdminApi::new(issuer.clone(), api_tokens)
            .audit(store)
            .router();
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "the admin listener failed");
            }
        });
        println!("  admin:    http://{addr}/client/v4 (account {account})");
        Ok(())
    }
}
