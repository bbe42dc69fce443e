//! The MLFO's configuration file: role, listen addresses, parent, inventory
//! of node agents, catalog and state database.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest configuration file read.
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// Which side of Mo-Mo an MLFO is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Takes intents from users, starts clients, asks its parent for servers.
    Edge,
    /// Places FL servers on aggregators for the edge MLFOs.
    Cloud,
}

/// What a node agent in the inventory is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentRole {
    /// Runs FL servers (cloud side).
    Aggregator,
    /// Runs FL clients (edge side).
    Client,
    /// Runs edge aggregators on a campus (edge side, hierarchical FL).
    EdgeAggregator,
}

/// One node agent the MLFO may use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentEntry {
    /// Host name, e.g. `fc.10` or `fed.1`.
    pub name: String,
    /// The agent's REST base URL, e.g. `http://10.0.1.10:5000`.
    pub url: String,
    /// Aggregator or client.
    pub role: AgentRole,
    /// Cohort the host belongs to, e.g. `cohort1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort: Option<String>,
    /// Campus (switch) of a client or an edge aggregator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campus: Option<String>,
    /// FL servers an aggregator (or edge aggregators an edge aggregator
    /// host) runs at once (default 1).
    #[serde(default = "one")]
    pub capacity: usize,
}

fn one() -> usize {
    1
}

impl AgentEntry {
    /// An agent known from a placement (no cohort, capacity 1), to call it.
    pub fn placed(name: &str, url: &str, role: AgentRole) -> Self {
        Self {
            name: name.to_owned(),
            url: url.to_owned(),
            role,
            cohort: None,
            campus: None,
            capacity: 1,
        }
    }

    /// The last octet of the agent's IPv4 address: what the prototype's
    /// `ipstart` arithmetic compares.
    pub fn last_octet(&self) -> Option<u8> {
        match self.ip()? {
            IpAddr::V4(ip) => Some(ip.octets()[3]),
            IpAddr::V6(_) => None,
        }
    }

    /// The IP address in the agent's URL, when it is a literal address.
    pub fn ip(&self) -> Option<IpAddr> {
        let rest = self.url.split_once("://").map_or(&*self.url, |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or(rest);
        authority
            .parse::<SocketAddr>()
            .map(|s| s.ip())
            .or_else(|_| authority.parse::<IpAddr>())
            .ok()
    }
}

/// How an edge MLFO asks its cloud for FL servers over Mo-Mo.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MomoMode {
    /// One Deploy per target of an intent (the prototype with its edge MLFO on).
    #[default]
    Aggregated,
    /// One Deploy per client, each answered with the same shared server (the
    /// prototype with its edge MLFO off, `mlfostatus: disabled`).
    PerClient,
}

impl MomoMode {
    /// The mode's name, as in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            MomoMode::Aggregated => "aggregated",
            MomoMode::PerClient => "per-client",
        }
    }
}

/// Longest time limit the configuration may set, seconds (a year).
pub const MAX_TIMEOUT_S: f64 = 365.0 * 24.0 * 3600.0;

/// Time limits and retries of the MLFO's calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// Seconds one SBI (node agent) call may take.
    pub sbi_s: f64,
    /// Attempts of an SBI call that fails to connect or times out.
    pub sbi_attempts: u32,
    /// Seconds the Mo-Mo Deploy call may take.
    pub momo_s: f64,
    /// Seconds a job may train before the MLFO gives up (unless the intent sets `deadline_s`).
    pub job_s: f64,
    /// Seconds between polls of a running job.
    pub poll_s: f64,
    /// Seconds an intent may wait in the admission queue for an aggregator
    /// (unless the intent sets `deadline_s`, which counts from its arrival).
    pub queue_s: f64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            sbi_s: 10.0,
            sbi_attempts: 3,
            momo_s: 30.0,
            job_s: 3600.0,
            poll_s: 0.5,
            queue_s: 600.0,
        }
    }
}

