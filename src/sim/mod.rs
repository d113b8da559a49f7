//! The sandboxes: faithful local HTTP servers of the WDT Qimen router and the Kingdee
//! K/3 Cloud WebAPI (`engine sim …`).
//!
//! Each sandbox binds 127.0.0.1 (a given port or an ephemeral one), keeps its state in
//! memory behind locks, and reports the environment variables a flow needs to reach it
//! (`WDT_QIMEN_URL`, `KINGDEE_URL`, credentials). The engine never knows it talks to a
//! sandbox: it only sees those variables. The sandboxes share master data through
//! [`catalog`], so a generated WDT order refers to shops, warehouses and SKUs that the
//! Kingdee sandbox (and the bundled value maps) know about — except the deliberately
//! unknown SKUs.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::error::Result;

pub mod catalog;
pub mod kingdee;
pub mod serve;
pub mod wdt;

/// Options both sandboxes take.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonOptions {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Seed of the deterministic data generator (same seed, same orders and master data).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write the variables printed on stdout to FILE as `KEY="value"` lines (mode 0600),
    /// for `--env-file FILE` of the other commands. The file appears once the sandboxes
    /// listen and is removed when they stop; a file `engine sim` did not write is never
    /// overwritten.
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<std::path::PathBuf>,
}

impl Default for CommonOptions {
    fn default() -> CommonOptions {
        CommonOptions {
            host: IpAddr::from([127, 0, 0, 1]),
            seed: 1,
            env_file: None,
        }
    }
}

/// Both sandboxes, either of them possibly absent, running on the current tokio runtime.
#[derive(Default)]
pub struct Sandboxes {
    pub wdt: Option<wdt::WdtSandbox>,
    pub kingdee: Option<kingdee::KingdeeSandbox>,
}

impl Sandboxes {
    /// Start the requested sandboxes.
    pub async fn start(
        common: &CommonOptions,
        wdt: Option<&wdt::WdtOptions>,
        kingdee: Option<&kingdee::KingdeeOptions>,
    ) -> Result<Sandboxes> {
        let wdt = match wdt {
            Some(options) => Some(wdt::start(common, options).await?),
            None => None,
        };
        let kingdee = match kingdee {
            Some(options) => Some(kingdee::start(common, options).await?),
            None => None,
        };
        Ok(Sandboxes { wdt, kingdee })
    }

    /// The environment variables that point the bundled flow at these sandboxes.
    pub fn env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        if let Some(wdt) = &self.wdt {
            env.extend(wdt.env().into_iter().map(|(k, v)| (k.to_string(), v)));
        }
        if let Some(kingdee) = &self.kingdee {
            env.extend(kingdee.env().into_iter().map(|(k, v)| (k.to_string(), v)));
        }
        env
    }

    /// The one JSON line `engine sim` prints on stdout.
    pub fn env_json_line(&self) -> String {
        serde_json::to_string(&self.env()).expect("a string map always serialises")
    }
}
