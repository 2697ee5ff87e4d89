//! Moving `erlmcp.io`: read the failover record's current alias target (the plan's "from"),
//! UPSERT it to the DR region's load balancer, then poll GetChange until INSYNC.

use super::Live;
use aws_sdk_route53::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecordSet,
    ResourceRecordSetFailover, RrType,
};
use erlmcp_handlers::executor::ExecError;
use std::time::Duration;

fn aws_err<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: aws_sdk_route53::error::SdkError<E, R>,
) -> ExecError {
    use aws_sdk_route53::error::SdkError;
    let transient = match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(s) => matches!(
            s.err().code(),
            Some("Throttling" | "PriorRequestNotComplete" | "ServiceUnavailable")
        ),
        _ => false,
    };
    let msg = format!("Route53: {}", DisplayErrorContext(&e));
    if transient {
        ExecError::transient(msg)
    } else {
        ExecError::permanent(msg)
    }
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

impl Live {
    async fn dns_record(&self) -> Result<Option<ResourceRecordSet>, ExecError> {
        let out = self
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(&self.topo.hosted_zone_id)
            .start_record_name(&self.topo.record_name)
            .start_record_type(RrType::A)
            .send()
            .await
            .map_err(aws_err)?;
        let want = fqdn(&self.topo.record_name);
        Ok(out
            .resource_record_sets()
            .iter()
            .find(|r| {
                fqdn(r.name()) == want
                    && r.r#type() == &RrType::A
                    && r.set_identifier() == Some(self.settings.set_identifier.as_str())
            })
            .cloned())
    }

    /// The region the record points at now (by its load balancer), or the raw target if no region has it.
    pub(crate) async fn current_dns_region(&self) -> Result<String, ExecError> {
        let Some(record) = self.dns_record().await? else {
            return Ok(format!(
                "no {} A record with set identifier {}",
                self.topo.record_name, self.settings.set_identifier
            ));
        };
        let target = record
            .alias_target()
            .map(|a| a.dns_name().trim_end_matches('.').to_string())
            .unwrap_or_default();
        Ok(self
            .topo
            .regions
            .iter()
            .find(|r| r.dns_target.trim_end_matches('.') == target)
            .map(|r| r.name.clone())
            .unwrap_or(target))
    }

    pub(crate) async fn point_dns(&self, region: &str) -> Result<String, ExecError> {
        let r = self
            .topo
            .region(region)
            .ok_or_else(|| ExecError::permanent(self.topo.unknown_region_message(region)))?;
        let alias = AliasTarget::builder()
            .hosted_zone_id(&self.settings.alias_zone_id)
            .dns_name(&r.dns_target)
            .evaluate_target_health(true)
            .build()
            .map_err(|e| ExecError::permanent(e.to_string()))?;
        let record = ResourceRecordSet::builder()
            .name(&self.topo.record_name)
            .r#type(RrType::A)
            .set_identifier(&self.settings.set_identifier)
            .failover(ResourceRecordSetFailover::Primary)
            .alias_target(alias)
            .build()
            .map_err(|e| ExecError::permanent(e.to_string()))?;
        let change = Change::builder()
            .action(ChangeAction::Upsert)
            .resource_record_set(record)
            .build()
            .map_err(|e| ExecError::permanent(e.to_string()))?;
        let batch = ChangeBatch::builder()
            .comment(format!(
                "erlmcp-bot: point {} at {region}",
                self.topo.record_name
            ))
            .changes(change)
            .build()
            .map_err(|e| ExecError::permanent(e.to_string()))?;
        let out = self
            .route53
            .change_resource_record_sets()
            .hosted_zone_id(&self.topo.hosted_zone_id)
            .change_batch(batch)
            .send()
            .await
            .map_err(aws_err)?;
        let change_id = out
            .change_info()
            .map(|c| c.id().to_string())
            .unwrap_or_default();
        // Route53 takes seconds to a minute to propagate; the step's timeout bounds this loop.
        loop {
            let status = self
                .route53
                .get_change()
                .id(&change_id)
                .send()
                .await
                .map_err(aws_err)?;
            if status.change_info().map(|c| c.status()) == Some(&ChangeStatus::Insync) {
                return Ok(format!(
                    "{} -> {region} ({}), change {change_id} INSYNC",
                    self.topo.record_name, r.dns_target
                ));
            }
            tokio::time::sleep(Duration::from_millis(self.settings.poll_ms.max(10))).await;
        }
    }
}