impl Timeouts {
    /// The SBI call limit.
    pub fn sbi(&self) -> Duration {
        Duration::from_secs_f64(self.sbi_s)
    }
    /// The Mo-Mo call limit.
    pub fn momo(&self) -> Duration {
        Duration::from_secs_f64(self.momo_s)
    }
    /// The poll interval.
    pub fn poll(&self) -> Duration {
        Duration::from_secs_f64(self.poll_s)
    }
}

/// What the cloud MLFO asks FL servers to do beyond the intent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerOptions {
    /// Evaluate the global model on the dataset's test split after every round
    /// (the aggregator needs the dataset).
    pub central_evaluation: bool,
    /// Also evaluate each global model on every client's held-out data
    /// (Flower's federated evaluation, `fraction_evaluate` 1; default);
    /// `false`: central evaluation only, as simulations at scale do.
    pub federated_evaluation: bool,
    /// Seconds each client may take per round (default 600): a client that
    /// joined and never answers, or whose host died, fails its part of the
    /// round instead of holding every round up; `null`: no limit.
    pub round_timeout_s: Option<f64>,
    /// Seed of client sampling.
    pub seed: u64,
}

/// Default per-round limit of each client, seconds.
pub const DEFAULT_ROUND_TIMEOUT_S: f64 = 600.0;

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            central_evaluation: false,
            federated_evaluation: true,
            round_timeout_s: Some(DEFAULT_ROUND_TIMEOUT_S),
            seed: 0,
        }
    }
}

/// What the edge MLFO asks FL clients to do beyond the intent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientOptions {
    /// Partition scheme of the cohort's data (iid, shards, dirichlet:A, contiguous).
    pub partition: String,
    /// Seed shared by a cohort's clients.
    pub seed: u64,
    /// Training threads per client.
    pub threads: Option<usize>,
    /// A share of every cohort that attacks the federation (robustness
    /// experiments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attack: Option<AttackOptions>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            partition: "iid".to_owned(),
            seed: 0,
            threads: None,
            attack: None,
        }
    }
}

/// Clients that attack: the first `round(share x N)` of a cohort of `N`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackOptions {
    /// `sign-flip`, `gaussian` or `label-flip`.
    pub kind: String,
    /// Share of each cohort, in [0, 1].
    pub share: f64,
}

impl AttackOptions {
    /// Whether client `index` of a cohort of `clients` attacks.
    pub fn attacks(&self, index: usize, clients: usize) -> bool {
        (index as f64) < (self.share * clients as f64).round()
    }

    /// Checks the kind and the share; the error names the field (`kind`,
    /// `share`) for the caller to prefix.
    pub fn check(&self) -> Result<(), String> {
        if !["sign-flip", "gaussian", "label-flip"].contains(&self.kind.as_str()) {
            return Err(format!(
                "kind: must be sign-flip, gaussian or label-flip, got {:?}",
                self.kind
            ));
        }
        if !(0.0..=1.0).contains(&self.share) {
            return Err(format!(
                "share: must be a share in [0, 1], got {}",
                self.share
            ));
        }
        Ok(())
    }
}

