//! Playbook files: the built-ins validate, bad files fail with file and line, plans read right.
use super::*;
use crate::executor::simulated::Simulated;
use crate::topology::Topology;

fn topo() -> Topology {
    Topology::runbook_default()
}

fn errors_of(yaml: &str) -> Vec<String> {
    match parse_file("ops/bad.yaml", yaml, &topo()) {
        Ok(_) => vec![],
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

const GOOD: &str = "name: demo
description: demo
severities: [p1]
parameters:
  - name: region
    type: region
    default: us-west-2
steps:
  - name: Scale
    kind: kube.scale
    with: { region: \"{{region}}\", replicas: 2 }
";

#[test]
fn every_builtin_playbook_validates() {
    let set = PlaybookSet::builtin(&topo()).unwrap_or_else(|e| panic!("{e:?}"));
    let names: Vec<&str> = set.playbooks.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        vec![
            "data-corruption",
            "failback",
            "failover",
            "p0-outage",
            "read-only",
            "rollback",
            "scale",
            "security-isolation"
        ]
    );
    assert_eq!(
        set.get("security-isolation").unwrap().policy.groups,
        vec!["security".to_string()]
    );
}

#[test]
fn a_good_operator_file_loads() {
    assert_eq!(errors_of(GOOD), Vec::<String>::new());
}

#[test]
fn unknown_step_kind_is_reported_with_its_line() {
    let bad = GOOD.replace("kind: kube.scale", "kind: kube.explode");
    let e = errors_of(&bad);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("ops/bad.yaml:10: step `Scale`: unknown step kind `kube.explode`"),
        "{e:?}"
    );
}

#[test]
fn missing_argument_unknown_region_and_bad_severity_are_reported() {
    let e = errors_of(&GOOD.replace(", replicas: 2", ""));
    assert!(
        e[0].starts_with("ops/bad.yaml:9: step `Scale` (kube.scale): missing argument `replicas`"),
        "{e:?}"
    );
    let e = errors_of(&GOOD.replace("\"{{region}}\"", "us-wset-2"));
    assert!(
        e[0].contains("unknown region `us-wset-2`") && e[0].contains("did you mean us-west-2"),
        "{e:?}"
    );
    let e = errors_of(&GOOD.replace("[p1]", "[p1, p7]"));
    assert!(
        e[0].starts_with("ops/bad.yaml:3: bad severity `p7`"),
        "{e:?}"
    );
    let e = errors_of(&GOOD.replace("{{region}}", "{{regoin}}"));
    assert!(e[0].contains("`{{regoin}}` is not a parameter"), "{e:?}");
}

#[test]
fn yaml_syntax_and_unknown_fields_name_the_line() {
    let e = errors_of(&GOOD.replace("    timeout", "").replace("steps:", "stepz:"));
    assert!(e[0].starts_with("ops/bad.yaml:8:"), "{e:?}");
    let e = errors_of("name: x\n  description: [unclosed\n");
    assert!(e[0].starts_with("ops/bad.yaml:"), "{e:?}");
    assert!(!e[0].starts_with("ops/bad.yaml:0:"), "{e:?}");
}

#[test]
fn zero_approvals_is_refused() {
    let e = errors_of(&format!("{GOOD}approval:\n  approvals: 0\n"));
    assert!(e.iter().any(|m| m.contains("at least 1")), "{e:?}");
}

#[tokio::test]
async fn failover_plan_names_every_target_with_from_and_to() {
    let set = PlaybookSet::builtin(&topo()).unwrap();
    let sim = Simulated::new(topo());
    let ctx = PlanContext {
        incident: "INC-20261128-1",
        title: "API down",
        severity: crate::severity::Severity::P0,
    };
    let plan = make_plan(
        set.get("failover").unwrap(),
        &[("region".into(), "us-west-2".into())],
        ctx,
        &topo(),
        &sim,
    )
    .await
    .unwrap();
    let lines: Vec<&str> = plan.text.lines().collect();
    assert_eq!(
        lines[0],
        "Playbook failover (§6.3) under P0, executor simulated"
    );
    assert_eq!(
        lines[1],
        "Parameters: region=us-west-2 replicas=3 scale_down_primary=false"
    );
    assert_eq!(
        lines[2],
        "1. Status page: set status page to major_outage: emergency failover to us-west-2 in progress (INC-20261128-1) [operational -> major_outage]"
    );
    assert_eq!(
        lines[3],
        "2. Promote database: promote the PostgreSQL standby in us-west-2 (SELECT pg_promote()) [standby (in recovery) -> primary]"
    );
    assert_eq!(
        lines[4],
        "3. Start application: scale statefulset erlmcp-prod/erlmcp-cluster (context us-west-2) to 3 replicas [0 replicas -> 3 replicas]"
    );
    assert_eq!(
        lines[6],
        "5. Move DNS: UPSERT Route53 record erlmcp.io in zone Z35SXDOTRKT7K6 -> us-west-2 (elb.us-west-2.amazonaws.com) [us-east-1 -> us-west-2]"
    );
    assert_eq!(
        plan.steps.len(),
        6,
        "scale-down of the primary is off by default"
    );
    assert_eq!(plan.digest.len(), 64);
}

#[tokio::test]
async fn plan_refuses_wrong_severity_and_bad_parameters() {
    let set = PlaybookSet::builtin(&topo()).unwrap();
    let sim = Simulated::new(topo());
    let pb = set.get("p0-outage").unwrap();
    let ctx = || PlanContext {
        incident: "INC-1",
        title: "t",
        severity: crate::severity::Severity::P2,
    };
    let e = make_plan(pb, &[], ctx(), &topo(), &sim).await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("playbook `p0-outage` may not run under P2: it is for P0 incidents"),
        "{e}"
    );
    let scale = set.get("scale").unwrap();
    let e = make_plan(scale, &[], ctx(), &topo(), &sim)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("needs `replicas=<int>`"), "{e}");
    let e = make_plan(
        scale,
        &[("replicas".into(), "many".into())],
        ctx(),
        &topo(),
        &sim,
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string().contains("`many` is not a whole number"),
        "{e}"
    );
    let e = make_plan(
        scale,
        &[("replicas".into(), "2".into()), ("zone".into(), "a".into())],
        ctx(),
        &topo(),
        &sim,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("has no parameter `zone`"), "{e}");
}

#[tokio::test]
async fn a_later_step_on_the_same_object_starts_from_the_earlier_steps_value() {
    let set = PlaybookSet::builtin(&topo()).unwrap();
    let sim = Simulated::new(topo());
    let ctx = PlanContext {
        incident: "INC-1",
        title: "t",
        severity: crate::severity::Severity::P0,
    };
    let plan = make_plan(
        set.get("read-only").unwrap(),
        &[("enabled".into(), "on".into())],
        ctx,
        &topo(),
        &sim,
    )
    .await
    .unwrap();
    assert_eq!(plan.steps.len(), 1);
    assert!(
        plan.steps[0]
            .line
            .contains("apply ConfigMap erlmcp-read-only"),
        "{}",
        plan.steps[0].line
    );
}
