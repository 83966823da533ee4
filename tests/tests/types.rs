//! The type matrix: a table with a column of every built-in type (and enums, domains,
//! composites, hstore, arrays of all of them), rows with edge values present at snapshot
//! time and inserted while streaming, read back with the independent Python reader and
//! compared value by value with what PostgreSQL itself computes for the same row.

use serde_json::Value;
use sluice_tests::broker::Broker;
use sluice_tests::pg::Postgres;
use sluice_tests::sluice::{Setup, Sluice};
use std::process::Command;

const TOPIC: &str = "shop.public.alltypes";

/// How a decoded value is compared with PostgreSQL's expectation (a jsonb value).
#[derive(Clone, Copy, Debug)]
enum Cmp {
    /// Equal JSON.
    Eq,
    /// Expected: the float's text; decoded: a number (or "NaN"/"Infinity"/"-Infinity").
    F32,
    F64,
    /// Expected: decimal text; decoded: Python's Decimal text.
    Dec,
    /// Expected: {scale, unscaled}; decoded: VariableScaleDecimal {scale, value: hex}.
    VarDec,
    /// Expected: microseconds since midnight UTC; decoded: ZonedTime `HH:MM:SS[.f]Z`.
    ZonedTime,
    /// Expected: epoch microseconds (or the exact string); decoded: ZonedTimestamp text.
    Instant,
    /// Expected: the bit string's text; decoded: Debezium Bits (little-endian number).
    Bits,
    /// Expected: {x, y} as text; decoded: io.debezium.data.geometry.Point.
    Point,
    /// Expected: a JSON value; decoded: a string holding JSON.
    JsonText,
    /// Element by element with the inner comparison (null elements equal null).
    Each(&'static Cmp),
}

struct Col {
    name: &'static str,
    ddl: &'static str,
    /// jsonb expression of the expected decoded value (`$` is the column).
    expect: String,
    cmp: Cmp,
}

fn col(name: &'static str, ddl: &'static str, expect: &str, cmp: Cmp) -> Col {
    Col {
        name,
        ddl,
        // `::text IS NULL`: a composite whose fields are all NULL `IS NULL` too.
        expect: format!(
            "CASE WHEN {name}::text IS NULL THEN NULL ELSE {} END",
            expect.replace('$', name)
        ),
        cmp,
    }
}

/// jsonb of the per-element expectation `elem` (`e` is the element) over a 1-D array.
fn each(elem: &str) -> String {
    format!(
        "CASE WHEN $ IS NULL THEN NULL ELSE coalesce((SELECT jsonb_agg(CASE WHEN e::text IS NULL THEN NULL ELSE {elem} END ORDER BY o) \
         FROM (SELECT unnest($) AS e, generate_series(1, cardinality($)) AS o) u), '[]'::jsonb) END"
    )
}

const TEXT: &str = "to_jsonb($::text)";

fn date_days(x: &str) -> String {
    format!(
        "CASE WHEN {x} = 'infinity' THEN to_jsonb(2147483647) WHEN {x} = '-infinity' THEN to_jsonb(-2147483648) \
         ELSE to_jsonb({x} - DATE '1970-01-01') END"
    )
}

fn instant(x: &str) -> String {
    format!(
        "CASE WHEN {x} = 'infinity' THEN to_jsonb('+292278994-08-16T23:00:00Z'::text) \
         WHEN {x} = '-infinity' THEN to_jsonb('-292275055-05-16T23:00:00Z'::text) \
         ELSE to_jsonb(least(extract(epoch FROM {x}) * 1000000, 9223372036854775806)::bigint) END"
    )
}

fn interval_micros(x: &str) -> String {
    // Debezium's MicroDuration: months of 30.4375 days. PostgreSQL's extract(epoch)
    // counts years as 365.25 days and months as 30: undo that to get the time part.
    format!(
        "to_jsonb(greatest(least(\
           (extract(year FROM {x}) * 12 + extract(month FROM {x})) * 2629800000000 \
           + extract(day FROM {x}) * 86400000000 \
           + (extract(epoch FROM {x}) - (extract(year FROM {x}) * 365.25 + extract(month FROM {x}) * 30 + extract(day FROM {x})) * 86400) * 1000000, \
         9223372036854775807), -9223372036854775808)::bigint)"
    )
}

fn special_decimal(x: &str) -> String {
    format!("CASE WHEN {x}::text IN ('NaN', 'Infinity', '-Infinity') THEN NULL ELSE to_jsonb({x}::text) END")
}

fn composite(x: &str) -> String {
    format!(
        "CASE WHEN {x}::text IS NULL THEN NULL ELSE jsonb_build_object('street', ({x}).street, 'no', ({x}).no, \
         'tags', to_jsonb(({x}).tags), 'm', ({x}).m::text, 'd', ({x}).d - DATE '1970-01-01') END"
    )
}

fn columns(hstore: bool) -> Vec<Col> {
    use Cmp::*;
    let mut v = vec![
        col("i2", "smallint", "to_jsonb($)", Eq),
        col("i4", "integer", "to_jsonb($)", Eq),
        col("i8", "bigint", "to_jsonb($)", Eq),
        col("o", "oid", "to_jsonb($::bigint)", Eq),
        col("n", "numeric(12,3)", &special_decimal("$"), Dec),
        col(
            "nu",
            "numeric",
            "CASE WHEN $::text IN ('NaN', 'Infinity', '-Infinity') THEN NULL ELSE jsonb_build_object('scale', scale($), \
             'unscaled', trunc($ * power(10::numeric, scale($)))::text) END",
            VarDec,
        ),
        col("f4", "real", TEXT, F32),
        col("f8", "double precision", TEXT, F64),
        col("b", "boolean", "to_jsonb($)", Eq),
        col("t", "text", TEXT, Eq),
        col("vc", "varchar(20)", TEXT, Eq),
        col("bp", "char(5)", "to_jsonb(format('%s', $))", Eq),
        col("nm", "name", TEXT, Eq),
        col("ch", "\"char\"", TEXT, Eq),
        col("by", "bytea", "to_jsonb('hex:' || encode($, 'hex'))", Eq),
        col("u", "uuid", TEXT, Eq),
        col("j", "json", TEXT, Eq),
        col("jb", "jsonb", TEXT, Eq),
        col("x", "xml", "to_jsonb(format('%s', $))", Eq),
        col("d", "date", &date_days("$"), Eq),
        col(
            "tm",
            "time",
            "to_jsonb((extract(epoch FROM $) * 1000000)::bigint)",
            Eq,
        ),
        col(
            "tm3",
            "time(3)",
            // MicroTime whatever the precision (time_precision: adaptive_time_microseconds)
            "to_jsonb((extract(epoch FROM $) * 1000000)::bigint)",
            Eq,
        ),
        col(
            "ttz",
            "timetz",
            "to_jsonb(((extract(epoch FROM $) * 1000000)::bigint % 86400000000 + 86400000000) % 86400000000)",
            ZonedTime,
        ),
        col(
            "ts",
            "timestamp",
            "CASE WHEN $ = 'infinity' THEN to_jsonb(9223372036825200000) WHEN $ = '-infinity' THEN to_jsonb(-9223372036832400000) \
             ELSE to_jsonb(least(extract(epoch FROM $) * 1000000, 9223372036854775806)::bigint) END",
            Eq,
        ),
        col(
            "ts3",
            "timestamp(3)",
            "CASE WHEN $ = 'infinity' THEN to_jsonb(9223372036825200000) WHEN $ = '-infinity' THEN to_jsonb(-9223372036832400000) \
             ELSE to_jsonb(least(extract(epoch FROM $) * 1000, 9223372036854775)::bigint) END",
            Eq,
        ),
        col("tstz", "timestamptz", &instant("$"), Instant),
        col("iv", "interval", &interval_micros("$"), Eq),
        col("inet_", "inet", TEXT, Eq),
        col("cidr_", "cidr", TEXT, Eq),
        col("mac", "macaddr", TEXT, Eq),
        col("mac8", "macaddr8", TEXT, Eq),
        col("bit1", "bit(1)", "to_jsonb($ = B'1')", Eq),
        col("bit9", "bit(9)", TEXT, Bits),
        col("vbit", "varbit", TEXT, Bits),
        col("m", "money", "to_jsonb($::numeric::text)", Dec),
        col("tsv", "tsvector", TEXT, Eq),
        col("tsq", "tsquery", TEXT, Eq),
        col(
            "pt",
            "point",
            "jsonb_build_object('x', ($)[0]::text, 'y', ($)[1]::text)",
            Point,
        ),
        col("ln", "line", TEXT, Eq),
        col("ls", "lseg", TEXT, Eq),
        col("bx", "box", TEXT, Eq),
        col("pth", "path", TEXT, Eq),
        col("pg", "polygon", TEXT, Eq),
        col("ci", "circle", TEXT, Eq),
        col("r4", "int4range", TEXT, Eq),
        col("r8", "int8range", TEXT, Eq),
        col("rn", "numrange", TEXT, Eq),
        col("rts", "tsrange", TEXT, Eq),
        col("rtstz", "tstzrange", TEXT, Eq),
        col("rd", "daterange", TEXT, Eq),
        col("mr4", "int4multirange", TEXT, Eq),
        col("mr8", "int8multirange", TEXT, Eq),
        col("mrn", "nummultirange", TEXT, Eq),
        col("mrts", "tsmultirange", TEXT, Eq),
        col("mrtstz", "tstzmultirange", TEXT, Eq),
        col("mrd", "datemultirange", TEXT, Eq),
        col("en", "mood", TEXT, Eq),
        col("dom", "posint", "to_jsonb($::int)", Eq),
        col("dpr", "price", "to_jsonb($::text)", Dec),
        col("comp", "addr", &composite("$"), Eq),
        // Declared one-dimensional: a two-dimensional value arrives flattened.
        col("a_i4", "int[]", &each("to_jsonb(e)"), Eq),
        col("a_i4_2", "int[][]", "to_jsonb($)", Eq),
        col("a_t", "text[]", "to_jsonb($)", Eq),
        col("a_t3", "text[][][]", "to_jsonb($)", Eq),
        col("a_n", "numeric(5,2)[]", &each(&special_decimal("e")), Each(&Dec)),
        col("a_f8", "float8[]", &each("to_jsonb(e::text)"), Each(&F64)),
        col("a_b", "bool[]", "to_jsonb($)", Eq),
        col("a_d", "date[]", &each(&date_days("e")), Eq),
        col("a_ts", "timestamptz[]", &each(&instant("e")), Each(&Instant)),
        col("a_u", "uuid[]", "to_jsonb($::text[])", Eq),
        col("a_j", "jsonb[]", "to_jsonb($::text[])", Eq),
        col("a_bx", "box[]", "to_jsonb($::text[])", Eq),
        col("a_en", "mood[]", "to_jsonb($::text[])", Eq),
        col("a_comp", "addr[]", &each(&composite("e")), Eq),
        col("a_iv", "interval[]", &each(&interval_micros("e")), Eq),
        col(
            "a_by",
            "bytea[]",
            &each("to_jsonb('hex:' || encode(e, 'hex'))"),
            Eq,
        ),
        col("a_bit", "bit(3)[]", "to_jsonb($::text[])", Each(&Bits)),
        col(
            "a_pt",
            "point[]",
            &each("jsonb_build_object('x', e[0]::text, 'y', e[1]::text)"),
            Each(&Point),
        ),
        col("a_r", "int4range[]", "to_jsonb($::text[])", Eq),
        col("a_dom", "posint[]", "to_jsonb($::int[])", Eq),
        col("a_m", "money[]", &each("to_jsonb(e::numeric::text)"), Each(&Dec)),
        col("a_tz", "timetz[]", &each("to_jsonb(((extract(epoch FROM e) * 1000000)::bigint % 86400000000 + 86400000000) % 86400000000)"), Each(&ZonedTime)),
    ];
    if hstore {
        v.push(col("hs", "hstore", "hstore_to_jsonb($)", JsonText));
        v.push(col(
            "a_hs",
            "hstore[]",
            &each("hstore_to_jsonb(e)"),
            Each(&JsonText),
        ));
    }
    v
}

/// Row values (SQL expressions) by column name; columns not named are NULL.
fn row_a() -> Vec<(&'static str, &'static str)> {
    vec![
        ("i2", "-32768"),
        ("i4", "2147483647"),
        ("i8", "-9223372036854775808"),
        ("o", "4294967295"),
        ("n", "-123456789.123"),
        ("nu", "'NaN'"),
        ("f4", "'NaN'"),
        ("f8", "'-0'"),
        ("b", "true"),
        (
            "t",
            "E'quote '' \" back\\\\slash \\n newline \\t tab ünïcødé 😀 {a,b} NULL'",
        ),
        ("vc", "'x,y{z}\"'"),
        ("bp", "'ab'"),
        ("nm", "'a name'"),
        ("ch", "'q'"),
        ("by", "'\\x00ff5c22'"),
        ("u", "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'"),
        ("j", "'{\"b\": 1,  \"a\": [1, 2.50, \"ü\"]}'"),
        ("jb", "'{\"b\": 1, \"a\": [1, 2.50, null, \"\\\\\\\"q\"]}'"),
        ("x", "'<a b=\"c\">t&amp;ü</a>'"),
        ("d", "'0044-03-15 BC'"),
        ("tm", "'23:59:59.999999'"),
        ("tm3", "'12:34:56.789'"),
        ("ttz", "'01:02:03.456789+05:30'"),
        ("ts", "'0001-01-01 00:00:00.000001 BC'"),
        ("ts3", "'1900-01-01 00:00:00.123'"),
        ("tstz", "'2024-02-29 12:00:00.5+02'"),
        ("iv", "'1 year 2 mons -3 days 04:05:06.789012'"),
        ("inet_", "'192.168.0.1/24'"),
        ("cidr_", "'10.0.0.0/8'"),
        ("mac", "'08:00:2b:01:02:03'"),
        ("mac8", "'08:00:2b:01:02:03:04:05'"),
        ("bit1", "B'1'"),
        ("bit9", "B'100000001'"),
        ("vbit", "B'0001011'"),
        ("m", "-1234567.89"),
        ("tsv", "'a fat cat''s'"),
        ("tsq", "'fat & (rat | cat)'"),
        ("pt", "'(1.5,-2.25)'"),
        ("ln", "'{1,-1,0}'"),
        ("ls", "'[(0,0),(1,1)]'"),
        ("bx", "'((1,1),(0,0))'"),
        ("pth", "'[(0,0),(1,1),(2,0)]'"),
        ("pg", "'((0,0),(1,1),(1,0))'"),
        ("ci", "'<(0,0),2>'"),
        ("r4", "'[1,10)'"),
        ("r8", "'empty'"),
        ("rn", "'(1.5,]'"),
        ("rts", "'[2020-01-01 00:00,infinity)'"),
        ("rtstz", "'[\"2020-01-01 00:00:00+02\",)'"),
        ("rd", "'[2020-01-01,2020-02-01)'"),
        ("mr4", "'{[1,3), [5,7)}'"),
        ("mr8", "'{}'"),
        ("mrn", "'{(,0.5], [2.5,)}'"),
        ("mrts", "'{[2020-01-01 10:00,2020-01-01 11:00)}'"),
        ("mrtstz", "'{[2020-01-01 10:00+00,2020-01-01 11:00+00)}'"),
        ("mrd", "'{[2020-01-01,2020-01-05), [2020-02-01,infinity)}'"),
        ("en", "'it''s \"q\"'"),
        ("dom", "5"),
        ("dpr", "12.5"),
        (
            "comp",
            "ROW(E'Main \"St\", \\\\ 1 (x)', 7, ARRAY['a', NULL, 'b c', ''], 'ok', '2020-01-01')",
        ),
        ("a_i4", "'{1,NULL,-3}'"),
        ("a_i4_2", "'{{1,2},{3,NULL}}'"),
        (
            "a_t",
            "ARRAY['a b', NULL, 'NULL', '', 'q\"uote', E'back\\\\slash', 'ü,{}', ' lead', 'trail ']",
        ),
        ("a_t3", "'{{{a,b},{c,d}},{{e,NULL},{\"\",\"}\"}}}'"),
        ("a_n", "'{1.50,NaN,NULL,-0.01}'"),
        ("a_f8", "'{NaN,Infinity,-Infinity,-0,1.5e300,NULL}'"),
        ("a_b", "'{t,f,NULL}'"),
        ("a_d", "'{2020-01-01,infinity,0001-01-01 BC,NULL}'"),
        (
            "a_ts",
            "'{\"2020-01-01 00:00:00.000001+00\",infinity,\"0044-03-15 12:00:00+00 BC\"}'",
        ),
        ("a_u", "'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}'"),
        (
            "a_j",
            "ARRAY['{\"a\": [1, \"x,y\"]}'::jsonb, 'null'::jsonb, NULL]",
        ),
        ("a_bx", "'{((1,1),(0,0));((3,3),(2,2));NULL}'"),
        ("a_en", "ARRAY['sad', NULL, 'it''s \"q\"']::mood[]"),
        (
            "a_comp",
            "ARRAY[ROW('x,y', 1, '{}', 'sad', '2000-01-01')::addr, NULL, ROW(NULL, NULL, NULL, NULL, NULL)::addr]",
        ),
        (
            "a_iv",
            "ARRAY['1 mon'::interval, '-00:00:00.000001', NULL, '-1 days +02:03:00']",
        ),
        ("a_by", "ARRAY['\\x00'::bytea, '', NULL, '\\x2c7b']"),
        ("a_bit", "'{101,000,NULL}'"),
        ("a_pt", "ARRAY[point(1, 2), NULL, point(-0.5, 1e300)]"),
        ("a_r", "ARRAY['[1,2)'::int4range, 'empty', NULL]"),
        ("a_dom", "ARRAY[1, 2]::posint[]"),
        ("a_m", "ARRAY[1.5, -0.01]::money[]"),
        ("a_tz", "'{10:00:00+02,00:00:00.000001-15:59}'"),
        (
            "hs",
            r#"'"a"=>"1", "b"=>NULL, "c\"q"=>"x\\y", ""=>""'"#,
        ),
        ("a_hs", "ARRAY['a=>b'::hstore, NULL, '']"),
    ]
}

fn row_b() -> Vec<(&'static str, &'static str)> {
    vec![
        ("i2", "32767"),
        ("i4", "-2147483648"),
        ("i8", "9223372036854775807"),
        ("o", "0"),
        ("n", "'NaN'"),
        ("nu", "'-Infinity'"),
        ("f4", "'-Infinity'"),
        ("f8", "'NaN'"),
        ("b", "false"),
        ("t", "''"),
        ("vc", "''"),
        ("bp", "''"),
        ("by", "'\\x'"),
        ("j", "'null'"),
        ("jb", "'[]'"),
        ("x", "'<?xml version=\"1.0\"?><r/>'"),
        ("d", "'infinity'"),
        ("tm", "'00:00:00'"),
        ("tm3", "'24:00:00'"),
        ("ttz", "'00:00:00+15:59'"),
        ("ts", "'infinity'"),
        ("ts3", "'-infinity'"),
        ("tstz", "'-infinity'"),
        ("rts", "'(,294276-12-31 23:59:59.999999]'"),
        ("iv", "'-178000000 years'"),
        ("bit1", "B'0'"),
        ("bit9", "B'000000000'"),
        ("vbit", "B''"),
        ("m", "'92233720368547758.07'"),
        ("pt", "'(NaN,Infinity)'"),
        ("en", "'sad'"),
        ("dom", "2147483647"),
        ("dpr", "-99999999.99"),
        ("comp", "ROW(NULL, NULL, NULL, NULL, NULL)"),
        ("a_i4", "'{{1,2},{3,4}}'"),
        ("a_i4_2", "'{}'"),
        ("a_t", "'{}'"),
        ("a_n", "'{}'"),
        ("a_f8", "'{}'"),
        ("a_d", "'{-infinity}'"),
        ("a_ts", "'{-infinity}'"),
        ("a_comp", "'{}'"),
        ("a_iv", "ARRAY['178000000 years'::interval]"),
        ("hs", "''"),
    ]
}

fn row_c() -> Vec<(&'static str, &'static str)> {
    vec![
        ("i2", "0"),
        ("n", "0.001"),
        ("nu", "'-123456789012345678901234567890.000123'"),
        ("f4", "'1.1'"),
        ("f8", "'-1.7976931348623157e308'"),
        ("d", "'1970-01-01'"),
        ("tm", "'00:00:00.000001'"),
        ("ttz", "'23:59:59.999999-00:00:01'"),
        ("ts", "'294276-12-31 23:59:59.999999'"),
        ("ts3", "'294276-12-31 23:59:59.999'"),
        ("tstz", "'4713-11-24 00:00:00+00 BC'"),
        (
            "a_ts",
            "'{\"294276-12-31 23:59:59.999999+00\",\"0001-01-01 00:00:00+00 BC\"}'",
        ),
        ("iv", "'P1Y-2M3DT-4H5M-6.5S'"),
        ("m", "'-0.01'"),
    ]
}

fn insert_sql(id: i32, cols: &[Col], values: &[(&str, &str)]) -> String {
    let known: Vec<&str> = cols.iter().map(|c| c.name).collect();
    let vals: Vec<&(&str, &str)> = values.iter().filter(|(n, _)| known.contains(n)).collect();
    let names: Vec<&str> = vals.iter().map(|(n, _)| *n).collect();
    let exprs: Vec<&str> = vals.iter().map(|(_, v)| *v).collect();
    if names.is_empty() {
        return format!("INSERT INTO alltypes (id) VALUES ({id})");
    }
    format!(
        "INSERT INTO alltypes (id, {}) VALUES ({id}, {})",
        names.join(", "),
        exprs.join(", ")
    )
}

/// What PostgreSQL computes for row `id`: column name → expected decoded value.
fn expected(pg: &Postgres, cols: &[Col], id: i32) -> serde_json::Map<String, Value> {
    let parts: Vec<String> = cols
        .chunks(40)
        .map(|chunk| {
            let args: Vec<String> = chunk
                .iter()
                .map(|c| format!("'{}', {}", c.name, c.expect))
                .collect();
            format!("jsonb_build_object({})", args.join(", "))
        })
        .collect();
    let out = pg.psql(&format!(
        "SELECT ({})::text FROM alltypes WHERE id = {id}",
        parts.join(" || ")
    ));
    match serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad expectation {out:?}: {e}")) {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// Reads `count` records with tests/py/consume.py (the independent reader); floats that
/// JSON cannot carry (NaN, ±Infinity) are printed as strings.
fn read(bootstrap: &str, registry: &str, count: usize, sluice: &Sluice) -> Vec<Value> {
    let script = sluice_tests::repo_root().join("tests/py/consume.py");
    let wrapper = r#"
import json, math, runpy, sys
orig = json.dumps
def fix(o):
    if isinstance(o, float) and not math.isfinite(o):
        return "NaN" if math.isnan(o) else ("Infinity" if o > 0 else "-Infinity")
    if isinstance(o, dict):
        return {k: fix(v) for k, v in o.items()}
    if isinstance(o, list):
        return [fix(v) for v in o]
    return o
json.dumps = lambda o, **k: orig(fix(o), **k)
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"#;
    let out = Command::new(sluice_tests::reader::python())
        .arg("-c")
        .arg(wrapper)
        .arg(&script)
        .args(["--bootstrap", bootstrap, "--registry", registry])
        .args(["--topic", TOPIC, "--count", &count.to_string()])
        .args(["--timeout", "90"])
        .output()
        .expect("run consume.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "reader failed ({}):\nstdout:\n{stdout}\nstderr:\n{}\nsluice log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        sluice.log_text()
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad reader line {l:?}: {e}")))
        .collect()
}

fn float_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            s => s.parse().ok(),
        },
        _ => None,
    }
}

