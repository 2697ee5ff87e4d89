//! Dry-run: plans against what is really there (through another executor's reads) and, when
//! applied, says what it would do without doing it.

use super::{Action, ExecError, Executor, Mode, Observation};
use std::sync::Arc;

pub struct DryRun {
    reads_from: Arc<dyn Executor>,
    topo: Arc<crate::topology::Topology>,
}

impl DryRun {
    pub fn new(reads_from: Arc<dyn Executor>, topo: Arc<crate::topology::Topology>) -> Self {
        Self { reads_from, topo }
    }
}

#[async_trait::async_trait]
impl Executor for DryRun {
    fn mode(&self) -> Mode {
        Mode::DryRun
    }

    async fn observe(&self, action: &Action) -> Result<Observation, ExecError> {
        self.reads_from.observe(action).await
    }

    async fn apply(&self, action: &Action) -> Result<String, ExecError> {
        Ok(format!(
            "dry run, nothing changed: would {}",
            action.describe(&self.topo)
        ))
    }
}