/// The whole configuration of one MLFO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlfoConfig {
    /// Name shown in logs and metrics, e.g. `mo.1`.
    #[serde(default = "default_name")]
    pub name: String,
    /// Edge or cloud.
    pub role: Role,
    /// REST listen address (prototype port 8000).
    pub listen: SocketAddr,
    /// Mo-Mo gRPC listen address (cloud; prototype port 9000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momo_listen: Option<SocketAddr>,
    /// The cloud MLFO's Mo-Mo URL, e.g. `http://10.0.0.1:9000` (edge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// SQLite database holding intents, jobs, placements and rounds.
    pub state: PathBuf,
    /// A catalog file merged over the built-in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<PathBuf>,
    /// The node agents this MLFO drives.
    #[serde(default)]
    pub inventory: Vec<AgentEntry>,
    /// Time limits and retries.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Limits of the REST server.
    #[serde(default)]
    pub http: HttpOptions,
    /// Bearer tokens: accepted from users and peers, presented to agents
    /// and the parent. Unset: no authentication.
    #[serde(default)]
    pub auth: AuthOptions,
    /// TLS: this MLFO's certificate for its REST API and Mo-Mo, and the CA
    /// it trusts for agents, the controller and its parent. Unset: plain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsOptions>,
    /// FL server options (cloud).
    #[serde(default)]
    pub server: ServerOptions,
    /// FL client options (edge).
    #[serde(default)]
    pub client: ClientOptions,
    /// How FL servers are asked for over Mo-Mo (edge): `aggregated` or `per-client`.
    #[serde(default)]
    pub momo: MomoMode,
    /// The testbed's network controller, e.g. `http://127.0.0.1:8181`
    /// (edge): an intent's `max_bandwidth_mbps` becomes a meter on each of
    /// its clients' links through its `/v1/meters` API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_controller: Option<String>,
    /// Declared figures of the path from the campuses to the cloud (edge),
    /// the inputs of the cost model that chooses for `aggregation: auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkFigures>,
}

/// The MLFO's bearer-token files (one token per line; see
/// [`httpd::auth`]). A file left unset leaves that side open.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthOptions {
    /// Tokens accepted on the REST API (users; `/healthz` and `/metrics`
    /// stay open).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_tokens: Option<PathBuf>,
    /// Tokens accepted on Mo-Mo (the edge MLFOs; cloud).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_tokens: Option<PathBuf>,
    /// The token this MLFO presents to its node agents, the network
    /// controller and its parent (the file's first token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<PathBuf>,
}

/// The MLFO's TLS files (PEM, as `dmo certs init` writes them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsOptions {
    /// This MLFO's certificate (REST API, and Mo-Mo on a cloud).
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// The CA whose certificates it trusts (agents, controller, parent).
    pub ca: PathBuf,
}

/// The MLFO's TLS material, read.
#[derive(Clone)]
pub struct TlsMaterial {
    /// The REST server's configuration.
    pub server: std::sync::Arc<rustls::ServerConfig>,
    /// The certificate and key, for Mo-Mo (tonic).
    pub identity: (Vec<u8>, Vec<u8>),
    /// The roots its clients trust.
    pub roots: httpd::tls::Roots,
}

impl TlsOptions {
    /// Reads the files; the error names the field.
    pub fn read(&self) -> Result<TlsMaterial, String> {
        let server = httpd::tls::server_config(&self.cert, &self.key)
            .map_err(|e| format!("tls.cert/tls.key: {e}"))?;
        let roots = httpd::tls::Roots::read(&self.ca).map_err(|e| format!("tls.ca: {e}"))?;
        let read = |field: &str, p: &Path| {
            std::fs::read(p).map_err(|e| format!("tls.{field}: {}: {e}", p.display()))
        };
        Ok(TlsMaterial {
            server,
            identity: (read("cert", &self.cert)?, read("key", &self.key)?),
            roots,
        })
    }

    fn relative_to(&mut self, base: &Path) {
        for path in [&mut self.cert, &mut self.key, &mut self.ca] {
            *path = base.join(&*path);
        }
    }
}

/// The MLFO's tokens, read from the files [`AuthOptions`] names.
#[derive(Clone, Default)]
pub struct Credentials {
    /// Accepted on the REST API.
    pub users: Option<httpd::auth::Tokens>,
    /// Accepted on Mo-Mo.
    pub peers: Option<httpd::auth::Tokens>,
    /// Presented to agents, the controller and the parent.
    pub token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("users", &self.users)
            .field("peers", &self.peers)
            .field("token", &self.token.as_ref().map(|_| "(redacted)"))
            .finish()
    }
}

