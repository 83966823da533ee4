//! The binary reader ([`sluice_postgres::binary`]) against the text reader, value by value,
//! on what a real server sends for every type the binary reader claims, edge values
//! included: the snapshot reads such tables with `COPY … (FORMAT binary)`, everything
//! else as text, and both must give the same events.

use sluice_core::TableName;
use sluice_postgres::binary::{binary_capable, parse_binary};
use sluice_postgres::copy::{CopyDecoder, Format, Row};
use sluice_postgres::text::{parse_column, Notes};
use sluice_tests::pg::Postgres;

/// (column, type, values as SQL literals); row i takes value i % len.
const COLUMNS: &[(&str, &str, &[&str])] = &[
    ("b", "bool", &["true", "false"]),
    ("i2", "int2", &["-32768", "32767", "0"]),
    ("i4", "int4", &["-2147483648", "2147483647"]),
    (
        "i8",
        "int8",
        &["-9223372036854775808", "9223372036854775807"],
    ),
    ("o", "oid", &["4294967295", "0"]),
    (
        "f4",
        "float4",
        &[
            "'NaN'",
            "'Infinity'",
            "'-Infinity'",
            "'-0'",
            "1.17549435e-38",
            "3.4028235e38",
            "0.1",
        ],
    ),
    (
        "f8",
        "float8",
        &[
            "'NaN'",
            "'-Infinity'",
            "'-0'",
            "5e-324",
            "1.7976931348623157e308",
            "0.1",
        ],
    ),
    (
        "n",
        "numeric",
        &[
            "'NaN'",
            "'Infinity'",
            "'-Infinity'",
            "0",
            "-0.000001",
            "123456789012345678901234567890.123456789",
            "0.00000000000000000001",
            "10000",
            "99990000.0000",
            "-1e300",
        ],
    ),
    ("n2", "numeric(10,2)", &["12.3", "-0.01", "99999999.99"]),
    ("by", "bytea", &["'\\x00ff0a5c'", "''"]),
    ("j", "json", &["'{\"a\":  [1, 2]}'", "'\"\\u00e9\"'"]),
    ("jb", "jsonb", &["'{\"b\": 1, \"a\": \"x\"}'", "'[]'"]),
    ("u", "uuid", &["'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'"]),
    (
        "d",
        "date",
        &[
            "'infinity'",
            "'-infinity'",
            "'4713-01-01 BC'",
            "'5874897-12-31'",
            "'2000-01-01'",
            "'1969-12-31'",
        ],
    ),
    (
        "t",
        "time",
        &["'00:00:00'", "'23:59:59.999999'", "'24:00:00'"],
    ),
    (
        "tz",
        "timetz",
        &["'12:00:00+05:30'", "'00:00:00-15:59'", "'23:59:59.5+00'"],
    ),
    (
        "ts",
        "timestamp",
        &[
            "'infinity'",
            "'-infinity'",
            "'4713-01-01 00:00:00 BC'",
            "'294276-12-31 23:59:59.999999'",
            "'2000-01-01 00:00:00.000001'",
            "'1900-02-28 12:00:00'",
        ],
    ),
    (
        "tstz",
        "timestamptz",
        &[
            "'infinity'",
            "'-infinity'",
            "'4713-01-01 00:00:00+00 BC'",
            "'2024-02-29 23:59:59.123456+14'",
            "'1970-01-01 00:00:00Z'",
        ],
    ),
    (
        "iv",
        "interval",
        &[
            "'1 year 2 mons 3 days 04:05:06.789'",
            "'-178000000 years'",
            "'0'",
            "'-1 day +2 hours'",
        ],
    ),
    ("bt", "bit(5)", &["B'10101'"]),
    ("vb", "varbit", &["B''", "B'1'", "B'110011001'"]),
    ("p", "point", &["'(1.5,-2)'", "'(-0,1e300)'"]),
    (
        "tx",
        "text",
        &["''", "E'a\\tb\\\\c\\nd'", "'üñí ✓'", "'\\N'"],
    ),
    ("vc", "varchar(5)", &["'ab'"]),
    ("bp", "char(3)", &["'ab'"]),
    ("nm", "name", &["'x y'"]),
    ("e", "mood", &["'happy'", "'sad'"]),
    ("dm", "posint", &["1", "2147483647"]),
    (
        "ai",
        "int4[]",
        &["'{}'", "'{{1,NULL},{3,4}}'", "'[0:1]={5,6}'", "'{NULL}'"],
    ),
    ("at", "text[]", &["'{\"a,b\",NULL,\"\\\"q\\\"\",\"\"}'"]),
    ("an", "numeric[]", &["'{NaN,1.50,-Infinity}'"]),
    (
        "ats",
        "timestamptz[]",
        &["'{infinity,\"2020-01-01 00:00:00+00\"}'"],
    ),
    ("ae", "mood[]", &["'{happy,sad}'"]),
    (
        "au",
        "uuid[]",
        &["'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'"],
    ),
];

const ROWS: usize = 10;

