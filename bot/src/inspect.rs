//! The read-only subcommands: `timeline verify|show`, `postmortem`, `report`, `playbooks
//! list|check`. They open the database (or nothing at all) and never an executor, so running one
//! beside a live failover cannot execute, resume or change anything.

use crate::app;
use crate::config::Config;
use crate::console::{Screen, say};
use crate::store;
use erlmcp_handlers::ids::IncidentId;
use erlmcp_handlers::reads;
use erlmcp_handlers::store::Store;
use erlmcp_handlers::timeline::Keying;
use std::path::PathBuf;

/// Opens the database for reading: migrations are applied (a new file gets its schema), nothing
/// else runs.
async fn open(config: &Config, screen: &Screen) -> Option<std::sync::Arc<dyn Store>> {
    match store::open(&config.database_url, config.timeline_key.clone()).await {
        Ok(o) => Some(o.store),
        Err(e) => {
            say(screen, &format!("error: {e}"));
            None
        }
    }
}

/// `timeline verify`: every incident's chain (or one), its keyed MACs when
/// `ERLMCP_TIMELINE_KEY` is set, its row, and the tables the postmortem reads. Exits 1 on any
/// break; with `require_keyed`, also on any entry written without the key.
pub async fn verify(
    config: &Config,
    screen: &Screen,
    incident: Option<String>,
    require_keyed: bool,
) -> u8 {
    let Some(store) = open(config, screen).await else {
        return 2;
    };
    let ids = match incident {
        Some(i) => vec![IncidentId::new(i.to_ascii_uppercase())],
        None => match store.all_incident_ids().await {
            Ok(ids) => ids,
            Err(e) => {
                say(screen, &format!("error: {e}"));
                return 1;
            }
        },
    };
    if ids.is_empty() {
        say(screen, "No incidents to verify.");
        return 0;
    }
    if config.timeline_key.is_none() {
        say(
            screen,
            "warning: ERLMCP_TIMELINE_KEY is not set: only the hash chains are checked, which anyone who can write the database could recompute.",
        );
    }
    let mut bad = false;
    for id in ids {
        match store.incident(&id).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                say(screen, &format!("{id}: no such incident"));
                bad = true;
                continue;
            }
            Err(e) => {
                say(screen, &format!("{id}: cannot read: {e}"));
                bad = true;
                continue;
            }
        }
        match reads::verify_timeline(store.as_ref(), &id, config.timeline_key.as_ref()).await {
            Ok(check) if check.breaks.is_empty() => {
                let unkeyed = !matches!(check.keying, Keying::Keyed { .. });
                if require_keyed && unkeyed {
                    bad = true;
                    say(screen, &format!("{id}: NOT KEYED: {}", check.keying));
                } else {
                    say(screen, &format!("{id}: intact, {}", check.keying));
                }
            }
            Ok(check) => {
                bad = true;
                for b in check.breaks {
                    say(screen, &format!("{id}: TAMPERED: {b}"));
                }
            }
            Err(e) => {
                bad = true;
                say(screen, &format!("{id}: TAMPERED or unreadable: {e}"));
            }
        }
    }
    u8::from(bad)
}

pub async fn show_timeline(config: &Config, screen: &Screen, incident: &str) -> u8 {
    let Some(store) = open(config, screen).await else {
        return 2;
    };
    match store
        .timeline(&IncidentId::new(incident.to_ascii_uppercase()))
        .await
    {
        Ok(entries) if entries.is_empty() => {
            say(
                screen,
                &format!(
                    "{incident}: no such incident (`erlmcp-bot timeline verify` lists every incident)"
                ),
            );
            1
        }
        Ok(entries) => {
            for e in entries {
                say(
                    screen,
                    &format!(
                        "#{:<3} {} {:<10} {:<8} {:<18} {} [{}]",
                        e.seq,
                        e.at.format("%Y-%m-%d %H:%M:%S%.6f"),
                        e.actor,
                        e.source,
                        e.kind,
                        e.text,
                        e.hash.get(..12).unwrap_or(&e.hash)
                    ),
                );
            }
            0
        }
        Err(e) => {
            say(screen, &format!("error: {e}"));
            1
        }
    }
}