impl AuthOptions {
    /// Reads the token files; the error names the field.
    pub fn read(&self) -> Result<Credentials, String> {
        let tokens = |field: &str, path: &Option<PathBuf>| {
            path.as_deref()
                .map(httpd::auth::Tokens::read)
                .transpose()
                .map_err(|e| format!("auth.{field}: {e}"))
        };
        Ok(Credentials {
            users: tokens("user_tokens", &self.user_tokens)?,
            peers: tokens("peer_tokens", &self.peer_tokens)?,
            token: self
                .token
                .as_deref()
                .map(httpd::auth::read_token)
                .transpose()
                .map_err(|e| format!("auth.token: {e}"))?,
        })
    }

    /// The files, relative to `base` (the configuration's directory).
    fn relative_to(&mut self, base: &Path) {
        for path in [
            &mut self.user_tokens,
            &mut self.peer_tokens,
            &mut self.token,
        ] {
            *path = path.take().map(|p| base.join(p));
        }
    }
}

/// Limits of the MLFO's REST server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpOptions {
    /// Connections open at once; one more waits up to 2 s for a slot, then
    /// is answered 503 and closed.
    pub max_connections: usize,
    /// Seconds a client may take to send a request's headers, and that an
    /// idle keep-alive connection stays open.
    pub header_timeout_s: f64,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            max_connections: httpd::DEFAULT_MAX_CONNECTIONS,
            header_timeout_s: 10.0,
        }
    }
}

impl HttpOptions {
    /// The server's limits.
    pub fn limits(&self) -> httpd::Limits {
        httpd::Limits {
            max_connections: self.max_connections,
            header_timeout: Duration::from_secs_f64(self.header_timeout_s),
            ..httpd::Limits::default()
        }
    }

    fn check(&self) -> Result<(), String> {
        if !(1..=65_536).contains(&self.max_connections) {
            return Err(format!(
                "http.max_connections: must be a whole number in 1..=65536, got {}",
                self.max_connections
            ));
        }
        if !(self.header_timeout_s.is_finite() && (0.1..=3600.0).contains(&self.header_timeout_s)) {
            return Err(format!(
                "http.header_timeout_s: must be seconds in [0.1, 3600], got {}",
                self.header_timeout_s
            ));
        }
        Ok(())
    }
}

/// The network as the edge MLFO's cost model sees it, declared in its
/// configuration (`dmo run` writes the topology's figures).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkFigures {
    /// Bottleneck bandwidth from the campuses to the cloud aggregator, Mbit/s.
    pub wan_mbit: f64,
    /// Round-trip time from a campus to the cloud aggregator, ms.
    pub rtt_ms: f64,
    /// Bandwidth of a campus link (a client's, an edge aggregator's), Mbit/s.
    pub campus_mbit: f64,
    /// Seconds a client's local training takes per round (default 0),
    /// used where the MLFO cannot time a client (no agent answers its
    /// training probe).
    #[serde(default)]
    pub train_s: f64,
    /// Cores that all client hosts share (one machine: `dmo run` declares
    /// its cores); a round's training then takes longer when more clients
    /// train at once than the cores hold. Unset: each client has its own host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_cores: Option<f64>,
}

impl NetworkFigures {
    /// Every figure is a finite number in its range.
    fn check(&self) -> Result<(), String> {
        let figures = [
            ("wan_mbit", self.wan_mbit, false),
            ("campus_mbit", self.campus_mbit, false),
            ("rtt_ms", self.rtt_ms, true),
            ("train_s", self.train_s, true),
        ];
        let cores = self.shared_cores.map(|c| ("shared_cores", c, false));
        for (name, value, zero_ok) in figures.into_iter().chain(cores) {
            let ok = value.is_finite() && (value > 0.0 || (zero_ok && value == 0.0));
            if !ok {
                let rule = if zero_ok { ">= 0" } else { "> 0" };
                return Err(format!(
                    "network.{name}: must be a finite number {rule}, got {value}"
                ));
            }
        }
        Ok(())
    }
}

