//! The plan PostgreSQL picks for the server's cursor query (`read_feed`),
//! with literal values and as the server's prepared statement.

use eventfeed::store::postgres::READ_FEED;

use crate::harness::Env;

/// The values a reader of tenant `bench` sends: after `cursor`, no upper
/// bound, no type filter, `limit + 1` rows (the server reads one more to
/// know `hasMore`).
fn parameters(cursor: &str, limit: u32) -> [String; 9] {
    let (tx, pos) = cursor.split_once('-').unwrap_or(("0", "0"));
    let max = i64::MAX.to_string();
    [
        "'bench'".into(),
        tx.into(),
        pos.into(),
        max.clone(),
        max,
        "'reader'".into(),
        "'{}'".into(),
        "'{}'".into(),
        (limit + 1).to_string(),
    ]
}

pub fn literal_query(cursor: &str, limit: u32) -> String {
    let values = parameters(cursor, limit);
    // From $9 down, so that `$1` does not match the start of `$10`-like names.
    (1..=9).rev().fold(READ_FEED.clone(), |sql, i| sql.replace(&format!("${i}"), &values[i - 1]))
}

pub async fn explain(env: &Env, sql: &str) -> anyhow::Result<String> {
    let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN (ANALYZE, BUFFERS) {sql}")))
        .fetch_all(&env.pool)
        .await?;
    Ok(rows.join("\n"))
}

/// The plan PostgreSQL uses for the server's prepared statement once it
/// switches to a generic plan (after five executions, if that looks no worse).
pub async fn explain_generic(env: &Env, cursor: &str, limit: u32) -> anyhow::Result<String> {
    let mut conn = env.pool.acquire().await?;
    let prepare = format!(
        "PREPARE bench_read_feed(text, bigint, bigint, bigint, bigint, text, text[], text[], bigint) AS {}",
        READ_FEED.as_str()
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(prepare)).execute(&mut *conn).await?;
    sqlx::raw_sql("SET plan_cache_mode = force_generic_plan").execute(&mut *conn).await?;
    let sql = format!("EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_read_feed({})", parameters(cursor, limit).join(", "));
    let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *conn).await?;
    sqlx::raw_sql("DEALLOCATE bench_read_feed; RESET plan_cache_mode").execute(&mut *conn).await?;
    Ok(rows.join("\n"))
}

/// What a plan reads `events` with: the index names, or `Seq Scan`.
pub fn scans(plan: &str) -> String {
    let mut found: Vec<&str> = plan
        .lines()
        .filter_map(|l| l.split_once(" using ").or_else(|| l.split_once("Bitmap Index Scan on ")))
        .map(|(_, rest)| rest.split_whitespace().next().unwrap_or(rest))
        .collect();
    if plan.contains("Seq Scan on events") {
        found.push("Seq Scan");
    }
    found.dedup();
    if found.is_empty() { "no scan of events found".into() } else { found.join(" + ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_scans() {
        let plan = "Limit\n  ->  Index Scan using events_cursor_idx on events  (cost=0.42..5)\n        Filter: x";
        assert_eq!(scans(plan), "events_cursor_idx");
        assert_eq!(
            scans("  ->  Bitmap Index Scan on events_tenant_cursor_idx  (cost=0.00..4.55"),
            "events_tenant_cursor_idx"
        );
        assert_eq!(scans("Result"), "no scan of events found");
        assert_eq!(scans("Seq Scan on events e"), "Seq Scan");
    }
}