fn same_float(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a == b && a.is_sign_negative() == b.is_sign_negative())
}

/// Decimal text to (unscaled digits with sign, scale), normalising Python's `1E-7` forms.
fn decimal_parts(s: &str) -> (i128, i32) {
    let (mant, exp) = match s.split_once(['E', 'e']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap()),
        None => (s, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let unscaled: i128 = format!("{int}{frac}").parse().unwrap();
    (unscaled, frac.len() as i32 - exp)
}

fn same_decimal(a: &str, b: &str) -> bool {
    let (mut ua, mut sa) = decimal_parts(a);
    let (mut ub, mut sb) = decimal_parts(b);
    while sa < sb {
        ua *= 10;
        sa += 1;
    }
    while sb < sa {
        ub *= 10;
        sb += 1;
    }
    ua == ub
}

fn hex_bytes(v: &Value) -> Vec<u8> {
    let s = v.as_str().and_then(|s| s.strip_prefix("hex:")).unwrap();
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// Debezium Bits of a bit string's text: the number it spells, little-endian bytes.
fn bits_bytes(bits: &str) -> Vec<u8> {
    let n = bits.len();
    let mut out = vec![0u8; n.div_ceil(8)];
    for (k, c) in bits.bytes().rev().enumerate() {
        if c == b'1' {
            out[k / 8] |= 1 << (k % 8);
        }
    }
    out
}

/// ISO-8601 UTC text (`2020-01-01T00:00:00.5Z`, `-0043-03-15T...Z`) to epoch micros.
fn iso_micros(s: &str) -> i64 {
    let s = s.strip_suffix('Z').unwrap();
    let (date, time) = s.split_once('T').unwrap();
    let (neg, date) = match date.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, date.strip_prefix('+').unwrap_or(date)),
    };
    let mut p = date.split('-');
    let y: i64 = p.next().unwrap().parse().unwrap();
    let y = if neg { -y } else { y };
    let m: i64 = p.next().unwrap().parse().unwrap();
    let d: i64 = p.next().unwrap().parse().unwrap();
    // Days from civil (proleptic Gregorian, astronomical years).
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    days * 86_400_000_000 + clock_micros(time)
}

