//! Kubernetes actions on one region's namespace through kube-rs: the StatefulSet's scale
//! subresource, readiness, image and restarts; NetworkPolicy and ConfigMap by server-side apply.

use erlmcp_handlers::executor::ExecError;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicySpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// Field manager of every server-side apply, so ownership of fields is visible in the cluster.
pub const FIELD_MANAGER: &str = "erlmcp-bot";
/// Where the bot records the version it replaced, so `rollback` to `previous` knows what that is.
pub const PREVIOUS_VERSION_ANNOTATION: &str = "erlmcp.io/previous-version";
const POD_SELECTOR: &str = "app=erlmcp";

pub struct KubeRegion {
    statefulsets: Api<StatefulSet>,
    pods: Api<Pod>,
    policies: Api<NetworkPolicy>,
    config_maps: Api<ConfigMap>,
    namespace: String,
    name: String,
    container: String,
    poll: Duration,
}

/// A Kubernetes failure, with the API server's own message; throttling and server errors may be retried.
pub fn kube_err(e: kube::Error) -> ExecError {
    match e {
        kube::Error::Api(status) => {
            let text = format!(
                "Kubernetes API {} {}: {}",
                status.code, status.reason, status.message
            );
            if status.code == 429 || status.code >= 500 {
                ExecError::transient(text)
            } else {
                ExecError::permanent(text)
            }
        }
        other => ExecError::transient(format!("Kubernetes API unreachable: {other}")),
    }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

impl KubeRegion {
    pub fn new(
        client: kube::Client,
        namespace: String,
        name: String,
        container: String,
        poll_ms: u64,
    ) -> Self {
        Self {
            statefulsets: Api::namespaced(client.clone(), &namespace),
            pods: Api::namespaced(client.clone(), &namespace),
            policies: Api::namespaced(client.clone(), &namespace),
            config_maps: Api::namespaced(client, &namespace),
            namespace,
            name,
            container,
            poll: Duration::from_millis(poll_ms.max(10)),
        }
    }

    pub async fn replicas(&self) -> Result<i32, ExecError> {
        let scale = self
            .statefulsets
            .get_scale(&self.name)
            .await
            .map_err(kube_err)?;
        Ok(scale.spec.and_then(|s| s.replicas).unwrap_or(0))
    }

    /// Scales through the scale subresource; returns the replica count before.
    pub async fn scale(&self, replicas: u32) -> Result<i32, ExecError> {
        let before = self.replicas().await?;
        self.statefulsets
            .patch_scale(
                &self.name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "replicas": replicas } })),
            )
            .await
            .map_err(kube_err)?;
        Ok(before)
    }

    async fn status(&self) -> Result<(i32, i32, bool), ExecError> {
        let sts = self.statefulsets.get(&self.name).await.map_err(kube_err)?;
        let want = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let status = sts.status.unwrap_or_default();
        let ready = status.ready_replicas.unwrap_or(0);
        let generation_seen = match (sts.metadata.generation, status.observed_generation) {
            (Some(g), Some(o)) => o >= g,
            _ => true,
        };
        let rolled = status.updated_replicas.unwrap_or(want) >= want
            && match (&status.current_revision, &status.update_revision) {
                (Some(c), Some(u)) => c == u,
                _ => true,
            };
        Ok((ready, want, generation_seen && rolled))
    }

    /// Polls until every desired pod is ready. The step's timeout bounds the wait.
    pub async fn wait_ready(&self) -> Result<(i32, i32), ExecError> {
        loop {
            let (ready, want, _) = self.status().await?;
            if ready >= want {
                return Ok((ready, want));
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    pub async fn wait_rollout(&self) -> Result<(i32, i32), ExecError> {
        loop {
            let (ready, want, rolled) = self.status().await?;
            if rolled && ready >= want {
                return Ok((ready, want));
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// Ready pods and all pods labelled `app=erlmcp`.
    pub async fn pods_ready(&self) -> Result<(usize, usize), ExecError> {
        let pods = self
            .pods
            .list(&ListParams::default().labels(POD_SELECTOR))
            .await
            .map_err(kube_err)?;
        let ready = pods
            .items
            .iter()
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count();
        Ok((ready, pods.items.len()))
    }

    pub async fn network_policy_exists(&self, name: &str) -> Result<bool, ExecError> {
        Ok(self
            .policies
            .get_opt(name)
            .await
            .map_err(kube_err)?
            .is_some())
    }

    /// A deny-all policy: selects `app=erlmcp`, declares both directions, allows nothing.
    pub async fn apply_deny_all(&self, name: &str) -> Result<(), ExecError> {
        let policy = NetworkPolicy {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_string(),
                    FIELD_MANAGER.to_string(),
                )])),
                ..Default::default()
            },
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector {
                    match_labels: Some(BTreeMap::from([("app".to_string(), "erlmcp".to_string())])),
                    ..Default::default()
                }),
                policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
                ingress: None,
                egress: None,
            }),
        };
        let mut value =
            serde_json::to_value(&policy).map_err(|e| ExecError::permanent(e.to_string()))?;
        value["apiVersion"] = json!("networking.k8s.io/v1");
        value["kind"] = json!("NetworkPolicy");
        self.policies
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(value),
            )
            .await
            .map_err(kube_err)?;
        Ok(())
    }

    /// `true` if it existed.
    pub async fn delete_network_policy(&self, name: &str) -> Result<bool, ExecError> {
        match self.policies.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(kube_err(e)),
        }
    }

    pub async fn config_map(
        &self,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ExecError> {
        Ok(self
            .config_maps
            .get_opt(name)
            .await
            .map_err(kube_err)?
            .map(|cm| cm.data.unwrap_or_default()))
    }

    pub async fn apply_config_map(
        &self,
        name: &str,
        data: &BTreeMap<String, String>,
    ) -> Result<(), ExecError> {
        let value = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": { "name": name, "namespace": self.namespace, "labels": { "app.kubernetes.io/managed-by": FIELD_MANAGER } },
            "data": data,
        });
        self.config_maps
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(value),
            )
            .await
            .map_err(kube_err)?;
        Ok(())
    }

    pub async fn delete_config_map(&self, name: &str) -> Result<bool, ExecError> {
        match self
            .config_maps
            .delete(name, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(kube_err(e)),
        }
    }

    /// The running version (the image tag of the container) and the recorded previous one.
    pub async fn image_versions(&self) -> Result<(String, Option<String>), ExecError> {
        let sts = self.statefulsets.get(&self.name).await.map_err(kube_err)?;
        let image = sts
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.containers.iter().find(|c| c.name == self.container))
            .and_then(|c| c.image.clone())
            .ok_or_else(|| {
                ExecError::permanent(format!(
                    "statefulset {}/{} has no container named {}",
                    self.namespace, self.name, self.container
                ))
            })?;
        let version = image
            .rsplit_once(':')
            .map(|(_, t)| t.to_string())
            .unwrap_or(image);
        let previous = sts
            .metadata
            .annotations
            .and_then(|a| a.get(PREVIOUS_VERSION_ANNOTATION).cloned());
        Ok((version, previous))
    }

    /// Sets the container's image and records the version it replaced; returns that version.
    pub async fn set_image(&self, image: &str, _version: &str) -> Result<String, ExecError> {
        let (current, _) = self.image_versions().await?;
        let patch = json!({
            "metadata": { "annotations": { PREVIOUS_VERSION_ANNOTATION: current } },
            "spec": { "template": { "spec": { "containers": [ { "name": self.container, "image": image } ] } } }
        });
        self.statefulsets
            .patch(
                &self.name,
                &PatchParams::default(),
                &Patch::Strategic(patch),
            )
            .await
            .map_err(kube_err)?;
        Ok(current)
    }

    /// What `kubectl rollout restart` does: a new pod-template annotation.
    pub async fn restart(&self) -> Result<(), ExecError> {
        let patch = json!({
            "spec": { "template": { "metadata": { "annotations": { "kubectl.kubernetes.io/restartedAt": chrono::Utc::now().to_rfc3339() } } } }
        });
        self.statefulsets
            .patch(
                &self.name,
                &PatchParams::default(),
                &Patch::Strategic(patch),
            )
            .await
            .map_err(kube_err)?;
        Ok(())
    }
}
