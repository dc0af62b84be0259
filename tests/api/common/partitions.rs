//! Events written straight into the table, dated in the past, for the tests
//! of partitions and retention (no API can backdate an event).

use sqlx::PgPool;

/// Appends `n` events to stream `stream` of tenant `acme`, dated `age` ago,
/// each in a transaction of its own, with data `{ "i": k }` for k in 0..n.
pub async fn insert_dated(pool: &PgPool, stream: &str, n: i64, age: chrono::Duration) {
    let at = chrono::Utc::now() - age;
    for k in 0..n {
        sqlx::query(
            "INSERT INTO eventfeed.events (id, tenant_id, stream, version, type, data, created_at) \
             VALUES (gen_random_uuid(), 'acme', $1, $2, 'a:b', jsonb_build_object('i', $3::bigint), $4)",
        )
        .bind(stream)
        .bind(k + 1)
        .bind(k)
        .bind(at)
        .execute(pool)
        .await
        .expect("insert a dated event");
    }
    sqlx::query(
        "INSERT INTO eventfeed.streams (tenant_id, stream, version) VALUES ('acme', $1, $2) \
         ON CONFLICT (tenant_id, stream) DO UPDATE SET version = excluded.version",
    )
    .bind(stream)
    .bind(n)
    .execute(pool)
    .await
    .expect("the stream's version");
}