fn clock_micros(t: &str) -> i64 {
    let mut p = t.split(':');
    let h: i64 = p.next().unwrap().parse().unwrap();
    let mi: i64 = p.next().unwrap().parse().unwrap();
    let sec = p.next().unwrap();
    let (s, f) = sec.split_once('.').unwrap_or((sec, ""));
    let frac: i64 = if f.is_empty() {
        0
    } else {
        format!("{f:0<6}").parse().unwrap()
    };
    ((h * 60 + mi) * 60 + s.parse::<i64>().unwrap()) * 1_000_000 + frac
}

fn check(cmp: Cmp, got: &Value, want: &Value) -> bool {
    if want.is_null() || got.is_null() {
        return got.is_null() && want.is_null();
    }
    match cmp {
        Cmp::Eq => got == want,
        Cmp::F32 => {
            let w = match want.as_str().unwrap() {
                "NaN" => f32::NAN,
                "Infinity" => f32::INFINITY,
                "-Infinity" => f32::NEG_INFINITY,
                s => s.parse::<f32>().unwrap(),
            };
            float_of(got).is_some_and(|g| same_float(g as f32 as f64, w as f64))
        }
        Cmp::F64 => float_of(got).is_some_and(|g| same_float(g, float_of(want).unwrap())),
        Cmp::Dec => same_decimal(got.as_str().unwrap(), want.as_str().unwrap()),
        Cmp::VarDec => {
            let bytes = hex_bytes(&got["value"]);
            assert!(bytes.len() <= 16, "test values fit an i128");
            let mut v: i128 = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
                -1
            } else {
                0
            };
            for b in bytes {
                v = (v << 8) | b as i128;
            }
            got["scale"] == want["scale"] && v.to_string() == want["unscaled"].as_str().unwrap()
        }
        Cmp::ZonedTime => {
            let s = got.as_str().unwrap();
            clock_micros(s.strip_suffix('Z').unwrap()) == want.as_i64().unwrap()
        }
        Cmp::Instant => match want {
            Value::String(_) => got == want,
            _ => iso_micros(got.as_str().unwrap()) == want.as_i64().unwrap(),
        },
        Cmp::Bits => hex_bytes(got) == bits_bytes(want.as_str().unwrap()),
        Cmp::Point => {
            let x = float_of(&want["x"]).unwrap();
            let y = float_of(&want["y"]).unwrap();
            let mut wkb = vec![1u8, 1, 0, 0, 0];
            wkb.extend(x.to_le_bytes());
            wkb.extend(y.to_le_bytes());
            float_of(&got["x"]).is_some_and(|g| same_float(g, x))
                && float_of(&got["y"]).is_some_and(|g| same_float(g, y))
                && hex_bytes(&got["wkb"]) == wkb
                && got["srid"].is_null()
        }
        Cmp::JsonText => {
            serde_json::from_str::<Value>(got.as_str().unwrap())
                .ok()
                .as_ref()
                == Some(want)
        }
        Cmp::Each(inner) => match (got, want) {
            (Value::Array(g), Value::Array(w)) => {
                g.len() == w.len() && g.iter().zip(w).all(|(g, w)| check(*inner, g, w))
            }
            _ => false,
        },
    }
}

