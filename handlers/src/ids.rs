//! Readable identifiers: `INC-20261128-1`, `REQ-20261128-3`, `RUN-20261128-2`.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! readable_id {
    ($name:ident, $prefix:literal) => {
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// `PREFIX-YYYYMMDD-N` for the given UTC day and per-day sequence number.
            pub fn for_day(day: chrono::NaiveDate, seq: i64) -> Self {
                Self(format!("{}-{}-{}", $prefix, day.format("%Y%m%d"), seq))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

readable_id!(IncidentId, "INC");
readable_id!(RequestId, "REQ");
readable_id!(RunId, "RUN");

/// Chat ids carry their platform, in the core and in the database: users `slack:U123`,
/// `discord:81234…`, `console:alice`; channels `slack:C123`, `discord:…`, and the bare words
/// `console` and `alertmanager` for the places that are no chat channel. Ids are unique only
/// within their platform, so a bare id could name two people.
pub mod chat {
    use crate::approval::Platform;

    /// `platform:local`.
    pub fn qualify(platform: Platform, local: &str) -> String {
        format!("{}:{local}", platform.as_str())
    }

    /// The platform and the platform's own id, if `id` is qualified.
    pub fn split(id: &str) -> Option<(Platform, &str)> {
        let (p, local) = id.split_once(':')?;
        Some((Platform::parse(p)?, local))
    }

    /// The platform's own id (`U123` of `slack:U123`); an unqualified id as it is.
    pub fn local(id: &str) -> &str {
        split(id).map_or(id, |(_, l)| l)
    }

    /// Whether a value the timeline recorded before ids were qualified (`C123`, `U123`,
    /// `alice`) is the value a table now holds after the migration qualified it. Only the
    /// platforms that existed then count (Slack and the console): anything else is a change.
    pub fn same_or_migrated(recorded: &str, now: &str) -> bool {
        recorded == now
            || (split(recorded).is_none()
                && matches!(split(now), Some((Platform::Slack | Platform::Console, l)) if l == recorded))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn qualified_ids_split_and_compare() {
            assert_eq!(qualify(Platform::Discord, "81"), "discord:81");
            assert_eq!(split("slack:C1"), Some((Platform::Slack, "C1")));
            assert_eq!(split("console"), None);
            assert_eq!(split("mars:x"), None);
            assert_eq!(local("discord:81"), "81");
            assert_eq!(local("console"), "console");
            assert!(same_or_migrated("C1", "slack:C1"));
            assert!(same_or_migrated("alice", "console:alice"));
            assert!(same_or_migrated("slack:C1", "slack:C1"));
            assert!(!same_or_migrated("C1", "discord:C1"));
            assert!(!same_or_migrated("C1", "slack:C2"));
            assert!(!same_or_migrated("slack:C1", "C1"));
        }
    }
}