fn default_name() -> String {
    "mlfo".to_owned()
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {problem}")]
pub struct ConfigError {
    /// The file, as given.
    pub file: String,
    /// What is wrong and how to fix it.
    pub problem: String,
}

impl MlfoConfig {
    /// Reads and checks the configuration in `path` (YAML or JSON).
    pub fn load(path: &Path) -> Result<MlfoConfig, ConfigError> {
        let file = path.display().to_string();
        let fail = |problem: String| ConfigError {
            file: file.clone(),
            problem,
        };
        let size = std::fs::metadata(path)
            .map_err(|e| fail(e.to_string()))?
            .len();
        if size > MAX_CONFIG_BYTES {
            return Err(fail(format!(
                "{size} bytes, more than the {MAX_CONFIG_BYTES}-byte limit"
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let mut config = Self::from_yaml(&file, &text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.state = base.join(&config.state);
        config.catalog = config.catalog.map(|c| base.join(c));
        config.auth.relative_to(base);
        if let Some(tls) = &mut config.tls {
            tls.relative_to(base);
        }
        Ok(config)
    }

    /// Parses and checks a configuration; `file` names it in errors.
    pub fn from_yaml(file: &str, text: &str) -> Result<MlfoConfig, ConfigError> {
        let config: MlfoConfig = yaml_serde::from_str(text).map_err(|e| ConfigError {
            file: file.to_owned(),
            problem: e.to_string(),
        })?;
        config.check().map_err(|problem| ConfigError {
            file: file.to_owned(),
            problem,
        })?;
        Ok(config)
    }

    /// Checks what serde cannot: role-specific fields, unique names, URLs, limits.
    fn check(&self) -> Result<(), String> {
        match self.role {
            Role::Edge if self.parent.is_none() => {
                return Err(
                    "parent: an edge MLFO needs its cloud MLFO's Mo-Mo URL, e.g. http://10.0.0.1:9000"
                        .to_owned(),
                );
            }
            Role::Cloud if self.momo_listen.is_none() => {
                return Err(
                    "momo_listen: a cloud MLFO needs a Mo-Mo listen address, e.g. 10.0.0.1:9000"
                        .to_owned(),
                );
            }
            _ => {}
        }
        if let Some(parent) = &self.parent
            && !(parent.starts_with("http://") || parent.starts_with("https://"))
        {
            return Err(format!(
                "parent: must be an http:// URL such as http://10.0.0.1:9000, got {parent:?}"
            ));
        }
        if let Some(url) = &self.network_controller
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!(
                "network_controller: must be an http:// or https:// URL such as http://127.0.0.1:8181, got {url:?}"
            ));
        }
        if let Some(network) = &self.network {
            network.check()?;
        }
        self.http.check()?;
        if let Some(attack) = &self.client.attack {
            attack.check().map_err(|e| format!("client.attack.{e}"))?;
        }
        let mut names = BTreeSet::new();
        for (i, agent) in self.inventory.iter().enumerate() {
            if !names.insert(agent.name.as_str()) {
                return Err(format!(
                    "inventory[{i}].name: {:?} is listed twice; host names must be unique",
                    agent.name
                ));
            }
            if !(agent.url.starts_with("http://") || agent.url.starts_with("https://")) {
                return Err(format!(
                    "inventory[{i}].url: must be an http:// or https:// URL such as http://10.0.1.10:5000, got {:?}",
                    agent.url
                ));
            }
            if agent.capacity == 0 {
                return Err(format!("inventory[{i}].capacity: must be >= 1, got 0"));
            }
        }
        let t = &self.timeouts;
        for (field, v) in [
            ("sbi_s", t.sbi_s),
            ("momo_s", t.momo_s),
            ("job_s", t.job_s),
            ("poll_s", t.poll_s),
            ("queue_s", t.queue_s),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= MAX_TIMEOUT_S) {
                return Err(format!(
                    "timeouts.{field}: must be seconds in (0, {MAX_TIMEOUT_S}], got {v}"
                ));
            }
        }
        if let Some(v) = self.server.round_timeout_s
            && !(v.is_finite() && v > 0.0 && v <= node::spec::MAX_ROUND_TIMEOUT_S)
        {
            return Err(format!(
                "server.round_timeout_s: must be seconds in (0, {}] or null, got {v}",
                node::spec::MAX_ROUND_TIMEOUT_S
            ));
        }
        if t.sbi_attempts == 0 {
            return Err("timeouts.sbi_attempts: must be >= 1, got 0".to_owned());
        }
        Ok(())
    }

    /// Agents of `role`, in inventory order.
    pub fn agents(&self, role: AgentRole) -> impl Iterator<Item = &AgentEntry> {
        self.inventory.iter().filter(move |a| a.role == role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EDGE: &str = "
role: edge
listen: 127.0.0.1:8000
parent: http://127.0.0.1:9000
state: edge.sqlite
inventory:
  - { name: fc.10, url: 'http://127.0.1.10:5000', role: client, cohort: c1 }
  - { name: fc.11, url: 'http://127.0.1.11:5000', role: client }
";

    #[test]
    fn reads_an_edge_config_with_defaults() {
        let c = MlfoConfig::from_yaml("edge.yaml", EDGE).unwrap();
        assert_eq!(c.role, Role::Edge);
        assert_eq!(c.inventory[0].last_octet(), Some(10));
        assert_eq!(c.inventory[1].capacity, 1);
        assert_eq!(c.timeouts.sbi_attempts, 3);
        assert_eq!(c.agents(AgentRole::Client).count(), 2);
    }

    #[test]
    fn names_the_field_to_fix() {
        let no_parent = EDGE.replace("parent: http://127.0.0.1:9000\n", "");
        let e = MlfoConfig::from_yaml("edge.yaml", &no_parent).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("edge.yaml: parent: an edge MLFO needs"),
            "{e}"
        );

        let twice = EDGE.replace("fc.11", "fc.10");
        let e = MlfoConfig::from_yaml("edge.yaml", &twice).unwrap_err();
        assert_eq!(
            e.to_string(),
            "edge.yaml: inventory[1].name: \"fc.10\" is listed twice; host names must be unique"
        );

        let controller = format!("{EDGE}network_controller: 127.0.0.1:8181\n");
        let e = MlfoConfig::from_yaml("edge.yaml", &controller).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("edge.yaml: network_controller: must be an http:// or https:// URL"),
            "{e}"
        );
        let controller = format!("{EDGE}network_controller: http://127.0.0.1:8181\n");
        let c = MlfoConfig::from_yaml("edge.yaml", &controller).unwrap();
        assert_eq!(
            c.network_controller.as_deref(),
            Some("http://127.0.0.1:8181")
        );

        for (bad, message) in [
            (
                "wan_mbit: 0, rtt_ms: 48, campus_mbit: 500",
                "network.wan_mbit: must be a finite number > 0, got 0",
            ),
            (
                "wan_mbit: 20, rtt_ms: -1, campus_mbit: 500",
                "network.rtt_ms: must be a finite number >= 0, got -1",
            ),
            (
                "wan_mbit: 20, rtt_ms: 48, campus_mbit: .inf",
                "network.campus_mbit: must be a finite number > 0, got inf",
            ),
            (
                "wan_mbit: 20, rtt_ms: 48, campus_mbit: 500, shared_cores: 0",
                "network.shared_cores: must be a finite number > 0, got 0",
            ),
        ] {
            let text = format!("{EDGE}network: {{ {bad} }}\n");
            let e = MlfoConfig::from_yaml("edge.yaml", &text).unwrap_err();
            assert_eq!(e.to_string(), format!("edge.yaml: {message}"));
        }

        let unknown = format!("{EDGE}colour: blue\n");
        let e = MlfoConfig::from_yaml("edge.yaml", &unknown).unwrap_err();
        assert!(e.to_string().contains("unknown field `colour`"), "{e}");
    }
}
