//! The erlmcp v3 deployment as the runbook describes it (§1.2, §1.3): six regions, their roles,
//! where the StatefulSet runs, and where `erlmcp.io` points. Configuration may override it.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegionRole {
    Primary,
    Active,
    HotDr,
    ColdDr,
}

impl RegionRole {
    pub fn describe(self) -> &'static str {
        match self {
            RegionRole::Primary => "primary (active)",
            RegionRole::Active => "active",
            RegionRole::HotDr => "hot DR standby",
            RegionRole::ColdDr => "cold DR standby",
        }
    }

    pub fn is_dr(self) -> bool {
        matches!(self, RegionRole::HotDr | RegionRole::ColdDr)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    pub name: String,
    pub role: RegionRole,
    /// kubeconfig context; the runbook runs `kubectl --context=<region>`.
    pub kube_context: String,
    pub namespace: String,
    pub statefulset: String,
    /// Pods in normal operation (§1.3 diagram).
    pub replicas: u32,
    pub health_url: String,
    /// Load balancer the DNS record aliases to when this region serves.
    pub dns_target: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    pub regions: Vec<Region>,
    pub hosted_zone_id: String,
    pub record_name: String,
    /// Container image without tag (§9.2).
    pub image: String,
}

impl Topology {
    /// Runbook §1.2/§1.3 and §6.3 (hosted zone `Z35SXDOTRKT7K6`, record `erlmcp.io`).
    pub fn runbook_default() -> Self {
        let region = |name: &str, role: RegionRole, replicas: u32| Region {
            name: name.to_string(),
            role,
            kube_context: name.to_string(),
            namespace: "erlmcp-prod".to_string(),
            statefulset: "erlmcp-cluster".to_string(),
            replicas,
            health_url: format!("https://{name}.erlmcp.io/health"),
            dns_target: format!("elb.{name}.amazonaws.com"),
        };
        Self {
            regions: vec![
                region("us-east-1", RegionRole::Primary, 3),
                region("us-west-2", RegionRole::HotDr, 0),
                region("eu-west-1", RegionRole::Active, 2),
                region("ap-southeast-1", RegionRole::Active, 2),
                region("ap-northeast-1", RegionRole::Active, 2),
                region("eu-central-1", RegionRole::ColdDr, 0),
            ],
            hosted_zone_id: "Z35SXDOTRKT7K6".to_string(),
            record_name: "erlmcp.io".to_string(),
            image: "ghcr.io/seanchatmangpt/erlmcp".to_string(),
        }
    }

    pub fn region(&self, name: &str) -> Option<&Region> {
        self.regions.iter().find(|r| r.name == name)
    }

    pub fn primary(&self) -> Option<&Region> {
        self.regions.iter().find(|r| r.role == RegionRole::Primary)
    }

    pub fn names(&self) -> Vec<&str> {
        self.regions.iter().map(|r| r.name.as_str()).collect()
    }

    /// "unknown region `us-wset-2`; known regions: ... (did you mean us-west-2?)"
    pub fn unknown_region_message(&self, name: &str) -> String {
        let closest = self
            .regions
            .iter()
            .map(|r| (strsim::levenshtein(name, &r.name), &r.name))
            .min_by_key(|(d, _)| *d)
            .filter(|(d, _)| *d <= 3);
        let mut msg = format!(
            "unknown region `{name}`; known regions: {}",
            self.names().join(", ")
        );
        if let Some((_, r)) = closest {
            msg.push_str(&format!(" (did you mean {r}?)"));
        }
        msg
    }
}
