//! `tollgate serve`'s router: every request to the application its host and path belong to.
//!
//! The table is built from the issuer's snapshot and rebuilt when the applications' revision
//! moves, so an application created or changed by another CLI call or instance is served
//! within the issuer's reload bound, without a restart. Each application is an
//! [`ExchangeLayer`] in front of either its origin (a proxy) or the identity echo; the layers
//! outlive rebuilds, so the failure throttle keeps counting across them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use http::header::HOST;
use http::uri::PathAndQuery;
use http::{Request, Uri};
use tollgate_core::app_domain::{AppDomain, OriginUrl, normalize_path};
use tollgate_core::{DomainTable, Rejection, RejectionKind};
use tollgate_issue::{ApplicationRecord, ExchangeLayer, Issuer, Throttle};
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};

/// A service answering one application's requests after the exchange.
pub(crate) type AppService = BoxCloneSyncService<Request<Body>, Response, Infallible>;

/// Builds the service for an application with an origin (the proxy), or says why it cannot.
pub(crate) type MakeOrigin = Arc<dyn Fn(&OriginUrl) -> Result<AppService, String> + Send + Sync>;

/// Which application answers requests no domain covers.
#[derive(Debug, Clone)]
pub(crate) enum Fallback {
    /// This one (`--app NAME`), always.
    App(String),
    /// This one only while no application has a domain (the first-run demo).
    WhileNoDomains(String),
}

/// `tollgate serve`'s router (see the [module docs](self)). Cheap to clone.
#[derive(Clone)]
pub(crate) struct AppRouter {
    shared: Arc<Shared>,
}

struct Shared {
    issuer: Issuer,
    throttle: Throttle,
    fallback: Fallback,
    echo: AppService,
    make_origin: MakeOrigin,
    table: ArcSwap<Table>,
    /// One rebuild at a time; the layers (and their throttle counters) by application name.
    layers: Mutex<HashMap<String, ExchangeLayer>>,
}

/// What the router serves at one revision of the applications.
struct Table {
    revision: u64,
    domains: DomainTable<Route>,
    fallback: Option<Route>,
}

#[derive(Clone)]
struct Route {
    service: AppService,
}

impl fmt::Debug for AppRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let table = self.shared.table.load();
        f.debug_struct("AppRouter")
            .field("revision", &table.revision)
            .field("domains", &table.domains.len())
            .field("fallback", &self.shared.fallback)
            .finish_non_exhaustive()
    }
}

impl AppRouter {
    /// A router over `issuer`'s applications: `echo` answers applications without an
    /// origin, `make_origin` builds the proxy of those with one. Fails when the current
    /// applications cannot be served (a stored origin the proxy refuses, say).
    pub(crate) fn new(
        issuer: Issuer,
        throttle: Throttle,
        fallback: Fallback,
        echo: AppService,
        make_origin: MakeOrigin,
    ) -> Result<Self, String> {
        let shared = Arc::new(Shared {
            issuer,
            throttle,
            fallback,
            echo,
            make_origin,
            table: ArcSwap::from_pointee(Table {
                revision: u64::MAX,
                domains: DomainTable::new(),
                fallback: None,
            }),
            layers: Mutex::new(HashMap::new()),
        });
        let (revision, apps) = shared.issuer.applications();
        let (table, problems) = {
            let mut layers = shared.layers.lock().unwrap_or_else(PoisonError::into_inner);
            shared.build(&mut layers, revision, &apps)
        };
        if let Some(problem) = problems.into_iter().next() {
            return Err(problem);
        }
        shared.table.store(Arc::new(table));
        Ok(Self { shared })
    }

    /// The applications served by domain, as `(domain, name)`, sorted; and the fallback's name.
    pub(crate) fn describe(&self) -> (Vec<(String, String)>, Option<String>) {
        let (_, apps) = self.shared.issuer.applications();
        let mut routed: Vec<(String, String)> = apps
            .iter()
            .filter_map(|a| Some((a.domain.clone()?, a.name.clone())))
            .collect();
        routed.sort();
        (routed, self.shared.fallback_name(&apps))
    }
}

impl Shared {
    fn fallback_name(&self, apps: &[ApplicationRecord]) -> Option<String> {
        match &self.fallback {
            Fallback::App(name) => Some(name.clone()),
            Fallback::WhileNoDomains(name) => apps
                .iter()
                .all(|a| a.domain.is_none())
                .then(|| name.clone()),
        }
    }

    /// The table for `apps`. An application that cannot be served (its origin refused by the
    /// proxy, its layer not built) is left out and named in the problems, never half-served.
    fn build(
        &self,
        layers: &mut HashMap<String, ExchangeLayer>,
        revision: u64,
        apps: &[ApplicationRecord],
    ) -> (Table, Vec<String>) {
        layers.retain(|name, _| apps.iter().any(|a| &a.name == name));
        let mut problems = Vec::new();
        let mut routes: HashMap<&str, Route> = HashMap::new();
        for app in apps {
            match self.route(layers, app) {
                Ok(route) => {
                    routes.insert(&app.name, route);
                }
                Err(problem) => problems.push(format!("application {:?}: {problem}", app.name)),
            }
        }
        let mut domains = DomainTable::new();
        for app in apps {
            let (Some(domain), Some(route)) = (&app.domain, routes.get(app.name.as_str())) else {
                continue;
            };
            let inserted = AppDomain::parse(domain)
                .map_err(|e| e.to_string())
                .and_then(|d| domains.insert(d, route.clone()).map_err(|e| e.to_string()));
            if let Err(problem) = inserted {
                problems.push(format!("application {:?}: {problem}", app.name));
            }
        }
        let fallback = self
            .fallback_name(apps)
            .and_then(|name| routes.get(name.as_str()).cloned());
        for problem in &problems {
            tracing::error!(%problem, "application not served");
        }
        let table = Table {
            revision,
            domains,
            fallback,
        };
        (table, problems)
    }

