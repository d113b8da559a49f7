//! Placeholder: the WDT Qimen sandbox is being written (issue 3).

use std::net::SocketAddr;

use crate::error::{Error, Result};
use crate::sim::CommonOptions;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct WdtOptions {}

pub struct WdtSandbox {
    pub addr: SocketAddr,
}

impl WdtSandbox {
    pub fn env(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

pub async fn start(_common: &CommonOptions, _options: &WdtOptions) -> Result<WdtSandbox> {
    Err(Error::usage("the WDT sandbox is not built yet"))
}