pub async fn postmortem(
    config: &Config,
    screen: &Screen,
    incident: &str,
    svg: Option<&std::path::Path>,
) -> u8 {
    let Some(store) = open(config, screen).await else {
        return 2;
    };
    let id = IncidentId::new(incident.to_ascii_uppercase());
    match reads::postmortem_markdown(store.as_ref(), &id).await {
        Ok(md) => {
            say(screen, &md);
            let Some(path) = svg else { return 0 };
            match reads::incident_view(
                store.as_ref(),
                &id,
                config.timeline_key.as_ref(),
                0,
                chrono::Utc::now(),
            )
            .await
            {
                Ok(Some(view)) => match std::fs::write(path, view.svg) {
                    Ok(()) => {
                        say(
                            screen,
                            &format!("Timeline picture written to {}", path.display()),
                        );
                        0
                    }
                    Err(e) => {
                        say(
                            screen,
                            &format!("error: cannot write {}: {e}", path.display()),
                        );
                        1
                    }
                },
                Ok(None) => 1,
                Err(e) => {
                    say(screen, &format!("error: {e}"));
                    1
                }
            }
        }
        Err(erlmcp_handlers::Error::NotFound(_)) => {
            say(
                screen,
                &format!(
                    "error: there is no incident {id}; incident ids look like INC-20261128-1 (`erlmcp-bot timeline verify` lists them)"
                ),
            );
            1
        }
        Err(e) => {
            say(screen, &format!("error: {e}"));
            1
        }
    }
}

pub async fn report(config: &Config, screen: &Screen, month: Option<String>) -> u8 {
    let now = chrono::Utc::now();
    let (year, month) = match month {
        Some(m) => match erlmcp_handlers::report::parse_month(&m) {
            Some(ym) => ym,
            None => {
                say(
                    screen,
                    &format!(
                        "error: `{m}` is not a month; use the form 2026-11 (`--month 2026-11`)"
                    ),
                );
                return 2;
            }
        },
        None => (chrono::Datelike::year(&now), chrono::Datelike::month(&now)),
    };
    let Some(store) = open(config, screen).await else {
        return 2;
    };
    match reads::sla_report(store.as_ref(), year, month, now).await {
        Ok(r) => {
            say(screen, &r);
            0
        }
        Err(e) => {
            say(screen, &format!("error: {e}"));
            1
        }
    }
}

/// `incidents`: every incident not yet closed, newest first.
pub async fn incidents(config: &Config, screen: &Screen) -> u8 {
    let Some(store) = open(config, screen).await else {
        return 2;
    };
    match store.open_incidents().await {
        Ok(open) if open.is_empty() => {
            say(screen, "No open incidents.");
            0
        }
        Ok(open) => {
            for i in open {
                say(
                    screen,
                    &format!(
                        "{} {} {:<12} {} — declared {} UTC by {}{}",
                        i.id,
                        i.severity,
                        i.status.to_string(),
                        i.title,
                        i.declared_at.format("%Y-%m-%d %H:%M"),
                        i.declared_by,
                        if i.drill { " (drill)" } else { "" }
                    ),
                );
            }
            0
        }
        Err(e) => {
            say(screen, &format!("error: {e}"));
            1
        }
    }
}

pub fn list_playbooks(config: &Config, screen: &Screen) -> u8 {
    let builtin = erlmcp_handlers::playbook::PlaybookSet::builtin(&config.topology).ok();
    match app::load_playbooks(config, &config.topology) {
        Ok(set) => {
            for p in set.playbooks.values() {
                let replaces = builtin
                    .as_ref()
                    .and_then(|b| b.get(&p.name))
                    .is_some_and(|b| b.file != p.file);
                say(
                    screen,
                    &format!(
                        "{:<20} {:<6} {}  ({}{})",
                        p.name,
                        p.runbook,
                        p.description,
                        p.file,
                        if replaces {
                            "; replaces the built-in playbook of that name"
                        } else {
                            ""
                        }
                    ),
                );
            }
            0
        }
        Err(e) => {
            say(screen, &e.to_string());
            1
        }
    }
}

pub fn check_playbooks(config: &Config, files: &[PathBuf], screen: &Screen) -> u8 {
    let topo = &config.topology;
    if files.is_empty() {
        return match app::load_playbooks(config, topo) {
            Ok(set) => {
                for p in set.playbooks.values() {
                    say(
                        screen,
                        &format!("ok  {:<20} {} ({})", p.name, p.file, steps(p.steps.len())),
                    );
                }
                say(screen, &format!("{} playbooks valid", set.playbooks.len()));
                0
            }
            Err(e) => {
                say(screen, &e.to_string());
                1
            }
        };
    }
    let mut failed = false;
    for f in files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                say(screen, &format!("{}: cannot read: {e}", f.display()));
                failed = true;
                continue;
            }
        };
        match erlmcp_handlers::playbook::parse_file(&f.display().to_string(), &text, topo) {
            Ok(p) => say(
                screen,
                &format!(
                    "ok  {:<20} {} ({})",
                    p.name,
                    f.display(),
                    steps(p.steps.len())
                ),
            ),
            Err(errors) => {
                failed = true;
                say(screen, &app::format_load_errors(&errors));
            }
        }
    }
    u8::from(failed)
}

fn steps(n: usize) -> String {
    if n == 1 {
        "1 step".into()
    } else {
        format!("{n} steps")
    }
}