fn setup_sql() -> String {
    let mut sql = String::from(
        "CREATE TYPE mood AS ENUM ('happy', 'sad');
         CREATE DOMAIN posint AS int4 CHECK (VALUE > 0);
         CREATE TABLE v (id int PRIMARY KEY",
    );
    for (name, ty, _) in COLUMNS {
        sql.push_str(&format!(", {name} {ty}"));
    }
    sql.push_str(");\n");
    for i in 0..ROWS {
        let names: Vec<&str> = COLUMNS.iter().map(|c| c.0).collect();
        let values: Vec<&str> = COLUMNS.iter().map(|c| c.2[i % c.2.len()]).collect();
        sql.push_str(&format!(
            "INSERT INTO v (id, {}) VALUES ({i}, {});\n",
            names.join(", "),
            values.join(", ")
        ));
    }
    // A row of nulls.
    sql.push_str(&format!("INSERT INTO v (id) VALUES ({ROWS});\n"));
    sql
}

/// Every row of `v` read with COPY in `format`, each field as the reader of that format
/// maps it (Debug text, so NaN and -0 compare exactly), with the notes taken.
async fn read(
    client: &tokio_postgres::Client,
    table: &sluice_core::Table,
    format: Format,
) -> (Vec<Vec<String>>, Notes) {
    use futures_util::StreamExt;
    let cols: Vec<String> = table
        .columns
        .iter()
        .map(|c| format!("\"{}\"", c.name))
        .collect();
    let query = format!(
        "COPY (SELECT {} FROM v ORDER BY id) TO STDOUT",
        cols.join(", ")
    );
    let query = match format {
        Format::Binary => format!("{query} (FORMAT binary)"),
        Format::Text => query,
    };
    let stream = client.copy_out(&query).await.unwrap();
    let mut stream = std::pin::pin!(stream);
    let mut decoder = CopyDecoder::new(format);
    let mut row = Row::default();
    let mut out = Vec::new();
    let mut notes = Notes::default();
    while let Some(chunk) = stream.next().await {
        decoder.push(&chunk.unwrap());
        while let Some(row) = decoder.next_row(&mut row).unwrap() {
            let mut values = Vec::new();
            for (i, c) in table.columns.iter().enumerate() {
                let v = match row.get(i) {
                    None => "Null".to_string(),
                    Some(b) => {
                        let v = match format {
                            Format::Binary => parse_binary(&c.pg_type, b, c.nullable, &mut notes),
                            Format::Text => parse_column(c, b, &mut notes),
                        };
                        format!(
                            "{:?}",
                            v.unwrap_or_else(|e| panic!("{format:?} {}: {e}", c.name))
                        )
                    }
                };
                values.push(v);
            }
            out.push(values);
        }
    }
    decoder.finish().unwrap();
    (out, notes)
}

#[test]
fn binary_and_text_readers_agree_on_every_binary_capable_type() {
    let pg = Postgres::start();
    pg.psql(&setup_sql());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let cfg: tokio_postgres::Config = pg.url_with_password().parse().unwrap();
        let client = sluice_postgres::catalog::connect_sql(&cfg, &Default::default())
            .await
            .unwrap();
        let t = TableName::new("public", "v");
        let oid = sluice_postgres::catalog::table_oid(&client, &t)
            .await
            .unwrap();
        let table = sluice_postgres::catalog::table_by_oid(&client, oid)
            .await
            .unwrap()
            .unwrap();
        for c in &table.columns {
            assert!(
                binary_capable(&c.pg_type),
                "column {} ({}) should be read in binary",
                c.name,
                c.pg_type.name
            );
        }
        let (text, text_notes) = read(&client, &table, Format::Text).await;
        let (binary, binary_notes) = read(&client, &table, Format::Binary).await;
        assert_eq!(text.len(), ROWS + 1);
        assert_eq!(binary.len(), text.len());
        let mut compared = 0;
        for (r, (a, b)) in text.iter().zip(&binary).enumerate() {
            for (i, c) in table.columns.iter().enumerate() {
                assert_eq!(
                    a[i], b[i],
                    "row {r}, column {} ({})",
                    c.name, c.pg_type.name
                );
                compared += 1;
            }
        }
        assert_eq!(
            text_notes, binary_notes,
            "both readers note the same changes"
        );
        // The edge values exercised the notes: NaN/Infinity numerics in nullable columns
        // became null, the year-294276 timestamp was clamped.
        assert!(
            text_notes.special_numeric > 0 && text_notes.clamped > 0,
            "{text_notes:?}"
        );
        eprintln!("{compared} values compared");

        // Types without a binary reader here are read as text.
        client
            .batch_execute(
                "CREATE TYPE pair AS (a int, b text);
                 CREATE TABLE w (id int PRIMARY KEY, m money, r int4range, c pair, i inet)",
            )
            .await
            .unwrap();
        let oid = sluice_postgres::catalog::table_oid(&client, &TableName::new("public", "w"))
            .await
            .unwrap();
        let w = sluice_postgres::catalog::table_by_oid(&client, oid)
            .await
            .unwrap()
            .unwrap();
        for c in w.columns.iter().skip(1) {
            assert!(
                !binary_capable(&c.pg_type),
                "{} has no binary reader",
                c.name
            );
        }
    });
}