    fn route(
        &self,
        layers: &mut HashMap<String, ExchangeLayer>,
        app: &ApplicationRecord,
    ) -> Result<Route, String> {
        let layer = match layers.get(&app.name) {
            Some(layer) => layer.clone(),
            None => {
                let layer = self
                    .issuer
                    .exchange_layer(&app.name)
                    .map_err(|e| e.to_string())?
                    .with_throttle(self.throttle.clone());
                layers.insert(app.name.clone(), layer.clone());
                layer
            }
        };
        let inner = match &app.origin {
            Some(origin) => {
                let origin = OriginUrl::parse(origin).map_err(|e| e.to_string())?;
                (self.make_origin)(&origin)?
            }
            None => self.echo.clone(),
        };
        Ok(Route {
            service: BoxCloneSyncService::new(layer.layer(inner)),
        })
    }

    /// The table for the issuer's current applications, rebuilt if they changed.
    fn current(&self) -> Arc<Table> {
        let table = self.table.load_full();
        let revision = self.issuer.applications_revision();
        if table.revision == revision {
            return table;
        }
        // One rebuild per change: requests that raced here behind the first one find its table.
        let mut layers = self.layers.lock().unwrap_or_else(PoisonError::into_inner);
        let table = self.table.load_full();
        if table.revision == self.issuer.applications_revision() {
            return table;
        }
        let (revision, apps) = self.issuer.applications();
        let (fresh, _) = self.build(&mut layers, revision, &apps);
        let fresh = Arc::new(fresh);
        self.table.store(fresh.clone());
        fresh
    }
}

/// The request's host: the URI's authority (HTTP/2's `:authority`, an absolute-form target)
/// or the one `Host` header; two that differ, or two `Host` lines, are ambiguous.
fn request_host(request: &Request<Body>) -> Result<Option<&str>, Rejection> {
    let ambiguous = || Rejection::new(RejectionKind::AmbiguousRequest);
    let mut hosts = request.headers().get_all(HOST).iter();
    let header = match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => return Err(ambiguous().with_detail("two Host headers")),
        (Some(value), None) => Some(
            value
                .to_str()
                .map_err(|_| ambiguous().with_detail("Host is not text"))?,
        ),
        (None, _) => None,
    };
    let authority = request.uri().authority().map(|a| a.as_str());
    match (authority, header) {
        (Some(a), Some(h)) if !a.eq_ignore_ascii_case(h) => {
            Err(ambiguous().with_detail("the target and Host name different hosts"))
        }
        (Some(host), _) | (None, Some(host)) => Ok(Some(host)),
        (None, None) => Ok(None),
    }
}

/// The request with its path replaced by the normalised one (the origin sees what was
/// matched, never a spelling it might read differently).
fn with_path(request: &mut Request<Body>, path: &str) -> Result<(), Rejection> {
    let query = request.uri().query();
    let path_and_query = match query {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut parts = request.uri().clone().into_parts();
    parts.path_and_query = Some(
        PathAndQuery::try_from(path_and_query)
            .map_err(|_| Rejection::new(RejectionKind::AmbiguousRequest))?,
    );
    *request.uri_mut() =
        Uri::from_parts(parts).map_err(|_| Rejection::new(RejectionKind::AmbiguousRequest))?;
    Ok(())
}

impl Service<Request<Body>> for AppRouter {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let table = self.shared.current();
        let refuse = |rejection: Rejection| -> Self::Future {
            Box::pin(async move { Ok(rejection.into_response()) })
        };
        // Matched while the request is borrowed: no copy of the host, and of the path only
        // when normalising changed it.
        let (service, normalized) = {
            let host = match request_host(&request) {
                Ok(host) => host,
                Err(rejection) => return refuse(rejection),
            };
            if let Some(host) = host
                && tollgate_core::app_domain::request_host(host).is_none()
            {
                let rejection = Rejection::new(RejectionKind::AmbiguousRequest);
                return refuse(rejection.with_detail("Host is not a host name"));
            }
            let path = match normalize_path(request.uri().path()) {
                Ok(path) => path,
                Err(e) => {
                    return refuse(
                        Rejection::new(RejectionKind::AmbiguousRequest).with_detail(e.reason()),
                    );
                }
            };
            let route = host
                .and_then(|host| table.domains.find(host, &path))
                .map(|(_, route)| route)
                .or(table.fallback.as_ref());
            let Some(route) = route else {
                return refuse(Rejection::new(RejectionKind::NoApplication));
            };
            let normalized = match path {
                Cow::Owned(path) if path != request.uri().path() => Some(path),
                _ => None,
            };
            (route.service.clone(), normalized)
        };
        if let Some(path) = normalized
            && let Err(rejection) = with_path(&mut request, &path)
        {
            return refuse(rejection);
        }
        Box::pin(service.oneshot(request))
    }
}
