//! Promoting a PostgreSQL standby: `pg_is_in_recovery()` before (for the plan) and after (to
//! verify), `pg_promote()` in between.

use erlmcp_handlers::executor::ExecError;
use sqlx::{Connection, PgConnection};

fn pg_err(e: sqlx::Error) -> ExecError {
    match e {
        sqlx::Error::Database(d) => ExecError::permanent(format!("PostgreSQL: {}", d.message())),
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => {
            ExecError::transient(format!("PostgreSQL unreachable: {e}"))
        }
        other => ExecError::permanent(format!("PostgreSQL: {other}")),
    }
}

async fn connect(dsn: &str) -> Result<PgConnection, ExecError> {
    PgConnection::connect(dsn).await.map_err(pg_err)
}

pub async fn in_recovery(dsn: &str) -> Result<bool, ExecError> {
    let mut c = connect(dsn).await?;
    let (r,): (bool,) = sqlx::query_as("SELECT pg_is_in_recovery()")
        .fetch_one(&mut c)
        .await
        .map_err(pg_err)?;
    let _ = c.close().await;
    Ok(r)
}

pub async fn promote(dsn: &str) -> Result<(), ExecError> {
    let mut c = connect(dsn).await?;
    let (standby,): (bool,) = sqlx::query_as("SELECT pg_is_in_recovery()")
        .fetch_one(&mut c)
        .await
        .map_err(pg_err)?;
    if !standby {
        return Err(ExecError::permanent(
            "PostgreSQL: pg_promote() refused: the server is not in standby mode (already a primary)",
        ));
    }
    // wait => true, up to 60 s, for the promotion to finish.
    let (promoted,): (bool,) = sqlx::query_as("SELECT pg_promote(true, 60)")
        .fetch_one(&mut c)
        .await
        .map_err(pg_err)?;
    if !promoted {
        return Err(ExecError::timeout(
            "PostgreSQL: pg_promote() did not finish within 60 s",
        ));
    }
    let (still,): (bool,) = sqlx::query_as("SELECT pg_is_in_recovery()")
        .fetch_one(&mut c)
        .await
        .map_err(pg_err)?;
    let _ = c.close().await;
    if still {
        return Err(ExecError::permanent(
            "PostgreSQL: promoted, but pg_is_in_recovery() is still true",
        ));
    }
    Ok(())
}