#[test]
fn every_type_round_trips_value_by_value() {
    let hstore = std::path::Path::new("/usr/share/postgresql/15/extension/hstore.control").exists();
    if !hstore {
        println!("note: the hstore extension is not installed (postgresql-15-contrib); hstore columns are skipped");
    }
    let cols = columns(hstore);
    let pg = Postgres::start();
    let broker = Broker::start();
    if hstore {
        pg.psql("CREATE EXTENSION hstore");
    }
    pg.psql(
        "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'it''s \"q\"');
         CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
         CREATE DOMAIN price AS numeric(10,2);
         CREATE TYPE addr AS (street text, no int, tags text[], m mood, d date)",
    );
    let ddl: Vec<String> = cols
        .iter()
        .map(|c| format!("{} {}", c.name, c.ddl))
        .collect();
    pg.psql(&format!(
        "CREATE TABLE alltypes (id int PRIMARY KEY, {})",
        ddl.join(", ")
    ));
    // Present at snapshot time.
    pg.psql(&insert_sql(1, &cols, &row_a()));
    pg.psql(&insert_sql(2, &cols, &[]));

    let setup = Setup::new();
    let config = setup.write_config(&pg, &broker.bootstrap(), &["public.alltypes"], "");
    let mut sluice = Sluice::start(&config, setup.admin_port);
    sluice.wait_ready();

    // Streamed.
    pg.psql(&insert_sql(3, &cols, &row_a()));
    pg.psql(&insert_sql(4, &cols, &row_b()));
    pg.psql(&insert_sql(5, &cols, &row_c()));
    pg.psql(&insert_sql(6, &cols, &[]));

    let recs = read(&broker.bootstrap(), &setup.registry_url(), 6, &sluice);
    let ops: Vec<&str> = recs
        .iter()
        .map(|r| r["value"]["op"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(ops, ["r", "r", "c", "c", "c", "c"], "{}", sluice.log_text());

    let mut failures = Vec::new();
    let mut checked = 0;
    for r in &recs {
        let id = r["key"]["id"].as_i64().unwrap() as i32;
        let after = &r["value"]["after"];
        let want = expected(&pg, &cols, id);
        for c in &cols {
            let w = want.get(c.name).cloned().unwrap_or(Value::Null);
            let g = &after[c.name];
            checked += 1;
            if !check(c.cmp, g, &w) {
                failures.push(format!(
                    "row {id} column {} ({}): got {g}, PostgreSQL says {w}",
                    c.name, c.ddl
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} values differ:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // A few schema facts Debezium consumers rely on.
    let (status, body) = sluice_tests::sluice::http_get(
        setup.registry_port,
        &format!("/subjects/{TOPIC}-value/versions/latest"),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let latest: Value = serde_json::from_str(&body).unwrap();
    let schema = latest["schema"].as_str().unwrap();
    for needle in [
        "io.debezium.time.ZonedTime",
        "io.debezium.time.MicroDuration",
        "io.debezium.data.Xml",
        "io.debezium.data.Bits",
        "io.debezium.data.geometry.Point",
        "io.debezium.data.VariableScaleDecimal",
        r#""allowed":"sad,ok,happy,it's \"q\"""#,
        r#""type":"array""#,
        "sluice.pg.public.addr",
    ] {
        assert!(schema.contains(needle), "{needle} not in {schema}");
    }

    let (status, _) = sluice.terminate();
    assert!(status.success(), "exit {status}:\n{}", sluice.log_text());
}
