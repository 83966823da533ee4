//! The resumed snapshot's stream filter orders keys exactly as PostgreSQL's `ORDER BY`
//! on the key columns (the order the snapshot reads in), whatever the key's types and
//! collations: checked against a real server, key by key.

use std::sync::Arc;

use sluice_core::{KeyOrder, Lsn, Piece, RowKey, SnapshotProgress, TableName};
use sluice_postgres::catalog;
use sluice_postgres::stream::filter::SnapshotFilter;
use sluice_tests::pg::Postgres;

/// Tables t, u, v, w; a first piece read at 100 and a second, after `boundary`, at 200.
fn two_pieces(boundary: RowKey) -> SnapshotProgress {
    SnapshotProgress {
        tables: ["t", "u", "v", "w"]
            .map(|t| TableName::new("public", t))
            .to_vec(),
        pieces: vec![
            Piece {
                lsn: Lsn(100),
                after: None,
            },
            Piece {
                lsn: Lsn(200),
                after: Some(boundary),
            },
        ],
        cursor: None,
        key_order: KeyOrder::Index,
    }
}

#[test]
fn the_filter_orders_keys_like_the_snapshot_reads_them() {
    let pg = Postgres::start();
    // A text key with an ICU collation (not the database default) first, an integer second; and an all-integer
    // table (compared without asking the server).
    pg.psql(
        r#"CREATE TABLE t (name text COLLATE "und-x-icu", n int, PRIMARY KEY (name, n));
           INSERT INTO t VALUES ('a', 1), ('a', 2), ('B', 1), ('b', 1), ('Z', 9), ('é', 0), ('a b', 3), ('', 5);
           CREATE TABLE u (id bigint PRIMARY KEY);
           INSERT INTO u SELECT g FROM generate_series(-5, 20) g;
           CREATE TABLE v (a int, b text COLLATE "C", PRIMARY KEY (b, a));
           INSERT INTO v VALUES (1, 'b'), (2, 'a'), (3, 'a'), (0, 'c'), (9, 'B');
           CREATE TABLE w (a int, b int, PRIMARY KEY (b, a));
           INSERT INTO w SELECT g % 3, g FROM generate_series(1, 9) g;"#,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cfg: tokio_postgres::Config = pg.url_with_password().parse().unwrap();
        let sql = catalog::connect_sql(&cfg, &Default::default()).await.unwrap();
        let load = |name: &'static str| {
            let sql = &sql;
            async move {
                let tn = TableName::new("public", name);
                let oid = catalog::table_oid(sql, &tn).await.unwrap();
                catalog::table_by_oid(sql, oid).await.unwrap().unwrap()
            }
        };
        let (t, u, v, w) = (
            load("t").await,
            load("u").await,
            load("v").await,
            load("w").await,
        );
        let keys = |q: &str| -> Vec<Vec<String>> {
            pg.psql(q)
                .lines()
                .filter(|l| !l.is_empty())
                .map(|l| l.split('|').map(str::to_string).collect())
                .collect()
        };
        let index = KeyOrder::Index;
        for (table, ordered, key_order) in [
            (&t, keys("SELECT name, n FROM t ORDER BY name, n"), index),
            (&u, keys("SELECT id FROM u ORDER BY id"), index),
            // Keys declared out of column order: compared in the index's order (the key
            // text stays in column order)...
            (&v, keys("SELECT a, b FROM v ORDER BY b, a"), index),
            (&w, keys("SELECT a, b FROM w ORDER BY b, a"), index),
            // ...unless the snapshot was started reading in column order.
            (
                &w,
                keys("SELECT a, b FROM w ORDER BY a, b"),
                KeyOrder::Columns,
            ),
        ] {
            // A second piece starting after each row in turn: rows up to it belong to the
            // first piece (kept from its point 100), the rest to the second (from 200).
            for (cut, boundary) in ordered.iter().enumerate() {
                let progress = SnapshotProgress {
                    key_order,
                    ..two_pieces(RowKey {
                        table: table.name.clone(),
                        key: Some(Arc::from(boundary.clone())),
                    })
                };
                let mut f = SnapshotFilter::new(progress).expect("two points: a filter");
                for (i, key) in ordered.iter().enumerate() {
                    let in_first = i <= cut;
                    let kept = f.keep(&sql, table, Some(key), Lsn(150)).await.unwrap();
                    assert_eq!(
                        kept, in_first,
                        "{}: key {key:?} vs piece boundary {boundary:?} (a change at 150 is kept only for rows of the first piece)",
                        table.name
                    );
                    // Past the newest point every change passes.
                    assert!(f.keep(&sql, table, Some(key), Lsn(200)).await.unwrap());
                }
            }
        }
        // Tables order first: a row of `t` lies before a boundary inside `u`.
        let progress = two_pieces(RowKey {
            table: TableName::new("public", "u"),
            key: Some(Arc::from(vec!["3".to_string()])),
        });
        let mut f = SnapshotFilter::new(progress).unwrap();
        let key = vec!["zzz".to_string(), "1".to_string()];
        assert!(f.keep(&sql, &t, Some(&key), Lsn(150)).await.unwrap());
        assert!(!f.keep(&sql, &u, Some(&["4".to_string()]), Lsn(150)).await.unwrap());
        assert!(!f.keep(&sql, &u, Some(&["4".to_string()]), Lsn(99)).await.unwrap());
        assert!(f.keep(&sql, &u, Some(&["3".to_string()]), Lsn(150)).await.unwrap());
    });
}
