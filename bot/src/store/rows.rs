//! Conversions between stored text columns and the core's types, shared by both backends.

use erlmcp_handlers::Error;
use erlmcp_handlers::command::Role;
use std::collections::BTreeMap;

pub fn bad(column: &str, value: &str) -> Error {
    Error::Store(format!("unreadable value `{value}` in column {column}"))
}

pub fn roles_to_json(roles: &BTreeMap<Role, String>) -> String {
    let m: BTreeMap<&str, &str> = roles
        .iter()
        .map(|(r, u)| (r.as_str(), u.as_str()))
        .collect();
    serde_json::to_string(&m).unwrap_or_else(|_| "{}".into())
}

pub fn roles_from_json(s: &str) -> Result<BTreeMap<Role, String>, Error> {
    let m: BTreeMap<String, String> = serde_json::from_str(s).map_err(|_| bad("roles", s))?;
    m.into_iter()
        .map(|(k, v)| {
            Role::parse(&k)
                .map(|r| (r, v))
                .ok_or_else(|| bad("roles", s))
        })
        .collect()
}

/// Maps a database error to the core's, keeping the database's own message.
pub fn db(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(d) => Error::Store(d.message().to_string()),
        _ => Error::Store(e.to_string()),
    }
}

/// A unique-key collision, which id allocation retries.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.kind() == sqlx::error::ErrorKind::UniqueViolation)
}
