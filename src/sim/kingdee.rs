//! Placeholder: the Kingdee sandbox is being written (issue 3).

use std::net::SocketAddr;

use crate::error::{Error, Result};
use crate::sim::CommonOptions;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct KingdeeOptions {}

pub struct KingdeeSandbox {
    pub addr: SocketAddr,
}

impl KingdeeSandbox {
    pub fn env(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

pub async fn start(_common: &CommonOptions, _options: &KingdeeOptions) -> Result<KingdeeSandbox> {
    Err(Error::usage("the Kingdee sandbox is not built yet"))
}
